"""release, status, approve, reject. moto 5.2 implements none of start_pipeline_execution,
get_pipeline_state or put_approval_result, so these run on a real botocore client with a Stubber
(every request is checked against the real CodePipeline API model)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber
from click.testing import CliRunner

from mlcicd import pipeline
from mlcicd.cli import main
from tests.conftest import REGION

NAME = "demo-pipeline"
T0 = datetime(2026, 1, 1, 12, 30, tzinfo=UTC)
TOKEN = "0f1e2d3c-approval-token"


def _action(name: str, status: str | None, **extra) -> dict:
    action = {"actionName": name}
    if status:
        action["latestExecution"] = {"status": status, "lastStatusChange": T0, **extra}
    return action


def _stage(name: str, status: str, *actions: dict) -> dict:
    return {"stageName": name, "latestExecution": {"pipelineExecutionId": "exec-1", "status": status},
            "actionStates": list(actions)}


WAITING = {"pipelineName": NAME, "stageStates": [
    _stage("Source", "Succeeded", _action("Source", "Succeeded", summary="Merge pull request #7")),
    _stage("Build", "Succeeded", _action("Build", "Succeeded")),
    _stage("Train", "Succeeded", _action("Train", "Succeeded")),
    _stage("Test", "Succeeded", _action("Test", "Succeeded")),
    _stage("Approval", "InProgress", _action("PlanProd", "Succeeded"),
           _action("Approve", "InProgress", token=TOKEN)),
    _stage("Deploy", "", _action("Deploy", None)),
]}
FAILED = {"pipelineName": NAME, "stageStates": [
    _stage("Build", "Failed", _action("Build", "Failed", errorDetails={"code": "JobFailed",
                                                                        "message": "Build failed: exit 3"})),
]}


@pytest.fixture
def stub(monkeypatch):
    from mlcicd import aws

    client = boto3.client("codepipeline", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="y")
    stubber = Stubber(client)
    monkeypatch.setattr(aws, "client", lambda config, runtime, service, role_arn=None, **kw: client)
    with stubber:
        yield stubber
    stubber.assert_no_pending_responses()


def _cli(project, *args):
    return CliRunner().invoke(main, ["--config", str(project / "mlcicd.yaml"), *args])


def test_release_starts_the_pipeline(stub, project):
    stub.add_response("start_pipeline_execution", {"pipelineExecutionId": "exec-42"}, {"name": NAME})
    result = _cli(project, "release")
    assert result.exit_code == 0, result.output
    assert "demo-pipeline: started execution exec-42" in result.output


def test_status_table_shows_every_stage_and_the_waiting_approval(stub, project):
    stub.add_response("get_pipeline_state", WAITING, {"name": NAME})
    result = _cli(project, "status")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "Pipeline demo-pipeline"
    assert [line.split()[0] for line in lines[2:]] == ["Source", "Build", "Train", "Test", "Approval", "Approval",
                                                       "Deploy"]
    approve = next(line for line in lines if " Approve " in line)
    assert "WaitingForApproval" in approve and "2026-01-01 12:30:00" in approve
    assert TOKEN not in result.output


def test_status_json(stub, project):
    stub.add_response("get_pipeline_state", FAILED, {"name": NAME})
    result = _cli(project, "status", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    build = data["stages"][0]["actions"][0]
    assert (build["status"], build["error"], build["pending_approval"]) == ("Failed", "Build failed: exit 3", False)


def test_approve_finds_the_token_itself(stub, project):
    stub.add_response("get_pipeline_state", WAITING, {"name": NAME})
    stub.add_response("put_approval_result", {"approvedAt": T0}, {
        "pipelineName": NAME, "stageName": "Approval", "actionName": "Approve", "token": TOKEN,
        "result": {"summary": "plan looks right", "status": "Approved"}})
    result = _cli(project, "approve", "--comment", "plan looks right")
    assert result.exit_code == 0, result.output
    assert "demo-pipeline: approved Approval/Approve" in result.output


def test_reject_records_rejected(stub, project):
    stub.add_response("get_pipeline_state", WAITING, {"name": NAME})
    stub.add_response("put_approval_result", {"approvedAt": T0}, {
        "pipelineName": NAME, "stageName": "Approval", "actionName": "Approve", "token": TOKEN,
        "result": {"summary": "Rejected with mlcicd", "status": "Rejected"}})
    result = _cli(project, "reject")
    assert result.exit_code == 0, result.output
    assert "rejected Approval/Approve" in result.output


def test_nothing_to_approve_exits_1(stub, project):
    stub.add_response("get_pipeline_state", FAILED, {"name": NAME})
    result = _cli(project, "approve")
    assert result.exit_code == 1
    assert "has no approval waiting for a decision" in result.output


def test_two_pending_approvals_must_be_named():
    client = boto3.client("codepipeline", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="y")
    two = {"pipelineName": NAME, "stageStates": [
        _stage("QA", "InProgress", _action("SignOff", "InProgress", token="t1")),
        _stage("Approval", "InProgress", _action("Approve", "InProgress", token="t2")),
    ]}
    with Stubber(client) as stub:
        stub.add_response("get_pipeline_state", two, {"name": NAME})
        with pytest.raises(pipeline.AmbiguousApproval) as ambiguous:
            pipeline.decide(client, NAME, approve=True, comment="")
        assert ambiguous.value.actions == ("QA/SignOff", "Approval/Approve")
        stub.add_response("get_pipeline_state", two, {"name": NAME})
        stub.add_response("put_approval_result", {"approvedAt": T0}, {
            "pipelineName": NAME, "stageName": "QA", "actionName": "SignOff", "token": "t1",
            "result": {"summary": "ok", "status": "Approved"}})
        assert pipeline.decide(client, NAME, approve=True, comment="ok", action="QA/SignOff").name == "SignOff"


def test_a_missing_pipeline_is_reported_without_traceback(stub, project):
    stub.add_client_error("get_pipeline_state", "PipelineNotFoundException", "Account does not have a pipeline",
                          expected_params={"name": "other"})
    result = _cli(project, "status", "--pipeline", "other")
    assert result.exit_code == 1
    assert "PipelineNotFoundException" in result.output and "Traceback" not in result.output


def test_build_console_url_and_exports(tmp_path):
    arn = "arn:aws:codebuild:eu-west-1:123456789012:build/demo-plan-prod:5f2c-77aa"
    assert pipeline.build_console_url(arn) == (
        "https://eu-west-1.console.aws.amazon.com/codesuite/codebuild/123456789012/projects/demo-plan-prod/"
        "build/demo-plan-prod%3A5f2c-77aa/?region=eu-west-1")
    assert pipeline.build_console_url("") == ""
    path = pipeline.write_exports(tmp_path / "e.sh", {"PLAN_HEADLINE": "prod: 1 to destroy; $(rm -rf /)'x"})
    import subprocess

    shown = subprocess.run(["bash", "-c", f'. "{path}"; printf %s "$PLAN_HEADLINE"'], capture_output=True,
                           text=True, check=True).stdout
    assert shown == "prod: 1 to destroy; $(rm -rf /)'x"
