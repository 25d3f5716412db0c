"""The repository's own environments, validated and planned offline with the example
mlcicd.yaml (single-account placeholder ids): Terraform checks every argument and reference
against the real hashicorp/aws schema, and the real plans are read to check the system.

Planning every root module takes a while (about 5-10 s each, side by side), so the plans
are made once for the module and shared by the checks below.
"""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlcicd import awsschema
from mlcicd.cli import main
from mlcicd.offline import provider

REPO = Path(__file__).resolve().parent.parent
# One environment per distinct root module (the roles-* entries share one).
PLANNED = ("devops", "data", "dev", "staging", "prod", "roles-staging")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A copy of the repository's Terraform, ML code and example config; no credentials,
    no network (a dead proxy), the schema cache of this machine."""
    cache = awsschema.default_cache_dir()
    provider.schema_path(cache)
    root = tmp_path_factory.mktemp("repo")
    for name in ("terraform", "ml", "mlcicd.yaml", "buildspec.yml"):
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns(".terraform", "__pycache__"))
        elif source.is_file():
            shutil.copy(source, root / name)
    with pytest.MonkeyPatch.context() as mp:
        import os

        for name in list(os.environ):
            if name.startswith(("AWS_", "TF_")) or name == "MLCICD_CONFIG":
                mp.delenv(name, raising=False)
        mp.setenv("XDG_CACHE_HOME", str(cache.parent))
        mp.setenv("MLCICD_TERRAFORM", "bundled")
        for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
            mp.setenv(name, "http://127.0.0.1:9")
        yield root


@pytest.fixture(scope="module")
def plans(repo) -> dict[str, dict]:
    from mlcicd import config as configuration
    from mlcicd.offline import preview
    from mlcicd.runtime import Runtime

    config = configuration.load(repo / "mlcicd.yaml")
    runtime = Runtime.from_environ()

    def plan(name: str) -> dict:
        with preview.workspace(config, config.env(name), runtime, sink=lambda line, is_err: None) as ws:
            outcome = ws.plan(repo / "plans" / name)
        return json.loads((outcome.plan_dir / "plan.json").read_text())

    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(zip(PLANNED, pool.map(plan, PLANNED), strict=True))


def changes(plan: dict) -> dict[str, dict]:
    return {rc["address"]: rc for rc in plan["resource_changes"]}


def test_validate_all_offline(repo):
    result = CliRunner().invoke(main, ["--config", str(repo / "mlcicd.yaml"), "validate", "--all", "--offline"])
    assert result.exit_code == 0, result.output
    config_envs = ("devops", "data", "dev", "staging", "prod", "roles-dev", "roles-staging", "roles-prod", "roles-data")
    for name in config_envs:
        assert f"{name}: valid: offline preview" in result.output


@pytest.mark.parametrize("env", PLANNED)
def test_every_environment_plans_offline(plans, env):
    plan = plans[env]
    assert plan["format_version"] and plan["terraform_version"]
    managed = [rc for rc in plan["resource_changes"] if rc["mode"] == "managed"]
    assert managed, f"{env} plans no resources"
    assert all(rc["change"]["actions"] == ["create"] for rc in managed)  # a fresh, throw-away state


def pipeline(plans) -> tuple[dict, dict]:
    found = [rc for rc in plans["devops"]["resource_changes"] if rc["type"] == "aws_codepipeline"]
    assert len(found) == 1
    return found[0]["change"]["after"], found[0]


def test_pipeline_has_six_stages_in_order(plans):
    after, _ = pipeline(plans)
    stages = after["stage"]
    assert len(stages) == 6
    kinds = [[(a["category"], a["provider"]) for a in stage["action"]] for stage in stages]
    assert kinds[0] == [("Source", "CodeStarSourceConnection")]
    for index in (1, 2, 3, 5):
        assert {k for k in kinds[index]} == {("Build", "CodeBuild")}, stages[index]["name"]
    assert ("Approval", "Manual") in kinds[4]
    # The action each CodeBuild step runs, in pipeline order.
    actions = [json.loads(a["configuration"]["EnvironmentVariables"])[0]["value"]
               for stage in stages for a in stage["action"] if a["provider"] == "CodeBuild"]
    assert actions == ["build", "train", "test", "plan-prod", "deploy"]


def test_source_action_uses_the_connection_variable(plans):
    after, _ = pipeline(plans)
    source = after["stage"][0]["action"][0]["configuration"]
    assert source["ConnectionArn"].endswith(":connection/offline-preview")
    assert source["FullRepositoryId"] == "acme/ml-models" and source["BranchName"] == "main"
    calls = plans["devops"]["configuration"]["root_module"]["module_calls"]
    module = next(call["module"] for call in calls.values()
                  if any(r["type"] == "aws_codepipeline" for r in call["module"].get("resources", [])))
    resource = next(r for r in module["resources"] if r["type"] == "aws_codepipeline")
    configuration = resource["expressions"]["stage"][0]["action"][0]["configuration"]
    assert "var.connection_arn" in configuration["references"]


def test_every_codebuild_project_uses_the_pipeline_key(plans):
    calls = plans["devops"]["configuration"]["root_module"]["module_calls"]
    projects = [r for call in calls.values() for r in call["module"].get("resources", [])
                if r["type"] == "aws_codebuild_project"]
    assert projects
    keys = {r["address"] for call in calls.values() for r in call["module"].get("resources", [])
            if r["type"] == "aws_kms_key"}
    for project in projects:
        references = project["expressions"]["encryption_key"]["references"]
        assert any(ref.split(".arn")[0] in keys for ref in references), references
    planned = [rc for rc in plans["devops"]["resource_changes"] if rc["type"] == "aws_codebuild_project"]
    assert len(planned) >= 5
    assert all(rc["change"]["after_unknown"].get("encryption_key") for rc in planned)  # the key's ARN


def test_sagemaker_pipelines_get_inline_definitions(plans):
    """A definition embeds ARNs a plan on an empty state cannot know, so offline it is
    "known after apply" (tests/test_pipeline_definitions.py evaluates its JSON); when it is
    known it must parse."""
    planned = [rc for env in ("dev", "staging", "prod") for rc in plans[env]["resource_changes"]
               if rc["type"] == "aws_sagemaker_pipeline"]
    assert len(planned) >= 4  # training and inference, in staging and prod at least
    for rc in planned:
        change = rc["change"]
        if change["after_unknown"].get("pipeline_definition"):
            assert not change["after"].get("pipeline_definition_s3_location")
        else:
            assert json.loads(change["after"]["pipeline_definition"])["Steps"]


def policies(value, found: list[dict]) -> None:
    """Every known JSON policy document inside a planned value."""
    if isinstance(value, str) and '"Statement"' in value:
        found.append(json.loads(value))
    elif isinstance(value, dict):
        for item in value.values():
            policies(item, found)
    elif isinstance(value, list):
        for item in value:
            policies(item, found)


def test_no_planned_policy_allows_everything(plans):
    found: list[dict] = []
    for plan in plans.values():
        for rc in plan["resource_changes"]:
            policies(rc["change"]["after"], found)
    assert len(found) >= 10  # aws_iam_policy_document rendered them: they are known offline
    for document in found:
        statements = document["Statement"]
        for statement in statements if isinstance(statements, list) else [statements]:
            if statement.get("Effect") != "Allow":
                continue
            actions = statement.get("Action", [])
            resources = statement.get("Resource", [])
            actions = [actions] if isinstance(actions, str) else actions
            resources = [resources] if isinstance(resources, str) else resources
            assert not ("*" in actions and "*" in resources), statement


def test_review_and_checkov_run_on_an_offline_plan(plans, repo):
    result = CliRunner().invoke(main, ["--config", str(repo / "mlcicd.yaml"), "review",
                                       str(repo / "plans" / "devops"), "--format", "json", "--checkov"])
    assert result.exit_code == 0, result.output
    review = json.loads(result.output[result.output.index("{"):])
    assert review["env"] == "devops" and review["counts"]["create"] >= 20
    assert review["policy"]["error"] is None and review["policy"]["passed"] > 0
