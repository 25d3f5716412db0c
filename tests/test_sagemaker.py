"""run-pipeline: starting against the emulator; following executions with Stubber sequences
(moto has no list_pipeline_execution_steps and finishes executions at once); checking predictions
in the emulator's S3."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import ANY, Stubber
from click.testing import CliRunner

from mlcicd import sagemaker
from mlcicd.cli import main
from tests.conftest import ACCOUNT, REGION

ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/demo-app-training/execution/abc123"
MODEL = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/demo-models/7"
TRANSFORM = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:transform-job/pipelines-abc-predict"
PREPROCESS = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:processing-job/pipelines-abc-Preprocess"
PREDICT = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:processing-job/pipelines-abc-Predict"
EVALUATE = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:processing-job/pipelines-abc-Evaluate"
MODEL_DATA = "s3://demo-models-123456789012/training/abc/model.tar.gz"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


class FakeTime:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def stubbed_sagemaker():
    client = boto3.client("sagemaker", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="y")
    return client, Stubber(client)


def step(name: str, status: str, reason: str = "", **metadata) -> dict:
    out = {"StepName": name, "StepStatus": status, "StartTime": T0, "Metadata": metadata}
    if reason:
        out["FailureReason"] = reason
    return out


def poll(stub: Stubber, status: str, steps: list[dict], arn: str = ARN, reason: str = "") -> None:
    described = {"PipelineExecutionArn": arn, "PipelineExecutionStatus": status}
    if reason:
        described["FailureReason"] = reason
    stub.add_response("describe_pipeline_execution", described, {"PipelineExecutionArn": arn})
    stub.add_response("list_pipeline_execution_steps", {"PipelineExecutionSteps": steps},
                      {"PipelineExecutionArn": arn, "SortOrder": "Ascending"})


def training_success(stub: Stubber) -> None:
    """The training pipeline's steps with the metadata SageMaker reports: its processing jobs
    are never described (the runner role needs no permission for that)."""
    poll(stub, "Executing", [step("Preprocess", "Executing", ProcessingJob={"Arn": PREPROCESS})])
    poll(stub, "Executing", [step("Preprocess", "Succeeded", ProcessingJob={"Arn": PREPROCESS}),
                             step("Train", "Executing")])
    poll(stub, "Succeeded", [step("Preprocess", "Succeeded", ProcessingJob={"Arn": PREPROCESS}),
                             step("Train", "Succeeded"),
                             step("Evaluate", "Succeeded", ProcessingJob={"Arn": EVALUATE}),
                             step("CheckMetric", "Succeeded", Condition={"Outcome": "True"}),
                             step("Register", "Succeeded", RegisterModel={"Arn": MODEL})])


def inference_success(stub: Stubber, output: str) -> None:
    """The inference pipeline as the definitions module builds it: Predict is a processing job
    whose output named "predictions" is where the predictions land."""
    poll(stub, "Executing", [step("Preprocess", "Executing")])
    poll(stub, "Succeeded", [step("Preprocess", "Succeeded", ProcessingJob={"Arn": PREPROCESS}),
                             step("Predict", "Succeeded", ProcessingJob={"Arn": PREDICT})])
    stub.add_response("describe_processing_job", {
        "ProcessingJobName": "pipelines-abc-Predict", "ProcessingJobArn": PREDICT,
        "ProcessingJobStatus": "Completed", "CreationTime": T0,
        "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large",
                                                  "VolumeSizeInGB": 30}},
        "AppSpecification": {"ImageUri": "sklearn"},
        "ProcessingOutputConfig": {"Outputs": [{"OutputName": "predictions", "S3Output": {
            "S3Uri": output, "LocalPath": "/opt/ml/processing/predictions", "S3UploadMode": "EndOfJob"}}]},
    }, {"ProcessingJobName": "pipelines-abc-Predict"})


def model_package(stub: Stubber) -> None:
    stub.add_response("describe_model_package", {
        "ModelPackageName": "demo-models", "ModelPackageArn": MODEL, "CreationTime": T0,
        "ModelPackageStatus": "Completed",
        "ModelPackageStatusDetails": {"ValidationStatuses": []},
        "InferenceSpecification": {"Containers": [{"Image": "sklearn", "ModelDataUrl": MODEL_DATA}],
                                   "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]},
    }, {"ModelPackageName": MODEL})


def test_wait_reports_each_step_change_and_returns_the_model_package():
    client, stub = stubbed_sagemaker()
    training_success(stub)
    fake, lines = FakeTime(), []
    with stub:
        result = sagemaker.wait(client, "demo-app-training", ARN, timeout=600,
                                poller=sagemaker.Poller(first=2, sleep=fake.sleep, clock=fake.clock),
                                report=lines.append)
    stub.assert_no_pending_responses()
    assert result.status == "Succeeded" and result.model_package_arn == MODEL
    assert lines == ["  Preprocess: Executing", "demo-app-training: Executing", "  Preprocess: Succeeded",
                     "  Train: Executing", "  Train: Succeeded", "  Evaluate: Succeeded", "  CheckMetric: Succeeded",
                     "  Register: Succeeded", "demo-app-training: Succeeded"]
    assert fake.sleeps == [2, 3]  # backs off between polls
    assert result.exports()["MODEL_PACKAGE_ARN"] == MODEL


def test_a_failed_step_fails_the_run_with_its_reason():
    client, stub = stubbed_sagemaker()
    poll(stub, "Executing", [step("Train", "Executing")])
    poll(stub, "Failed", [step("Train", "Failed", "AlgorithmError: loss is NaN")], reason="Step failure")
    fake = FakeTime()
    with stub, pytest.raises(sagemaker.PipelineRunFailed) as failed:
        sagemaker.wait(client, "p", ARN, timeout=600, poller=sagemaker.Poller(sleep=fake.sleep, clock=fake.clock),
                       report=lambda _: None)
    assert failed.value.step == "Train"
    assert "at step Train: AlgorithmError: loss is NaN" in str(failed.value)


def test_an_execution_that_never_ends_times_out():
    client, stub = stubbed_sagemaker()
    for _ in range(3):
        poll(stub, "Executing", [step("Train", "Executing")])
    fake = FakeTime()
    with stub, pytest.raises(sagemaker.PipelineRunTimeout) as timed_out:
        sagemaker.wait(client, "p", ARN, timeout=10, poller=sagemaker.Poller(first=4, sleep=fake.sleep,
                                                                           clock=fake.clock),
                       report=lambda _: None)
    stub.assert_no_pending_responses()
    assert fake.sleeps == [4, 6]
    assert timed_out.value.running == ("Train",)
    assert "did not finish within 10s (still running: Train)" in str(timed_out.value)


def test_predictions_location_comes_from_the_predict_step():
    client, stub = stubbed_sagemaker()
    inference_success(stub, "s3://preds/run1/abc/predictions")
    fake = FakeTime()
    with stub:
        result = sagemaker.wait(client, "p", ARN, timeout=60,
                                poller=sagemaker.Poller(sleep=fake.sleep, clock=fake.clock), report=lambda _: None)
        assert sagemaker.predictions_uri(client, result.steps) == "s3://preds/run1/abc/predictions"


def test_predictions_location_of_a_batch_transform_step():
    client, stub = stubbed_sagemaker()
    poll(stub, "Succeeded", [step("Transform", "Succeeded", TransformJob={"Arn": TRANSFORM})])
    stub.add_response("describe_transform_job", {
        "TransformJobName": "pipelines-abc-predict", "TransformJobArn": TRANSFORM,
        "TransformJobStatus": "Completed", "ModelName": "m", "CreationTime": T0,
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://in/x"}}},
        "TransformOutput": {"S3OutputPath": "s3://preds/batch/"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
    }, {"TransformJobName": "pipelines-abc-predict"})
    fake = FakeTime()
    with stub:
        result = sagemaker.wait(client, "p", ARN, timeout=60,
                                poller=sagemaker.Poller(sleep=fake.sleep, clock=fake.clock), report=lambda _: None)
        assert sagemaker.predictions_uri(client, result.steps) == "s3://preds/batch/"


# -- against the emulator ------------------------------------------------------------------------


def _cli(project, *args):
    return CliRunner().invoke(main, ["--config", str(project / "mlcicd.yaml"), *args])


def _create_pipeline(name: str) -> None:
    sm = boto3.client("sagemaker", region_name=REGION)
    definition = {"Version": "2020-12-01", "Parameters": [{"Name": "InputData", "Type": "String"}], "Steps": []}
    sm.create_pipeline(PipelineName=name, RoleArn=f"arn:aws:iam::{ACCOUNT}:role/sm",
                       PipelineDefinition=json.dumps(definition))


def test_run_pipeline_starts_the_execution_with_parameters_as_the_runner_role(aws_env, project, tmp_path):
    _create_pipeline("demo-app-training")
    out, exports = tmp_path / "run.json", tmp_path / "exports.sh"
    result = _cli(project, "run-pipeline", "app", "training", "--param", "InputData=s3://lake/census/",
                  "--output", str(out), "--exports", str(exports))
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["pipeline"] == "demo-app-training" and data["execution_arn"].startswith("arn:aws:sagemaker:")
    params = boto3.client("sagemaker", region_name=REGION).list_pipeline_parameters_for_execution(
        PipelineExecutionArn=data["execution_arn"])["PipelineParameters"]
    assert params == [{"Name": "InputData", "Value": "s3://lake/census/"}]
    assert f"export PIPELINE_EXECUTION_ARN={data['execution_arn']}" in exports.read_text()


def test_run_pipeline_of_a_missing_pipeline_fails_cleanly(aws_env, project):
    result = _cli(project, "run-pipeline", "app", "inference", "--no-assume-role")
    assert result.exit_code == 1
    assert "demo-app-inference" in result.output and "Traceback" not in result.output


def test_check_output_needs_wait(project):
    result = _cli(project, "run-pipeline", "app", "inference", "--check-output")
    assert result.exit_code == 2 and "--check-output needs --wait" in result.output


@pytest.fixture
def stubbed_cli(aws_env, monkeypatch):
    """The CLI with a stubbed SageMaker client and every other client real (the emulator)."""
    from mlcicd import aws

    client, stub = stubbed_sagemaker()
    real = aws.client

    def fake_client(config, runtime, service, role_arn=None, **kwargs):
        return client if service == "sagemaker" else real(config, runtime, service, role_arn, **kwargs)

    monkeypatch.setattr(aws, "client", fake_client)
    stub.activate()
    yield stub
    stub.deactivate()


def _predictions(body: str, key: str = "run1/input.csv.out") -> str:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="preds")
    s3.put_object(Bucket="preds", Key=key, Body=body.encode())
    return "s3://preds/run1/"


def test_inference_wait_and_check_output(stubbed_cli, project, tmp_path):
    uri = _predictions("id,score,prediction\n1,0.91,1\n2,0.12,0\n3,0.55,1\n")
    model_package(stubbed_cli)
    stubbed_cli.add_response("start_pipeline_execution", {"PipelineExecutionArn": ARN},
                             {"PipelineName": "demo-app-inference", "PipelineExecutionDisplayName": ANY,
                              "PipelineParameters": [{"Name": "ModelDataUri", "Value": MODEL_DATA}]})
    inference_success(stubbed_cli, uri)
    out = tmp_path / "run.json"
    result = _cli(project, "run-pipeline", "app", "inference", "--wait", "--poll-interval", "0",
                  "--model-package", MODEL, "--check-output", "--expect-columns", "id,score,prediction",
                  "--expect-rows", "3", "--output", str(out))
    assert result.exit_code == 0, result.output
    assert "  Preprocess: Executing" in result.output and "  Predict: Succeeded" in result.output
    assert "predictions ok: 3 rows, 1 file(s), columns id, score, prediction" in result.output
    assert json.loads(out.read_text())["predictions_uri"] == uri


def test_check_output_fails_on_wrong_rows(stubbed_cli, project):
    uri = _predictions("1,0.91\n2,0.12\n")
    stubbed_cli.add_response("start_pipeline_execution", {"PipelineExecutionArn": ARN})
    inference_success(stubbed_cli, uri)
    result = _cli(project, "run-pipeline", "app", "inference", "--wait", "--poll-interval", "0",
                  "--check-output", "--expect-rows", "5")
    assert result.exit_code == 1
    assert "have 2 rows, expected 5" in result.output


def test_training_that_registers_no_model_fails(stubbed_cli, project, tmp_path):
    stubbed_cli.add_response("start_pipeline_execution", {"PipelineExecutionArn": ARN})
    poll(stubbed_cli, "Succeeded", [step("CheckMetric", "Succeeded", Condition={"Outcome": "False"})])
    out = tmp_path / "run.json"
    result = _cli(project, "run-pipeline", "app", "training", "--wait", "--output", str(out))
    assert result.exit_code == 1
    assert "registered no model package" in result.output
    assert json.loads(out.read_text())["status"] == "Succeeded"  # outputs are written even on failure


@pytest.mark.parametrize(("body", "columns", "message"), [
    ("", (), "no predictions found"),
    ("id,score\n", ("id", "score"), "have no rows"),
    ("1,0.5\n2\n", (), "line 2: 1 columns, expected 2"),
    ("1,0.5,x\n", ("id", "score"), "have 3 columns, expected 2 (id, score)"),
])
def test_check_predictions_rejects_bad_output(aws_env, body, columns, message):
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="preds")
    if body:
        s3.put_object(Bucket="preds", Key="run1/part-0.csv", Body=body.encode())
    with pytest.raises(sagemaker.OutputCheckFailed) as failed:
        sagemaker.check_predictions(s3, "s3://preds/run1/", expect_columns=columns)
    assert message in str(failed.value)


def test_check_predictions_reads_every_part_file(aws_env):
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="preds")
    s3.put_object(Bucket="preds", Key="run1/part-0.csv", Body=b"id,score\n1,0.5\n")
    s3.put_object(Bucket="preds", Key="run1/part-1.csv", Body=b"id,score\n2,0.7\n3,0.1\n")
    s3.put_object(Bucket="preds", Key="run1/_SUCCESS", Body=b"x")
    checked = sagemaker.check_predictions(s3, "s3://preds/run1/", expect_columns=("id", "score"), expect_rows=3)
    assert (checked.files, checked.rows, checked.columns) == (2, 3, ("id", "score"))
