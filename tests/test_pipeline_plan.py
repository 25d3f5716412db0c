"""The devops environment's pipeline as Terraform plans it (offline, against the real
hashicorp/aws schema), read from plan.json and checked against buildspec.yml: the Deploy action
is bound to the sha256 the approver saw, each action gets the variables the buildspec reads,
the pull-request preview and the drift schedule exist and can assume only the read-only plan
roles, and `drift: {schedule: null}` in mlcicd.yaml removes the schedule."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
import yaml

from mlcicd import awsschema
from mlcicd.offline import provider

REPO = Path(__file__).resolve().parent.parent
PROJECT = "mlops-demo"  # the example mlcicd.yaml
ACCOUNT = "111111111111"

pytestmark = pytest.mark.slow


def _plan(root: Path) -> dict:
    from mlcicd import config as configuration
    from mlcicd.offline import preview
    from mlcicd.runtime import Runtime

    config = configuration.load(root / "mlcicd.yaml")
    with preview.workspace(config, config.env("devops"), Runtime.from_environ(),
                           sink=lambda line, is_err: None) as ws:
        outcome = ws.plan(root / "plans" / "devops")
    return json.loads((outcome.plan_dir / "plan.json").read_text())


@pytest.fixture(scope="module")
def offline(tmp_path_factory):
    """No credentials, no network (a dead proxy), this machine's schema cache."""
    cache = awsschema.default_cache_dir()
    provider.schema_path(cache)
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith(("AWS_", "TF_", "MLCICD_")):
                mp.delenv(name, raising=False)
        mp.setenv("XDG_CACHE_HOME", str(cache.parent))
        mp.setenv("MLCICD_TERRAFORM", "bundled")
        for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
            mp.setenv(name, "http://127.0.0.1:9")
        yield tmp_path_factory


def _repo_copy(factory, extra: str = "") -> Path:
    root = factory.mktemp("repo")
    shutil.copytree(REPO / "terraform", root / "terraform", ignore=shutil.ignore_patterns(".terraform"))
    shutil.copytree(REPO / "ml", root / "ml", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "mlcicd.yaml").write_text((REPO / "mlcicd.yaml").read_text() + extra)
    return root


@pytest.fixture(scope="module")
def plan(offline) -> dict:
    return _plan(_repo_copy(offline))


def planned(plan: dict, kind: str) -> list[dict]:
    return [rc for rc in plan["resource_changes"] if rc["type"] == kind and rc["change"]["actions"] == ["create"]]


def one(plan: dict, kind: str, name: str | None = None) -> dict:
    found = [rc for rc in planned(plan, kind) if name is None or rc["name"] == name]
    assert len(found) == 1, [rc["address"] for rc in found]
    return found[0]


def action(plan: dict, name: str) -> dict:
    stages = one(plan, "aws_codepipeline")["change"]["after"]["stage"]
    return next(a for stage in stages for a in stage["action"] if a["name"] == name)


def action_env(plan: dict, name: str) -> dict[str, str]:
    return {v["name"]: v["value"] for v in json.loads(action(plan, name)["configuration"]["EnvironmentVariables"])}


def buildspec() -> dict:
    return yaml.safe_load((REPO / "buildspec.yml").read_text())


def branch_of(script: str, name: str) -> str:
    """The lines of one `case` branch of the build script."""
    match = re.search(rf"^\s+{re.escape(name)}\)\s*$(.*?)^\s+;;\s*$", script, re.M | re.S)
    assert match, f"buildspec.yml has no {name}) branch"
    return match[1]


def script() -> str:
    return "\n".join(buildspec()["phases"]["build"]["commands"])


def policy(plan: dict, role_name: str) -> dict:
    found = [rc["change"]["after"] for rc in planned(plan, "aws_iam_role_policy")
             if rc["change"]["after"].get("role") == role_name or rc["index"] == role_name]
    assert len(found) == 1, role_name
    return json.loads(found[0]["policy"])


def statements(document: dict) -> list[dict]:
    found = document["Statement"]
    return found if isinstance(found, list) else [found]


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def test_deploy_applies_only_the_plan_whose_sha256_the_approver_saw(plan):
    plan_prod = action(plan, "PlanProd")
    approval = action(plan, "ApproveProdPlan")
    namespace = plan_prod["namespace"]
    assert "PLAN_SHA256" in buildspec()["env"]["exported-variables"]
    # The approver is shown the sha256 that the plan-prod action exported ...
    assert f"#{{{namespace}.PLAN_SHA256}}" in approval["configuration"]["CustomData"]
    # ... and exactly that variable reaches Deploy, which refuses any other plan with it.
    deploy = action_env(plan, "ApplyReviewedProdPlan")
    assert deploy["PLAN_SHA256"] == f"#{{{namespace}.PLAN_SHA256}}"
    assert deploy["MLCICD_ACTION"] == "deploy"
    deploy_branch = branch_of(script(), "deploy")
    assert 'mlcicd apply prod --plan "$PLAN_DIR" --expect-sha256 "${PLAN_SHA256:?' in deploy_branch
    # The plan directory comes from the artifact the plan-prod action produced.
    artifact = buildspec()["env"]["variables"]["PLAN_ARTIFACT"]
    assert artifact in plan_prod["output_artifacts"]
    assert artifact in action(plan, "ApplyReviewedProdPlan")["input_artifacts"]


def test_every_namespace_variable_an_action_reads_is_exported_by_its_action(plan):
    """`#{NS.VAR}` in any action's configuration names a namespace some earlier action declares
    and a variable buildspec.yml exports (or the source action's own variables)."""
    stages = one(plan, "aws_codepipeline")["change"]["after"]["stage"]
    exported = set(buildspec()["env"]["exported-variables"])
    declared: dict[str, str] = {}
    references = 0
    for stage in stages:
        for act in sorted(stage["action"], key=lambda a: a.get("run_order") or 1):
            for ns, var in re.findall(r"#\{([A-Za-z0-9@_-]+)\.([A-Za-z0-9_]+)\}", json.dumps(act["configuration"])):
                references += 1
                if ns in ("variables", "codepipeline"):
                    continue
                assert ns in declared, f"{act['name']} reads #{{{ns}.{var}}} before any action declares {ns}"
                if declared[ns] == "CodeBuild":
                    assert var in exported, f"{act['name']} reads {var}, which buildspec.yml does not export"
            if act.get("namespace"):
                declared[act["namespace"]] = act["provider"]
    assert references >= 8


def test_test_action_gets_the_model_package_the_train_action_exports(plan):
    train = action(plan, "TrainInStaging")
    assert train["namespace"]
    assert action_env(plan, "InferenceInStaging")["MODEL_PACKAGE_ARN"] == f"#{{{train['namespace']}.MODEL_PACKAGE_ARN}}"
    assert "MODEL_PACKAGE_ARN" in buildspec()["env"]["exported-variables"]
    assert "${MODEL_PACKAGE_ARN:?" in branch_of(script(), "test")


def test_the_review_page_is_stored_under_the_execution_id(plan):
    env = action_env(plan, "PlanProd")
    assert env["PIPELINE_EXECUTION_ID"] == "#{codepipeline.PipelineExecutionId}"
    plan_prod = branch_of(script(), "plan-prod")
    assert "--format html" in plan_prod and 'reviews/${PIPELINE_EXECUTION_ID:?' in plan_prod
    projects = {rc["index"]: rc["change"]["after"] for rc in planned(plan, "aws_codebuild_project")
                if rc["name"] == "this"}
    names = {v["name"] for v in projects["plan-prod"]["environment"][0]["environment_variable"]}
    assert "MLCICD_ARTIFACT_BUCKET" in names
    assert action(plan, "ApproveProdPlan")["configuration"]["ExternalEntityLink"] == "#{PlanProd.REVIEW_URL}"


def data_statements(plan: dict, address_end: str) -> list[dict]:
    """The statements of a planned aws_iam_policy_document (read at apply time, so its JSON is
    unknown offline, but the statements' known parts are in the plan)."""
    found = [rc for rc in plan["resource_changes"] if rc["address"].endswith(address_end)]
    assert len(found) == 1, address_end
    return found[0]["change"]["after"]["statement"]


def expressions(plan: dict, address: str) -> dict:
    """The configuration of a resource in the pipeline module: which references feed each argument."""
    calls = plan["configuration"]["root_module"]["module_calls"]
    module = calls["pipeline"]["module"]
    return next(r for r in module["resources"] if r["address"] == address)["expressions"]


def project(plan: dict, address_end: str) -> dict:
    found = [rc for rc in planned(plan, "aws_codebuild_project") if rc["address"].endswith(address_end)]
    assert len(found) == 1, address_end
    return found[0]["change"]["after"]


def project_env(after: dict) -> dict[str, str | None]:
    """Name -> value of a planned project's environment variables (all PLAINTEXT here)."""
    variables = after["environment"][0]["environment_variable"]
    assert all(v.get("type") in (None, "PLAINTEXT") for v in variables)
    return {v["name"]: v.get("value") for v in variables}


PLAN_ROLE = re.compile(rf"^arn:aws:iam::{ACCOUNT}:role/{PROJECT}-(dev|staging|prod|data)-plan$")
# What the read-only projects may write: the state lock, their own cache, their logs.
READONLY_WRITES = {"s3:PutObject", "s3:DeleteObject", "logs:CreateLogStream", "logs:PutLogEvents"}


def test_pull_requests_start_a_preview_project_never_the_pipeline(plan):
    webhook = one(plan, "aws_codebuild_webhook")["change"]["after"]
    assert webhook["project_name"] == f"{PROJECT}-pr-preview"
    [group] = webhook["filter_group"]
    filters = {f["type"]: f["pattern"] for f in group["filter"]}
    assert {e.strip() for e in filters["EVENT"].split(",")} >= {"PULL_REQUEST_CREATED", "PULL_REQUEST_UPDATED"}
    assert re.fullmatch(filters["BASE_REF"], "refs/heads/main")
    assert not re.fullmatch(filters["BASE_REF"], "refs/heads/mainx")
    assert webhook["pull_request_build_policy"][0]["requires_comment_approval"] == "ALL_PULL_REQUESTS"
    # The pipeline itself starts on pushes only: no pull request reaches Build, which applies.
    [trigger] = one(plan, "aws_codepipeline")["change"]["after"]["trigger"]
    assert trigger["git_configuration"][0]["pull_request"] == []
    assert trigger["git_configuration"][0]["push"]

    preview = project(plan, 'this["pr"]')
    source = preview["source"][0]
    assert source["type"] == "GITHUB" and source["location"] == "https://github.com/acme/ml-models.git"
    connection = f"arn:aws:codeconnections:us-east-1:{ACCOUNT}:connection/offline-preview"
    assert source["auth"][0] == {"type": "CODECONNECTIONS", "resource": connection}
    assert source["git_clone_depth"] == 0  # --changed needs the merge base
    env = project_env(preview)
    assert env["MLCICD_ACTION"] == "pr" and env["MLCICD_ROLE"] == "plan"
    assert "GITHUB_TOKEN" not in env  # no secret configured in the example

    pr = branch_of(script(), "pr")
    assert 'mlcicd plan --changed --out "$PR_PLAN_ROOT"' in pr
    assert 'mlcicd review "$PR_PLAN_ROOT" --github-pr "$PR_NUMBER"' in pr
    assert not re.search(r"\bmlcicd (apply|destroy|run-pipeline|release|approve)\b", pr)


@pytest.mark.parametrize("action", ["pr", "drift"])
def test_readonly_projects_can_assume_only_the_plan_roles(plan, action):
    statements = data_statements(plan, f'aws_iam_policy_document.readonly["{action}"]')
    assumed = [r for s in statements if "sts:AssumeRole" in s["actions"] for r in s["resources"]]
    assert assumed and all(PLAN_ROLE.match(arn) for arn in assumed), assumed
    for statement in statements:
        assert statement["effect"] in (None, "Allow")
        for name in statement["actions"]:
            verb = name.split(":")[1]
            if name in READONLY_WRITES or name in {"sts:AssumeRole", "kms:GenerateDataKey", "kms:GenerateDataKey*",
                                                   "kms:Encrypt", "codeconnections:UseConnection",
                                                   "codestar-connections:UseConnection"}:
                continue
            if name == "sns:Publish":
                assert action == "drift", "only the drift check notifies"
                continue
            assert verb.startswith(("Get", "List", "Describe", "BatchGet", "Decrypt")), f"{action} may {name}"
    # Objects it may write: the state lock files, and its own cache prefix (the artifact bucket's
    # ARN is known only after apply: its prefix is checked in the configuration).
    writes = [s for s in statements if {"s3:PutObject", "s3:DeleteObject"} & set(s["actions"])]
    assert {s["sid"] for s in writes} == {"StateLock", "OwnCache"}
    for statement in writes:
        for resource in statement["resources"]:
            if statement["sid"] == "StateLock":
                assert resource.endswith(".tflock"), resource
            else:
                assert resource is None or f"/codebuild-cache/{action}/" in resource, resource
    cache = next(s for s in expressions(plan, "data.aws_iam_policy_document.readonly")["statement"]
                 if s["sid"]["constant_value"] == "OwnCache")
    assert cache["resources"]["references"][:1] == ["module.artifacts.arn"]
    # One project definition serves all: a read-only project runs as its own role, a pipeline
    # action as the CodeBuild role.
    role = set(expressions(plan, "aws_codebuild_project.this")["service_role"]["references"])
    assert {"local.readonly", "aws_iam_role.readonly", "aws_iam_role.codebuild"} <= role, role


def test_drift_runs_on_the_configured_schedule_and_notifies_the_topic(plan):
    rule = one(plan, "aws_cloudwatch_event_rule", "drift")["change"]["after"]
    assert rule["schedule_expression"] == "rate(6 hours)"  # the default of mlcicd.yaml's drift.schedule
    target = expressions(plan, "aws_cloudwatch_event_target.drift")
    assert 'aws_codebuild_project.this["drift"]' in target["arn"]["references"]
    assert "aws_iam_role.drift_schedule" in target["role_arn"]["references"]
    [start] = data_statements(plan, "aws_iam_policy_document.drift_schedule[0]")
    assert start["actions"] == ["codebuild:StartBuild"]
    assert 'aws_codebuild_project.this["drift"]' in " ".join(
        expressions(plan, "data.aws_iam_policy_document.drift_schedule")["statement"][0]["resources"]["references"])
    drift = project(plan, 'this["drift"]')
    env = project_env(drift)
    assert env["MLCICD_ACTION"] == "drift" and env["MLCICD_ROLE"] == "plan"
    assert "TOPIC_ARN" in env
    assert drift["source_version"] == "refs/heads/main"
    assert 'mlcicd drift --all --notify-topic "${TOPIC_ARN:?' in branch_of(script(), "drift")
    drift_policy = data_statements(plan, 'aws_iam_policy_document.readonly["drift"]')
    notify = [s for s in drift_policy if s["sid"] == "NotifyDrift"]
    assert notify and notify[0]["actions"] == ["sns:Publish"]


SECRET = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:demo-github-token-AbCdEf"


def test_drift_off_and_a_github_token_secret_from_mlcicd_yaml(offline):
    """`drift: {schedule: null}` removes the schedule; the token secret given through devops'
    vars reaches the preview as a secrets-manager variable, readable by the preview role only."""
    text = f"  devops:\n    vars: {{github_token_secret_arn: {json.dumps(SECRET)}}}\ndrift: {{schedule: null}}\n"
    other = _plan(_repo_copy(offline, text))
    addresses = {rc["address"] for rc in other["resource_changes"]}
    assert not [a for a in addresses if "drift" in a], sorted(a for a in addresses if "drift" in a)
    assert planned(other, "aws_codebuild_webhook")  # the PR preview stays
    preview = project(other, 'this["pr"]')["environment"][0]["environment_variable"]
    token = next(v for v in preview if v["name"] == "GITHUB_TOKEN")
    assert (token["type"], token["value"]) == ("SECRETS_MANAGER", SECRET)
    statements = data_statements(other, 'aws_iam_policy_document.readonly["pr"]')
    assert [s["resources"] for s in statements if "secretsmanager:GetSecretValue" in s["actions"]] == [[SECRET]]


def test_every_project_caches_pip_and_terraform_plugins_in_its_own_place(plan):
    spec = buildspec()
    paths = spec["cache"]["paths"]
    variables = spec["env"]["variables"]
    for name in ("PIP_CACHE_DIR", "TF_PLUGIN_CACHE_DIR"):
        assert any(p.startswith(variables[name].rstrip("/") + "/") for p in paths), name
    locations = {}
    for rc in planned(plan, "aws_codebuild_project"):
        [cache] = rc["change"]["after"]["cache"]
        assert cache["type"] == "S3", rc["address"]
        refs = expressions(plan, rc["address"].removeprefix("module.pipeline.").split("[")[0])["cache"][0]
        assert "module.artifacts.id" in refs["location"]["references"]
        locations[rc["index"]] = rc
    assert set(locations) == {"build", "train", "test", "plan-prod", "deploy", "pr", "drift"}


PIPELINE_ACTIONS = {"build": "PlanReviewApplyStaging", "train": "TrainInStaging", "test": "InferenceInStaging",
                    "plan-prod": "PlanProd", "deploy": "ApplyReviewedProdPlan"}


def test_every_variable_an_action_requires_is_given_to_it(plan):
    """Each `${VAR:?}` in a buildspec branch comes from the spec, from CodeBuild itself, from
    the action's CodePipeline configuration or from its project (for pr, from the webhook)."""
    spec = buildspec()
    body = script()
    projects = {rc["index"]: rc["change"]["after"] for rc in planned(plan, "aws_codebuild_project")}
    checked = 0
    for name in sorted(PIPELINE_ACTIONS.keys() | {"pr", "drift"}):
        given = set(spec["env"]["variables"]) | {"AWS_REGION"} | set(project_env(projects[name]))
        if name in PIPELINE_ACTIONS:
            assert action_env(plan, PIPELINE_ACTIONS[name])["MLCICD_ACTION"] == name
            given |= set(action_env(plan, PIPELINE_ACTIONS[name]))
        webhook = name == "pr"
        for variable in re.findall(r"\$\{([A-Z_][A-Z0-9_]*):\?", branch_of(body, name)):
            checked += 1
            assert variable in given or (webhook and variable.startswith("CODEBUILD_WEBHOOK_")), \
                f"the {name} action requires {variable}, which nothing gives it"
    assert checked >= 6
