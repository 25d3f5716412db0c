"""SageMaker's side of a pipeline execution, played against the moto server.

moto starts and describes pipeline executions (and reports them Succeeded at once) but answers
500 to ListPipelineExecutionSteps. So that one operation is answered here, through a Stubber
(botocore checks the request and the answer against the real API model), after doing what
SageMaker would have done for the execution's definition: each Processing step becomes a
processing job in moto, a Training step records where its model lands, RegisterModel creates
the model package in moto, and the step whose output is named "predictions" writes predictions
to moto's S3. Every other SageMaker call reaches moto unchanged.

Install after tests.aws_calls, so the caller's call is recorded before it is answered here.
"""

from __future__ import annotations

import json
import os
from typing import Any

from tests.aws_calls import (
    _PARAMS,
    SERVICE_KEYS,
    _access_key,
    add_handlers,
    keep_params,
    remove_handlers,
    service_client,
)

PREDICTIONS = "id,score,prediction\np-00001,0.91,1\np-00002,0.12,0\np-00003,0.55,1\n"
_RUNS: dict[str, list[dict]] = {}


class Execution:
    """One pipeline execution, played step by step."""

    def __init__(self, arn: str, region: str, endpoint: str) -> None:
        self.arn, self.region, self.endpoint = arn, region, endpoint
        self.account = arn.split(":")[4]
        self.sm = service_client("sagemaker", region, endpoint, self.account)
        self.id = arn.rsplit("/", 1)[-1]
        described = self.sm.describe_pipeline_execution(PipelineExecutionArn=arn)
        pipeline = self.sm.describe_pipeline(PipelineName=described["PipelineArn"].rsplit("/", 1)[-1])
        self.definition = json.loads(pipeline["PipelineDefinition"])
        given = {p["Name"]: p["Value"] for p in self.sm.list_pipeline_parameters_for_execution(
            PipelineExecutionArn=arn).get("PipelineParameters", [])}
        self.parameters = {p["Name"]: given.get(p["Name"], p.get("DefaultValue"))
                           for p in self.definition.get("Parameters", [])}
        self.properties: dict[str, Any] = {}

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Get"}:
            kind, _, rest = value["Get"].partition(".")
            if kind == "Parameters":
                return self.parameters[rest]
            if kind == "Execution":
                return self.id
            return self.properties[value["Get"]]
        if "Std:Join" in value:
            join = value["Std:Join"]
            return join["On"].join(str(self.resolve(v)) for v in join["Values"])
        if "Std:JsonGet" in value:
            return 0.9  # the evaluation's metric: a model good enough to register
        return {k: self.resolve(v) for k, v in value.items()}

    def run(self) -> list[dict]:
        summaries = []
        for step in self.definition["Steps"]:
            summaries += self.step(step)
        return summaries

    def step(self, step: dict) -> list[dict]:
        name, kind = step["Name"], step["Type"]
        summary: dict[str, Any] = {"StepName": name, "StepStatus": "Succeeded", "Metadata": {}}
        job = f"pipelines-{self.id}-{name}".lower()[:63]
        if kind == "Processing":
            args = self.resolve(step["Arguments"])
            arn = self.sm.create_processing_job(ProcessingJobName=job, **args)["ProcessingJobArn"]
            summary["Metadata"] = {"ProcessingJob": {"Arn": arn}}
            for out in args.get("ProcessingOutputConfig", {}).get("Outputs", []):
                uri = out["S3Output"]["S3Uri"]
                path = f"Steps.{name}.ProcessingOutputConfig.Outputs['{out['OutputName']}'].S3Output.S3Uri"
                self.properties[path] = uri
                if out["OutputName"] == "predictions":
                    self.put(f"{uri.rstrip('/')}/predictions.csv", PREDICTIONS)
        elif kind == "Training":
            args = self.resolve(step["Arguments"])
            self.properties[f"Steps.{name}.ModelArtifacts.S3ModelArtifacts"] = \
                f"{args['OutputDataConfig']['S3OutputPath'].rstrip('/')}/{job}/output/model.tar.gz"
            arn = f"arn:aws:sagemaker:{self.region}:{self.account}:training-job/{job}"
            summary["Metadata"] = {"TrainingJob": {"Arn": arn}}
        elif kind == "RegisterModel":
            args = self.resolve(step["Arguments"])
            arn = self.sm.create_model_package(**args)["ModelPackageArn"]
            summary["Metadata"] = {"RegisterModel": {"Arn": arn}}
        elif kind == "Condition":
            summary["Metadata"] = {"Condition": {"Outcome": "True"}}
            return [summary] + [s for inner in step["Arguments"].get("IfSteps", []) for s in self.step(inner)]
        elif kind == "Fail":
            return []
        else:
            raise AssertionError(f"step type {kind} of step {name} is not played here")
        return [summary]

    def put(self, uri: str, body: str) -> None:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        s3 = service_client("s3", self.region, self.endpoint, self.account)
        s3.put_object(Bucket=bucket, Key=key, Body=body.encode())


def _answer(model: Any, context: dict, request_signer: Any = None, **_: Any):
    if model.name != "ListPipelineExecutionSteps":
        return None
    from botocore.awsrequest import AWSResponse
    from botocore.stub import Stubber

    if _access_key(request_signer) in SERVICE_KEYS:
        return None  # the Stubber below answers its own client
    params = context[_PARAMS]
    region = request_signer.region_name
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    arn = params["PipelineExecutionArn"]
    if arn not in _RUNS:
        _RUNS[arn] = Execution(arn, region, endpoint).run()
    twin = service_client("sagemaker", region, endpoint)
    with Stubber(twin) as stub:
        stub.add_response("list_pipeline_execution_steps", {"PipelineExecutionSteps": _RUNS[arn]}, params)
        parsed = twin.list_pipeline_execution_steps(**params)
    return AWSResponse(endpoint, 200, {}, None), parsed


HANDLERS = [("before-parameter-build", keep_params), ("before-call", _answer)]


def install() -> None:
    add_handlers(HANDLERS)


def uninstall() -> None:
    remove_handlers(HANDLERS)
    _RUNS.clear()


# -- an ML environment as Terraform leaves it ----------------------------------------------------

# The values tests/test_pipeline_definitions.py evaluates the definitions module with, and what
# an environment passes instead (terraform/modules/sagemaker-pipelines, names from the naming module).
def definitions_for(evaluated: dict, inputs: dict, project: str, env: str, region: str,
                    accounts: dict[str, str]) -> dict[str, dict]:
    data, account = accounts["data"], accounts[env]
    swap = {
        inputs["inference_data_uri"]: f"s3://{project}-datalake-{data}/score/",
        inputs["input_data_uri"]: f"s3://{project}-datalake-{data}/input/",
        inputs["code_s3_uri"].rstrip("/"): f"s3://{project}-{env}-code-{account}/code",
        inputs["model_s3_uri"].rstrip("/"): f"s3://{project}-models-{data}/{env}",
        inputs["predictions_s3_uri"].rstrip("/"): f"s3://{project}-predictions-{data}/{env}",
        inputs["role_arn"]: f"arn:aws:iam::{account}:role/{project}-{env}-sagemaker",
        inputs["output_kms_key_arn"]: f"arn:aws:kms:{region}:{data}:alias/{project}-data",
        inputs["model_package_group_name"]: f"{project}-{env}-models",
    }
    out = {}
    for kind in ("training", "inference"):
        text = json.dumps(evaluated[kind])
        for old, new in sorted(swap.items(), key=lambda kv: -len(kv[0])):
            text = text.replace(old, new)
        out[kind] = json.loads(text)
    return out


def prepare(project: str, env: str, region: str, accounts: dict[str, str], endpoint: str,
            definitions: dict[str, dict], data_buckets: bool = True) -> None:
    """The data buckets, ENV's code bucket, model package group and both pipelines, in their accounts."""
    data, account = accounts["data"], accounts[env]
    s3 = service_client("s3", region, endpoint, data)
    for purpose in ("datalake", "models", "predictions") if data_buckets else ():
        s3.create_bucket(Bucket=f"{project}-{purpose}-{data}")
    service_client("s3", region, endpoint, account).create_bucket(Bucket=f"{project}-{env}-code-{account}")
    sm = service_client("sagemaker", region, endpoint, account)
    sm.create_model_package_group(ModelPackageGroupName=f"{project}-{env}-models")
    for kind, definition in definitions.items():
        sm.create_pipeline(PipelineName=f"{project}-{env}-{kind}", PipelineDefinition=json.dumps(definition),
                           RoleArn=f"arn:aws:iam::{account}:role/{project}-{env}-sagemaker")
