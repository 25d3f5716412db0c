"""Single-account mode, planned for real: every environment of the example config, with all five
account ids equal, planned by the bundled Terraform against mlcicd's offline stand-in for
hashicorp/aws (`mlcicd plan ENV --offline`). Nothing collides, the role names follow the
convention mlcicd.config uses, the target roles trust the CodeBuild role the pipeline creates,
and no policy known at plan time allows "*" on "*"."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from mlcicd import config
from tests.offline_plans import copy_project, plan_all

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "123456789012"
CONNECTION = f"arn:aws:codeconnections:us-east-1:{ACCOUNT}:connection/0f1e2d3c-aaaa-bbbb-cccc-111122223333"
# The argument that names a resource in its account, per resource type.
NAME_ARGUMENT = {
    "aws_iam_role": "name",
    "aws_s3_bucket": "bucket",
    "aws_kms_alias": "name",
    "aws_sagemaker_pipeline": "pipeline_name",
    "aws_sagemaker_model_package_group": "model_package_group_name",
    "aws_codebuild_project": "name",
    "aws_codepipeline": "name",
    "aws_sns_topic": "name",
    "aws_cloudwatch_log_group": "name",
    "aws_cloudwatch_event_rule": "name",
}


@pytest.fixture(scope="module")
def plans(tmp_path_factory) -> dict[str, dict]:
    """plan.json of every environment, planned offline in a single-account copy of the project."""
    text = (ROOT / "mlcicd.yaml").read_text()
    for acc in ("111111111111", "222222222222", "333333333333", "444444444444", "555555555555"):
        text = text.replace(acc, ACCOUNT)
    text = text.replace("  branch: main\n", f"  branch: main\n  connection_arn: {CONNECTION}\n")
    path = copy_project(tmp_path_factory.mktemp("single"), text)
    cfg = config.load(path)
    assert cfg.single_account
    return plan_all(path, cfg.environments)


def _created(plan: dict) -> list[dict]:
    return [rc for rc in plan["resource_changes"] if rc["mode"] == "managed" and "create" in rc["change"]["actions"]]


@pytest.mark.slow  # ~30-60 s: nine real Terraform plans (three at a time).
def test_every_environment_plans_and_no_name_collides(plans):
    owners: dict[tuple[str, str], list[str]] = defaultdict(list)
    for env, plan in plans.items():
        assert _created(plan), f"{env} plans nothing"
        for rc in _created(plan):
            argument = NAME_ARGUMENT.get(rc["type"])
            name = (rc["change"]["after"] or {}).get(argument) if argument else None
            if name:
                owners[(rc["type"], name)].append(f"{env}:{rc['address']}")
    collisions = {key: where for key, where in owners.items() if len(where) > 1}
    assert not collisions, collisions
    names = {name for (_, name) in owners}
    assert {"mlops-demo-staging-training", "mlops-demo-dev-training", "mlops-demo-prod-inference",
            "mlops-demo-pipeline"} <= names
    assert "mlops-demo-prod-training" not in names  # prod runs inference only


@pytest.mark.slow
def test_roles_follow_the_config_convention_and_trust_the_codebuild_role(plans):
    roles_by_env = {}
    for env in ("dev", "staging", "prod", "data"):
        roles = {rc["change"]["after"]["name"]: rc["change"]["after"]["assume_role_policy"]
                 for rc in _created(plans[f"roles-{env}"]) if rc["type"] == "aws_iam_role"}
        # An ML environment's SageMaker execution role is applied here too (ml-baseline); SageMaker
        # assumes it, not the pipeline.
        execution = roles.pop(f"mlops-demo-{env}-sagemaker", None)
        roles_by_env[env] = roles
        expected = {f"mlops-demo-{env}-plan"}
        if env != "data":  # an administrator applies data; it runs no SageMaker pipelines
            expected |= {f"mlops-demo-{env}-deploy", f"mlops-demo-{env}-pipeline-runner"}
            [trust] = json.loads(execution)["Statement"]
            assert trust["Principal"] == {"Service": "sagemaker.amazonaws.com"}
            assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
        else:
            assert execution is None
        assert set(roles) == expected
    codebuild = [rc["change"]["after"]["name"] for rc in _created(plans["devops"])
                 if rc["type"] == "aws_iam_role" and "codebuild" in rc["address"]]
    assert codebuild == ["mlops-demo-codebuild"]
    # In one account the state bucket sits beside everything else; no deploy role may touch it.
    for env in ("dev", "staging", "prod"):
        [policy] = [rc["change"]["after"]["policy"] for rc in _created(plans[f"roles-{env}"])
                    if rc["type"] == "aws_iam_role_policy" and rc.get("index") == "deploy"]
        assert "tfstate" not in policy and f"arn:aws:s3:::mlops-demo-{env}-code-{ACCOUNT}/*" in policy
        # It uses its own key, by alias; the state key (tagged mlcicd:project by bootstrap) is denied outright.
        [deny] = [st for st in json.loads(policy)["Statement"] if st.get("Sid") == "NoStateKey"]
        assert deny["Effect"] == "Deny" and deny["Condition"] == {"Null": {"aws:ResourceTag/mlcicd:project": "false"}}
    trusted = f"arn:aws:iam::{ACCOUNT}:role/mlops-demo-codebuild"
    readonly = [f"arn:aws:iam::{ACCOUNT}:role/mlops-demo-{name}" for name in ("pr-preview", "drift")]
    for roles in roles_by_env.values():
        for name, policy in roles.items():
            [statement] = json.loads(policy)["Statement"]
            # Only the plan role also trusts the read-only projects (pull-request preview, drift).
            expected = [trusted, *readonly] if name.endswith("-plan") else trusted
            assert statement["Condition"]["ArnEquals"]["aws:PrincipalArn"] == expected
            assert statement["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}


def _policies(value, found: list[dict]) -> None:
    """Every JSON policy document (a string with a Statement) somewhere inside a planned value."""
    if isinstance(value, dict):
        for item in value.values():
            _policies(item, found)
    elif isinstance(value, list):
        for item in value:
            _policies(item, found)
    elif isinstance(value, str) and '"Statement"' in value:
        found.append(json.loads(value))


@pytest.mark.slow
def test_no_known_policy_allows_everything_on_everything(plans):
    documents: list[dict] = []
    for plan in plans.values():
        for rc in plan["resource_changes"]:
            _policies(rc["change"]["after"], documents)
    assert len(documents) >= 10
    for doc in documents:
        statements = doc["Statement"] if isinstance(doc["Statement"], list) else [doc["Statement"]]
        for st in statements:
            if st.get("Effect") != "Allow":
                continue
            actions = st.get("Action", [])
            resources = st.get("Resource", [])
            actions = [actions] if isinstance(actions, str) else actions
            resources = [resources] if isinstance(resources, str) else resources
            assert not ("*" in actions and "*" in resources), st
