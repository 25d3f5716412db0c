"""SageMaker pipelines in an environment's account: start an execution, follow it step by step,
collect what it produced (model package, predictions) and check the predictions.

Waiting polls with a growing delay (SageMaker jobs take minutes; polling every second only
burns API quota). The sleep and the clock are injectable so tests never wait.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from mlcicd.aws import errors
from mlcicd.config import Config, Environment
from mlcicd.errors import MlcicdError, UsageError

# The inference pipeline's parameter for the model to run (the pipeline-definitions module declares it).
MODEL_DATA_PARAMETER = "ModelDataUri"
DONE = frozenset({"Succeeded", "Failed", "Stopped"})
# Batch-transform and Spark write these beside the data; they are not predictions.
_NOT_DATA = ("_SUCCESS", ".manifest", "/")


def pipeline_name(config: Config, env: Environment, kind: str) -> str:
    """The SageMaker pipeline's name, as the sagemaker-pipelines module names it."""
    return f"{config.project}-{env.name}-{kind}"


class PipelineRunFailed(MlcicdError):
    """The execution ended Failed or Stopped."""

    def __init__(self, execution_arn: str, status: str, step: str, reason: str) -> None:
        self.execution_arn = execution_arn
        self.status = status
        self.step = step
        self.reason = reason
        where = f" at step {step}" if step else ""
        super().__init__(f"pipeline execution {status.lower()}{where}: {reason or 'no reason given'}"
                         f"\n  execution: {execution_arn}")


class PipelineRunTimeout(MlcicdError):
    """The execution did not finish within --timeout."""

    def __init__(self, execution_arn: str, seconds: float, running: tuple[str, ...]) -> None:
        self.execution_arn = execution_arn
        self.seconds = seconds
        self.running = running
        still = f" (still running: {', '.join(running)})" if running else ""
        super().__init__(f"pipeline execution did not finish within {seconds:g}s{still}\n  execution: {execution_arn}",
                         hint="it keeps running in SageMaker; stop it there or wait longer with --timeout")


class NoModelRegistered(MlcicdError):
    """The training pipeline succeeded without registering a model."""

    def __init__(self, execution_arn: str) -> None:
        self.execution_arn = execution_arn
        super().__init__(f"the training pipeline succeeded but registered no model package "
                         f"(did the evaluation miss the threshold?)\n  execution: {execution_arn}")


class OutputCheckFailed(MlcicdError):
    """The predictions are missing or do not have the expected shape."""


@dataclass(frozen=True)
class Step:
    name: str
    status: str
    reason: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunResult:
    pipeline: str
    execution_arn: str
    status: str
    model_package_arn: str = ""
    predictions_uri: str = ""
    steps: tuple[Step, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"pipeline": self.pipeline, "execution_arn": self.execution_arn, "status": self.status,
                "model_package_arn": self.model_package_arn or None,
                "predictions_uri": self.predictions_uri or None,
                "steps": [{"name": s.name, "status": s.status, "reason": s.reason or None} for s in self.steps]}

    def exports(self) -> dict[str, str]:
        values = {"PIPELINE_EXECUTION_ARN": self.execution_arn, "PIPELINE_STATUS": self.status}
        if self.model_package_arn:
            values["MODEL_PACKAGE_ARN"] = self.model_package_arn
        if self.predictions_uri:
            values["PREDICTIONS_URI"] = self.predictions_uri
        return values


@dataclass(frozen=True)
class Poller:
    """When to look again: `first` seconds, growing by `factor` up to `cap`."""

    first: float = 5.0
    factor: float = 1.5
    cap: float = 60.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic

    def delays(self) -> Iterator[float]:
        delay = self.first
        while True:
            yield delay
            delay = min(self.cap, delay * self.factor)


def parse_params(pairs: tuple[str, ...]) -> dict[str, str]:
    params: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--param {pair!r}: expected NAME=VALUE")
        params[key] = value
    return params


def start(sm: Any, name: str, params: Mapping[str, str], display_name: str = "") -> str:
    kwargs: dict[str, Any] = {"PipelineName": name}
    if params:
        kwargs["PipelineParameters"] = [{"Name": k, "Value": v} for k, v in params.items()]
    if display_name:
        kwargs["PipelineExecutionDisplayName"] = display_name[:82]
    with errors(f"starting SageMaker pipeline {name}", resource=name):
        return sm.start_pipeline_execution(**kwargs)["PipelineExecutionArn"]


def steps(sm: Any, execution_arn: str) -> tuple[Step, ...]:
    found: list[Step] = []
    kwargs: dict[str, Any] = {"PipelineExecutionArn": execution_arn, "SortOrder": "Ascending"}
    with errors("listing the pipeline execution's steps", resource=execution_arn):
        while True:
            page = sm.list_pipeline_execution_steps(**kwargs)
            found += [Step(s.get("StepDisplayName") or s["StepName"], s.get("StepStatus", ""),
                           s.get("FailureReason", ""), s.get("Metadata", {}))
                      for s in page.get("PipelineExecutionSteps", ())]
            if not page.get("NextToken"):
                return tuple(found)
            kwargs["NextToken"] = page["NextToken"]


def wait(sm: Any, pipeline: str, execution_arn: str, *, timeout: float, poller: Poller,
         report: Callable[[str], None]) -> RunResult:
    """Poll until the execution ends, reporting each step's status as it changes."""
    deadline = poller.clock() + timeout
    seen: dict[str, str] = {}
    last_status = ""
    for delay in poller.delays():
        with errors("reading the pipeline execution", resource=execution_arn):
            described = sm.describe_pipeline_execution(PipelineExecutionArn=execution_arn)
        status = described["PipelineExecutionStatus"]
        current = steps(sm, execution_arn)
        for step in current:
            if seen.get(step.name) != step.status:
                seen[step.name] = step.status
                report(f"  {step.name}: {step.status}" + (f" ({step.reason})" if step.reason else ""))
        if status != last_status:
            report(f"{pipeline}: {status}")
            last_status = status
        if status in DONE:
            return _finish(sm, pipeline, execution_arn, status, described, current)
        if poller.clock() + delay > deadline:
            running = tuple(s.name for s in current if s.status not in DONE)
            raise PipelineRunTimeout(execution_arn, timeout, running)
        poller.sleep(delay)
    raise AssertionError("unreachable: delays() is endless")


def _finish(sm: Any, pipeline: str, arn: str, status: str, described: Mapping[str, Any],
            current: tuple[Step, ...]) -> RunResult:
    if status != "Succeeded":
        failed = [s for s in current if s.status in ("Failed", "Stopped")]
        step = failed[0] if failed else None
        reason = (step.reason if step else "") or described.get("FailureReason", "")
        raise PipelineRunFailed(arn, status, step.name if step else "", reason)
    return RunResult(pipeline, arn, status, model_package_arn(current), steps=current)


def model_package_arn(current: tuple[Step, ...]) -> str:
    """The model package the RegisterModel step created ("" when none did)."""
    for step in reversed(current):
        arn = step.metadata.get("RegisterModel", {}).get("Arn")
        if step.status == "Succeeded" and arn:
            return arn
    return ""


def model_data_uri(sm: Any, package_arn: str) -> str:
    """The S3 location of a registered model's artefacts (model.tar.gz)."""
    with errors("reading the model package", resource=package_arn):
        package = sm.describe_model_package(ModelPackageName=package_arn)
    containers = package.get("InferenceSpecification", {}).get("Containers", ())
    uri = next((c["ModelDataUrl"] for c in containers if c.get("ModelDataUrl")), "")
    if not uri:
        raise UsageError(f"model package {package_arn} names no model artefacts (ModelDataUrl)")
    return uri


def predictions_uri(sm: Any, current: tuple[Step, ...]) -> str:
    """Where the last transform job (or processing output named "predictions") wrote."""
    for step in reversed(current):
        if step.status != "Succeeded":
            continue
        if "TransformJob" in step.metadata:
            name = step.metadata["TransformJob"]["Arn"].rsplit("/", 1)[-1]
            with errors("reading the transform job", resource=name):
                job = sm.describe_transform_job(TransformJobName=name)
            return job["TransformOutput"]["S3OutputPath"]
        if "ProcessingJob" in step.metadata:
            name = step.metadata["ProcessingJob"]["Arn"].rsplit("/", 1)[-1]
            with errors("reading the processing job", resource=name):
                job = sm.describe_processing_job(ProcessingJobName=name)
            for out in job.get("ProcessingOutputConfig", {}).get("Outputs", ()):
                if out.get("OutputName") == "predictions":
                    return out["S3Output"]["S3Uri"]
    return ""


@dataclass(frozen=True)
class OutputCheck:
    """What an inference run's predictions must look like (`--check-output`)."""

    expect_columns: tuple[str, ...] = ()
    expect_rows: int | None = None
    predictions: str = ""  # where to check, when the execution does not say


@dataclass(frozen=True)
class RunRequest:
    """What `run-pipeline` was asked to do."""

    pipeline: str
    kind: str  # training or inference
    params: Mapping[str, str] = field(default_factory=dict)
    wait: bool = False
    timeout: float = 3600.0
    check: OutputCheck | None = None
    model_package: str = ""  # inference: run the model of this package (its artefacts become ModelDataUri)

    def __post_init__(self) -> None:
        if self.check is not None and not self.wait:
            raise UsageError("--check-output needs --wait: there is nothing to check before the run ends")


def run(request: RunRequest, sm: Any, s3: Callable[[], Any], *, poller: Poller,
        report: Callable[[str], None], record: Callable[[RunResult], None]) -> RunResult:
    """Start the execution; with `wait`, follow it, require a model (training) and check the
    predictions (inference, `check`). `record` gets the outputs as soon as they are known,
    so they are kept even when a later step fails."""
    params = dict(request.params)
    if request.model_package:
        params.setdefault(MODEL_DATA_PARAMETER, model_data_uri(sm, request.model_package))
    arn = start(sm, request.pipeline, params, f"mlcicd-{request.kind}")
    report(f"{request.pipeline}: started {arn}")
    result = RunResult(request.pipeline, arn, "Executing")
    record(result)
    if not request.wait:
        return result
    result = wait(sm, request.pipeline, arn, timeout=request.timeout, poller=poller, report=report)
    # Only an inference run has predictions to look for: describing a training run's processing
    # jobs would need a permission the runner role has no other use for.
    if request.kind == "inference":
        result = replace(result, predictions_uri=predictions_uri(sm, result.steps))
    record(result)
    if request.kind == "training" and not result.model_package_arn:
        raise NoModelRegistered(arn)
    if request.check is not None:
        uri = request.check.predictions or result.predictions_uri
        if not uri:
            raise OutputCheckFailed("the execution reported no predictions location", hint="pass --predictions S3URI")
        checked = check_predictions(s3(), uri, expect_columns=request.check.expect_columns,
                                    expect_rows=request.check.expect_rows)
        result = replace(result, predictions_uri=uri)
        record(result)
        report(f"predictions ok: {checked.rows} rows, {checked.files} file(s), columns {', '.join(checked.columns)}")
    return result


# -- checking the predictions ------------------------------------------------------------------


@dataclass(frozen=True)
class PredictionsCheck:
    uri: str
    files: int
    rows: int
    columns: tuple[str, ...]  # the header, or column numbers when there is none


def check_predictions(s3: Any, uri: str, *, expect_columns: tuple[str, ...] = (),
                      expect_rows: int | None = None) -> PredictionsCheck:
    """Assert that CSV predictions exist under `uri` with the expected columns and row count."""
    bucket, prefix = _split_s3(uri)
    keys = []
    with errors("listing the predictions", resource=uri):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys += [o["Key"] for o in page.get("Contents", ()) if o["Size"] > 0 and not o["Key"].endswith(_NOT_DATA)]
    if not keys:
        raise OutputCheckFailed(f"no predictions found under {uri}")
    header: tuple[str, ...] = ()
    width = 0
    rows = 0
    for key in sorted(keys):
        with errors("reading the predictions", resource=f"s3://{bucket}/{key}"):
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8", "replace")
        for line_no, row in enumerate(csv.reader(io.StringIO(body)), start=1):
            if not row:
                continue
            if not width:
                width = len(row)
                if expect_columns and tuple(c.strip() for c in row) == expect_columns:
                    header = expect_columns
                    continue
            if line_no == 1 and header and tuple(c.strip() for c in row) == header:
                continue  # each part file repeats the header
            if len(row) != width:
                raise OutputCheckFailed(f"s3://{bucket}/{key} line {line_no}: {len(row)} columns, expected {width}")
            rows += 1
    if rows == 0:
        raise OutputCheckFailed(f"the predictions under {uri} have no rows")
    if expect_columns and width != len(expect_columns):
        raise OutputCheckFailed(f"the predictions under {uri} have {width} columns, expected "
                                f"{len(expect_columns)} ({', '.join(expect_columns)})")
    if expect_rows is not None and rows != expect_rows:
        raise OutputCheckFailed(f"the predictions under {uri} have {rows} rows, expected {expect_rows}")
    columns = header or tuple(str(i) for i in range(1, width + 1))
    return PredictionsCheck(uri, len(keys), rows, columns)


def _split_s3(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or not uri[5:].partition("/")[0]:
        raise UsageError(f"{uri!r} is not an s3:// location")
    bucket, _, prefix = uri[5:].partition("/")
    return bucket, prefix
