"""The pipeline's shape and the tree's security, asserted on planned values: the devops
environment planned offline (the real bundled Terraform against mlcicd's stand-in provider)
has six stages in order with the actions the buildspec expects, a push trigger on the branch,
and roles limited to their connection and target roles; checkov finds no failed check (every
skip inline, with its reason)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mlcicd import hcl
from tests.offline_plans import as_list, copy_project, data_source, plan_all, planned, statements

ROOT = Path(__file__).resolve().parent.parent
TERRAFORM = ROOT / "terraform"
STAGES = ["Source", "Build", "Train", "Test", "Approval", "Deploy"]


@pytest.fixture(scope="module")
def devops(tmp_path_factory) -> dict:
    config = copy_project(tmp_path_factory.mktemp("policy"))
    return plan_all(config, ["devops"])["devops"]


@pytest.fixture(scope="module")
def pipeline(devops) -> dict:
    return planned(devops, "module.pipeline.aws_codepipeline.this")


def _actions(pipeline: dict) -> dict[str, list[dict]]:
    return {stage["name"]: stage["action"] for stage in pipeline["stage"]}


def _env(action: dict) -> dict[str, str]:
    return {v["name"]: v["value"] for v in json.loads(action["configuration"].get("EnvironmentVariables", "[]"))}


@pytest.mark.slow
def test_six_stages_in_order(pipeline):
    assert [stage["name"] for stage in pipeline["stage"]] == STAGES


@pytest.mark.slow
def test_v2_pipeline_triggered_by_a_push_on_the_branch(pipeline):
    assert pipeline["pipeline_type"] == "V2"
    [trigger] = pipeline["trigger"]
    [git] = trigger["git_configuration"]
    assert git["source_action_name"] == "Source"
    [push] = git["push"]
    [branches] = push["branches"]
    assert branches["includes"] == ["main"]


@pytest.mark.slow
def test_every_code_running_action_sets_its_mlcicd_action(pipeline):
    expected = {"Build": ["build"], "Train": ["train"], "Test": ["test"], "Approval": ["plan-prod"],
                "Deploy": ["deploy"]}
    for stage, actions in _actions(pipeline).items():
        found = [_env(a)["MLCICD_ACTION"] for a in actions if a["provider"] == "CodeBuild"]
        assert found == expected.get(stage, []), stage


@pytest.mark.slow
def test_source_uses_the_connection(pipeline):
    [source] = _actions(pipeline)["Source"]
    assert source["provider"] == "CodeStarSourceConnection"
    assert source["configuration"]["ConnectionArn"].endswith(":connection/offline-preview")
    assert source["configuration"]["FullRepositoryId"] == "acme/ml-models"


@pytest.mark.slow
def test_train_exports_the_model_package_to_test(pipeline):
    actions = _actions(pipeline)
    [train] = actions["Train"]
    [test] = actions["Test"]
    assert train["namespace"] == "Train"
    assert _env(test)["MODEL_PACKAGE_ARN"] == "#{Train.MODEL_PACKAGE_ARN}"


@pytest.mark.slow
def test_approval_shows_the_prod_plan_review(pipeline, devops):
    plan, approve = _actions(pipeline)["Approval"]
    assert plan["name"] == "PlanProd" and plan["run_order"] == 1 and plan["namespace"] == "PlanProd"
    assert approve["category"] == "Approval" and approve["provider"] == "Manual" and approve["run_order"] == 2
    config = approve["configuration"]
    assert "#{PlanProd.PLAN_HEADLINE}" in config["CustomData"]
    assert config["ExternalEntityLink"] == "#{PlanProd.REVIEW_URL}"
    # The topic's ARN is known after apply: the plan leaves it unknown, and the module's source
    # says which resource it is (the plan's configuration leaves dynamic blocks out).
    [change] = [rc for rc in devops["resource_changes"] if rc["address"] == "module.pipeline.aws_codepipeline.this"]
    assert change["change"]["after_unknown"]["stage"][4]["action"][1]["configuration"]["NotificationArn"] is True
    [resource] = [b for b in hcl.blocks(TERRAFORM / "modules" / "pipeline", "resource")
                  if b.labels == ("aws_codepipeline", "this")]
    [stages] = [d["stage"] for d in resource.body["dynamic"] if "stage" in d]
    [approval] = [d["action"] for d in stages["content"][0]["dynamic"]
                  if hcl.attr(d["action"]["content"][0], "category") == "Approval"]
    assert "aws_sns_topic.this.arn" in hcl.attr(approval, "for_each")
    assert hcl.attr(approval["content"][0], "configuration")["NotificationArn"] == "${action.value}"
    [deploy] = _actions(pipeline)["Deploy"]
    assert deploy["input_artifacts"] == ["source", *plan["output_artifacts"]]


# -- IAM ---------------------------------------------------------------------------------------


def _document(devops: dict, name: str) -> list[dict]:
    """A policy document of the pipeline module whose every input is known at plan time."""
    return statements(data_source(devops, f"module.pipeline.data.aws_iam_policy_document.{name}")["json"])


@pytest.mark.slow
def test_codebuild_may_assume_only_the_named_target_roles(devops):
    assuming = [st for st in _document(devops, "codebuild_reach")
                if any(a.startswith("sts:") for a in as_list(st["Action"]))]
    assert [as_list(st["Action"]) for st in assuming] == [["sts:AssumeRole"]]
    roles = sorted(as_list(assuming[0]["Resource"]))
    assert roles == sorted(f"arn:aws:iam::111111111111:role/mlops-demo-{env}-{kind}"
                           for env in ("staging", "prod") for kind in ("deploy", "pipeline-runner", "plan"))
    # The role's whole policy takes these statements in (its other inputs are known after apply).
    calls = devops["configuration"]["root_module"]["module_calls"]["pipeline"]["module"]["resources"]
    [whole] = [r for r in calls if r["address"] == "data.aws_iam_policy_document.codebuild"]
    sources = whole["expressions"]["source_policy_documents"]["references"]
    assert "data.aws_iam_policy_document.codebuild_reach.json" in sources


@pytest.mark.slow
def test_pipeline_uses_only_its_connection_under_both_service_names(devops, pipeline):
    [using] = _document(devops, "codepipeline_source")
    assert sorted(as_list(using["Action"])) == ["codeconnections:UseConnection", "codestar-connections:UseConnection"]
    assert as_list(using["Resource"]) == [pipeline["stage"][0]["action"][0]["configuration"]["ConnectionArn"]]


# -- checkov -----------------------------------------------------------------------------------


@pytest.mark.slow  # ~35 s on 2 cores: checkov builds a graph of every module instance.
def test_checkov_finds_no_failed_check_and_every_skip_has_a_reason():
    result = subprocess.run(
        [sys.executable, "-m", "checkov.main", "-d", str(TERRAFORM), "--framework", "terraform",
         "--skip-download", "-o", "json"],
        capture_output=True, text=True, timeout=600, cwd=ROOT)
    report = json.loads(result.stdout)
    report = report[0] if isinstance(report, list) else report
    summary = report["summary"]
    failed = [f"{c['check_id']} {c['resource']} ({c['file_path']})" for c in report["results"]["failed_checks"]]
    assert not failed, "checkov failed checks:\n" + "\n".join(failed)
    assert summary["parsing_errors"] == 0
    assert summary["passed"] > 100 and summary["resource_count"] >= 50
    for skipped in report["results"]["skipped_checks"]:
        reason = skipped["check_result"].get("suppress_comment", "")
        assert len(reason) > 20, f"{skipped['check_id']} on {skipped['resource']} is skipped without a reason"
    print(f"checkov: passed {summary['passed']}, failed {summary['failed']}, skipped {summary['skipped']}")
