"""Every AWS call a pipeline action makes is allowed by the planned policies of the role making it.

The Train and Test actions' commands — the argv buildspec.yml runs for them — run against the
moto server (SageMaker's side played by tests/sagemaker_side.py where moto has no API), and
tests/aws_calls.py records each call botocore makes with the principal whose credentials sign
it. Each call becomes an IAM request — action from botocore's signing name and the operation
(Service Authorization Reference names where they differ), resource ARN built per that
reference — and tests/iam_eval.py decides it against the policies of the offline plans
(`mlcicd plan ENV --offline`): the caller's identity policies, and the resource's own policy
(role trust, bucket, KMS key, model package group), which across accounts must allow as well.
An S3 read of an object encrypted with a planned KMS key also needs kms:Decrypt through S3.

The requests SageMaker's jobs make as the execution role (planned in roles-ENV by ml-baseline,
apart from the pipelines in the ML environment) are read from the pipeline definitions, step by
step as tests/sagemaker_side.py plays them, and decided the same way.

Build, PlanProd and Deploy make no botocore calls (Terraform makes its own; the pipeline
simulation in test_pipeline_sim.py records them as empty). `mlcicd approve` is run by a person
with their own credentials, not by a planned role.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from mlcicd.cli import main
from tests import aws_calls, planned_policies, sagemaker_side, stubbed_ops
from tests.iam_eval import Request, Verdict, decide
from tests.offline_plans import copy_repository, offline_environ

REPO = Path(__file__).resolve().parent.parent
BUILDSPEC = REPO / "buildspec.yml"
PLANNED = ("devops", "roles-staging", "roles-prod", "staging", "data")
CONFIGS = {
    "single-account": None,  # the example mlcicd.yaml as it is
    "five-accounts": {"devops": "111111111111", "dev": "222222222222", "staging": "333333333333",
                      "prod": "444444444444", "data": "555555555555"},
}
# IAM action names that differ from the operation's (Service Authorization Reference, S3 section).
IAM_ACTION = {("s3", "ListObjectsV2"): "ListBucket", ("s3", "ListObjects"): "ListBucket",
              ("s3", "HeadObject"): "GetObject", ("s3", "HeadBucket"): "ListBucket"}
# The key id an offline plan cannot know; policies scoped to key/* still decide.
KEY_ID = "00000000-0000-0000-0000-000000000000"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def evaluated_definitions(tmp_path_factory):
    from tests.test_pipeline_definitions import evaluate_module

    return evaluate_module(tmp_path_factory.mktemp("definitions"))


@pytest.fixture(scope="module", params=list(CONFIGS))
def system(request, tmp_path_factory):
    """A copy of the repository with the config under test, and its planned policies."""
    from mlcicd import config as configuration
    from mlcicd.offline import preview
    from mlcicd.runtime import Runtime

    root = copy_repository(tmp_path_factory.mktemp(request.param))
    if CONFIGS[request.param]:
        data = yaml.safe_load((root / "mlcicd.yaml").read_text())
        data["accounts"] = CONFIGS[request.param]
        (root / "mlcicd.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    with offline_environ():
        config = configuration.load(root / "mlcicd.yaml")
        runtime = Runtime.from_environ()

        def plan(name: str) -> planned_policies.Policies:
            env = config.env(name)
            with preview.workspace(config, env, runtime, sink=lambda line, is_err: None) as ws:
                outcome = ws.plan(root / "plans" / name)
            document = json.loads((outcome.plan_dir / "plan.json").read_text())
            return planned_policies.read(document, config.accounts[env.account_role], config.region, env.dir)

        with ThreadPoolExecutor(max_workers=3) as pool:
            parts = list(pool.map(plan, PLANNED))
    merged = planned_policies.Policies()
    for part in parts:
        for name in ("identity", "trust", "buckets", "bucket_accounts", "keys", "package_groups"):
            getattr(merged, name).update(getattr(part, name))
        merged.codebuild_roles |= part.codebuild_roles
    return root, config, merged


def buildspec_argv(workdir: Path, action: str, env: dict[str, str]) -> list[list[str]]:
    """The mlcicd commands buildspec.yml's build phase runs for `action`, with this environment."""
    spec = yaml.safe_load(BUILDSPEC.read_text())
    log = workdir / f".argv-{action}"
    fakes = textwrap.dedent(f"""\
        mlcicd() {{ for a in "$@"; do printf '%s\\037' "$a"; done; printf '\\036'; }} >> "{log}"
        """)
    variables = {**os.environ, **{k: str(v) for k, v in spec["env"]["variables"].items()}, "MLCICD_ACTION": action,
                 **env}
    proc = subprocess.run(["bash", "-c", fakes + "\n".join(spec["phases"]["build"]["commands"])], cwd=workdir,
                          env=variables, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    raw = log.read_text() if log.exists() else ""
    return [call.split("\x1f")[:-1] for call in raw.split("\x1e") if call]


def exported(path: Path, name: str) -> str:
    proc = subprocess.run(["bash", "-c", f'. "{path}"; printf %s "${{{name}:-}}"'], capture_output=True, text=True)
    return proc.stdout


def requests(call: aws_calls.Call, policies: planned_policies.Policies) -> list[tuple[Request, dict]]:
    """The IAM requests one recorded call makes: itself, and what a service does on its behalf."""
    p, op, region = call.params, call.operation, call.region
    account = call.principal.split(":")[4]
    action = f"{call.signing_name}:{IAM_ACTION.get((call.signing_name, op), op)}"
    context = {"aws:SecureTransport": True}
    sm = f"arn:aws:sagemaker:{region}:{account}"
    arns = {
        ("sts", "AssumeRole"): lambda: p["RoleArn"],
        ("sagemaker", "StartPipelineExecution"): lambda: f"{sm}:pipeline/{p['PipelineName'].lower()}",
        ("sagemaker", "DescribePipelineExecution"): lambda: p["PipelineExecutionArn"],
        ("sagemaker", "ListPipelineExecutionSteps"): lambda: p["PipelineExecutionArn"],
        ("sagemaker", "DescribeProcessingJob"): lambda: f"{sm}:processing-job/{p['ProcessingJobName'].lower()}",
        ("sagemaker", "DescribeTransformJob"): lambda: f"{sm}:transform-job/{p['TransformJobName'].lower()}",
        ("sagemaker", "DescribeModelPackage"): lambda: p["ModelPackageName"] if p["ModelPackageName"].startswith(
            "arn:") else f"{sm}:model-package/{p['ModelPackageName'].lower()}",
        ("s3", "ListObjectsV2"): lambda: f"arn:aws:s3:::{p['Bucket']}",
        ("s3", "GetObject"): lambda: f"arn:aws:s3:::{p['Bucket']}/{p['Key']}",
    }
    rule = arns.get((call.signing_name, op))
    assert rule, f"no resource ARN rule for {call.signing_name}:{op}: add it from the Service Authorization Reference"
    resource = rule()
    extra: dict = {"resource_account": resource.split(":")[4] or None}
    found = [(Request(action, resource, call.principal, context), extra)]
    if call.signing_name == "sts":
        assert resource in policies.trust, f"{resource} is not a planned role"
        extra.update(resource=policies.trust[resource], resource_required=True)
    elif call.signing_name == "s3":
        bucket = p["Bucket"]
        assert bucket in policies.bucket_accounts, f"bucket {bucket} is not planned in any environment"
        extra.update(resource=policies.buckets[bucket], resource_account=policies.bucket_accounts[bucket])
        for key in policies.keys.values():
            if bucket in key["buckets"] and op == "GetObject":  # S3 decrypts the object's data key as the caller
                decrypt = Request("kms:Decrypt", f"arn:aws:kms:{region}:{key['account']}:key/{KEY_ID}",
                                  call.principal, {**context, "kms:ViaService": f"s3.{region}.amazonaws.com",
                                                   "kms:CallerAccount": account,
                                                   "kms:ResourceAliases": tuple(key["aliases"])})
                found.append((decrypt, {"resource": key["policy"], "resource_account": key["account"],
                                        "resource_required": True}))
    elif op == "DescribeModelPackage":
        owner, group = resource.split(":")[4], resource.split(":model-package/")[1].split("/")[0]
        extra["resource"] = policies.package_groups.get(
            f"arn:aws:sagemaker:{region}:{owner}:model-package-group/{group}")
    return found


def judge(calls: dict[str, list[aws_calls.Call]], policies) -> list[tuple[str, aws_calls.Call, Request, Verdict]]:
    judged = []
    for action, recorded in calls.items():
        for call in recorded:
            assert call.principal in policies.identity, f"{call.principal} has no planned identity policy"
            for request, extra in requests(call, policies):
                judged.append((action, call, request, decide(request, policies.identity[call.principal], **extra)))
    return judged


def table(judged) -> str:
    lines = []
    for action, call, request, verdict in judged:
        role = call.principal.rsplit("/", 1)[-1]
        why = "" if verdict.allowed else f"  <- {'; '.join(verdict.reasons)}"
        lines.append(f"{action:5} {role:36} {request.action:38} {request.resource}  {verdict.decision}{why}")
    return "\n".join(lines)


def run_recorded(root: Path, argvs: list[list[str]], principal: str, log: Path) -> list[aws_calls.Call]:
    """Run mlcicd commands in this process, recording every AWS call they make."""
    recorder = aws_calls.install(log, principal)
    sagemaker_side.install()
    stubbed_ops.install()
    try:
        for argv in argvs:
            result = CliRunner().invoke(main, ["--config", str(root / "mlcicd.yaml"), *argv])
            assert result.exit_code == 0, f"mlcicd {' '.join(argv)}\n{result.output}"
    finally:
        stubbed_ops.uninstall()
        sagemaker_side.uninstall()
        aws_calls.uninstall(recorder)
    return aws_calls.read(log)


def prepared(system, aws_env, evaluated_definitions, *envs: str) -> None:
    """The ML environments as Build would have applied them, and the data account's buckets."""
    _, config, _ = system
    for i, env in enumerate(envs):
        definitions = sagemaker_side.definitions_for(evaluated_definitions, _inputs(), config.project, env,
                                                     config.region, dict(config.accounts))
        sagemaker_side.prepare(config.project, env, config.region, dict(config.accounts), aws_env.url, definitions,
                               data_buckets=i == 0)


def train(system, tmp_path: Path, env: dict[str, str]) -> list[aws_calls.Call]:
    root, config, policies = system
    # The pipeline's actions run as the CodeBuild role; the read-only projects have roles of their own.
    [codebuild_role] = [r for r in policies.codebuild_roles if r.endswith(f"{config.project}-codebuild")]
    calls = run_recorded(root, buildspec_argv(tmp_path, "train", env), codebuild_role, tmp_path / "calls-train.jsonl")
    env["MODEL_PACKAGE_ARN"] = exported(Path(env["MLCICD_EXPORTS"]), "MODEL_PACKAGE_ARN")
    assert env["MODEL_PACKAGE_ARN"].startswith("arn:aws:sagemaker:"), Path(env["MLCICD_EXPORTS"]).read_text()
    return calls


def test_every_call_of_train_and_test_is_allowed_by_the_planned_policies(system, aws_env, evaluated_definitions,
                                                                        tmp_path):
    root, config, policies = system
    prepared(system, aws_env, evaluated_definitions, "staging")
    # The pipeline's actions run as the CodeBuild role; the read-only projects have roles of their own.
    [codebuild_role] = [r for r in policies.codebuild_roles if r.endswith(f"{config.project}-codebuild")]
    env = {"MLCICD_EXPORTS": str(tmp_path / "exports.sh"), "ARTIFACT_DIR": str(tmp_path / "artifact")}
    calls = {"train": train(system, tmp_path, env)}
    calls["test"] = run_recorded(root, buildspec_argv(tmp_path, "test", env), codebuild_role,
                                 tmp_path / "calls-test.jsonl")

    runner = config.runner_role_arn(config.env("staging"))
    for action in ("train", "test"):
        assert calls[action][0].operation == "AssumeRole" and calls[action][0].principal == codebuild_role
        assert {c.principal for c in calls[action][1:]} == {runner}
        assert "StartPipelineExecution" in {c.operation for c in calls[action]}
    assert {"GetObject", "DescribeModelPackage"} <= {c.operation for c in calls["test"]}
    judged = judge(calls, policies)
    print(table(judged))
    refused = [j for j in judged if not j[3].allowed]
    assert not refused, "calls the planned policies do not allow:\n" + table(refused)


def test_the_prod_runner_may_run_the_model_staging_registered(system, aws_env, evaluated_definitions, tmp_path,
                                                              monkeypatch):
    """Prod has no training pipeline: its inference pipeline runs the model staging registered,
    with the Test action's command pointed at prod. Reading the model package crosses accounts
    when staging and prod are two: prod's runner must be allowed, and the staging model package
    group's policy must allow prod's runner."""
    root, config, policies = system
    prepared(system, aws_env, evaluated_definitions, "staging", "prod")
    env = {"MLCICD_EXPORTS": str(tmp_path / "exports.sh"), "ARTIFACT_DIR": str(tmp_path / "artifact")}
    train(system, tmp_path, env)
    package = aws_calls.service_client("sagemaker", config.region, aws_env.url, config.accounts["staging"]) \
        .describe_model_package(ModelPackageName=env["MODEL_PACKAGE_ARN"])
    package.pop("ResponseMetadata")
    # moto leaves out what SageMaker's answer requires: a versioned package is named by its group.
    package.setdefault("ModelPackageName", package["ModelPackageGroupName"])
    package.setdefault("ModelPackageStatusDetails", {"ValidationStatuses": []})
    # moto keeps a model package in its own account; SageMaker answers across accounts.
    queue = tmp_path / "stubs.json"
    queue.write_text(json.dumps([{"service": "sagemaker", "operation": "describe_model_package",
                                  "expected_params": {"ModelPackageName": env["MODEL_PACKAGE_ARN"]},
                                  "response": package}], default=str))
    monkeypatch.setenv(stubbed_ops.VARIABLE, str(queue))
    argvs = [["prod" if arg == "staging" else arg for arg in argv] for argv in buildspec_argv(tmp_path, "test", env)]
    calls = run_recorded(root, argvs, "operator", tmp_path / "calls-prod.jsonl")
    assert json.loads(queue.read_text()) == []
    assert calls[0].operation == "AssumeRole"
    judged = judge({"prod": calls[1:]}, policies)  # an operator assumes the prod runner role
    print(table(judged))
    refused = [j for j in judged if not j[3].allowed]
    assert not refused, "calls the planned policies do not allow:\n" + table(refused)


def _inputs() -> dict:
    from tests.test_pipeline_definitions import INPUTS

    return INPUTS


# -- the SageMaker execution role: what its pipelines' jobs do ----------------------------------

# Per job step type: its ARN's resource type, its log group, the call that starts it.
JOB_KINDS = {"Processing": ("processing-job", "ProcessingJobs", "CreateProcessingJob"),
             "Training": ("training-job", "TrainingJobs", "CreateTrainingJob")}


def _object(uri: str) -> tuple[str, str]:
    """(bucket, an object key) under an S3 URI: the URI itself when it names a file."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    last = key.rstrip("/").rsplit("/", 1)[-1]
    return bucket, key if "." in last else f"{key.rstrip('/')}/part-0"


class ExecutionRequests:
    """The IAM requests a pipeline's steps make as the execution role (SageMaker passes the role
    to each job it starts, and the job reads, writes and encrypts as it), read from the
    definition as sagemaker_side plays it: every step that runs, parameters at their defaults."""

    def __init__(self, role: str, region: str, policies: planned_policies.Policies) -> None:
        self.role, self.region, self.policies = role, region, policies
        self.account = role.split(":")[4]
        self.found: list[tuple[str, Request, dict]] = []
        self.properties: dict[str, str] = {}
        self.parameters: dict[str, object] = {}

    def add(self, step: str, action: str, arn: str, context: dict | None = None, **extra) -> None:
        context = {"aws:SecureTransport": True, **(context or {})}
        self.found.append((step, Request(action, arn, self.role, context), extra))

    def resolve(self, value):
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Get"}:
            kind, _, rest = value["Get"].partition(".")
            return {"Parameters": lambda: self.parameters[rest], "Execution": lambda: "execution-id"}.get(
                kind, lambda: self.properties.get(value["Get"], "s3://unresolved/x"))()
        if "Std:Join" in value:
            return value["Std:Join"]["On"].join(str(self.resolve(v)) for v in value["Std:Join"]["Values"])
        if "Std:JsonGet" in value:
            return 0.9
        return {k: self.resolve(v) for k, v in value.items()}

    def key(self, key_id: str) -> tuple[str, dict, dict]:
        """A KMS key named by ARN or alias ARN: its planned key's resource ARN, context and policy."""
        account, name = key_id.split(":")[4], key_id.split(":", 5)[5]
        [key] = [k for k in self.policies.keys.values() if k["account"] == account and
                 (name.startswith("key/") or name in k["aliases"])]
        context = {"kms:ViaService": f"s3.{self.region}.amazonaws.com", "kms:CallerAccount": self.account,
                   "kms:ResourceAliases": tuple(key["aliases"])}
        extra = {"resource": key["policy"], "resource_account": account, "resource_required": True}
        return f"arn:aws:kms:{self.region}:{account}:key/{KEY_ID}", context, extra

    def bucket_key(self, bucket: str) -> str | None:
        found = [(k["account"], k["aliases"]) for k in self.policies.keys.values() if bucket in k["buckets"]]
        return f"arn:aws:kms:{self.region}:{found[0][0]}:{found[0][1][0]}" if found else None

    def s3(self, step: str, uri: str, write: bool, kms_key: str | None = None) -> None:
        bucket, key = _object(uri)
        assert bucket in self.policies.bucket_accounts, f"{step}: bucket {bucket} is not planned in any environment"
        extra = {"resource": self.policies.buckets[bucket], "resource_account": self.policies.bucket_accounts[bucket]}
        if write:
            self.add(step, "s3:PutObject", f"arn:aws:s3:::{bucket}/{key}", **extra)
        else:
            self.add(step, "s3:ListBucket", f"arn:aws:s3:::{bucket}", **extra)
            self.add(step, "s3:GetObject", f"arn:aws:s3:::{bucket}/{key}", **extra)
        kms_key = kms_key or self.bucket_key(bucket)
        if kms_key:
            resource, context, key_extra = self.key(kms_key)
            self.add(step, "kms:GenerateDataKey" if write else "kms:Decrypt", resource, context, **key_extra)

    def job(self, step: str, kind: str, name: str, role: str, image: str) -> None:
        resource_type, logs, create = JOB_KINDS[kind]
        job = f"arn:aws:sagemaker:{self.region}:{self.account}:{resource_type}/{name}"
        self.add(step, f"sagemaker:{create}", job)
        self.add(step, "sagemaker:AddTags", job)  # SageMaker tags each job with its pipeline execution
        self.add(step, "iam:PassRole", role, {"iam:PassedToService": "sagemaker.amazonaws.com"})
        registry, repository = image.split(".", 1)[0], image.split("/", 1)[1].split(":")[0]
        self.add(step, "ecr:GetAuthorizationToken", "*")
        # The AWS-owned image repository lets every account pull: only the identity side is ours to check.
        for action in ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"):
            self.add(step, action, f"arn:aws:ecr:{self.region}:{registry}:repository/{repository}",
                     resource_account=self.account)
        group = f"arn:aws:logs:{self.region}:{self.account}:log-group:/aws/sagemaker/{logs}"
        self.add(step, "logs:CreateLogStream", f"{group}:log-stream:{name}/algo-1")
        self.add(step, "logs:PutLogEvents", f"{group}:log-stream:{name}/algo-1")

    def step(self, step: dict) -> None:
        name, kind = step["Name"], step["Type"]
        job = f"pipelines-execution-id-{name}".lower()[:63]
        args = self.resolve(step.get("Arguments", {}))
        if kind == "Processing":
            self.job(name, kind, job, args["RoleArn"], args["AppSpecification"]["ImageUri"])
            for given in args.get("ProcessingInputs", []):
                self.s3(name, given["S3Input"]["S3Uri"], write=False)
            outputs = args.get("ProcessingOutputConfig", {})
            for out in outputs.get("Outputs", []):
                uri = out["S3Output"]["S3Uri"]
                path = f"Steps.{name}.ProcessingOutputConfig.Outputs['{out['OutputName']}'].S3Output.S3Uri"
                self.properties[path] = uri
                self.s3(name, uri, write=True, kms_key=outputs.get("KmsKeyId"))
        elif kind == "Training":
            self.job(name, kind, job, args["RoleArn"], args["AlgorithmSpecification"]["TrainingImage"])
            for channel in args.get("InputDataConfig", []):
                self.s3(name, channel["DataSource"]["S3DataSource"]["S3Uri"], write=False)
            output = args["OutputDataConfig"]
            artefact = f"{output['S3OutputPath'].rstrip('/')}/{job}/output/model.tar.gz"
            self.properties[f"Steps.{name}.ModelArtifacts.S3ModelArtifacts"] = artefact
            self.s3(name, artefact, write=True, kms_key=output.get("KmsKeyId"))
        elif kind == "RegisterModel":
            group = args["ModelPackageGroupName"]
            package = f"arn:aws:sagemaker:{self.region}:{self.account}:model-package/{group.lower()}/1"
            self.add(name, "sagemaker:CreateModelPackage", package)
            self.add(name, "sagemaker:AddTags", package)
        elif kind == "Condition":
            for inner in step["Arguments"].get("IfSteps", []):
                self.step(inner)
        elif kind != "Fail":
            raise AssertionError(f"step type {kind} of step {name}: add the requests its job makes")

    def pipeline(self, definition: dict, **given: str) -> dict[str, str]:
        """Its steps' requests, with the parameters `given` (the others at their defaults); the
        properties the steps produced."""
        self.properties = {}
        self.parameters = {p["Name"]: given.get(p["Name"], p.get("DefaultValue"))
                           for p in definition.get("Parameters", [])}
        unset = [name for name, value in self.parameters.items() if value is None]
        assert not unset, f"parameters with no default are given at run time: {unset}"
        for step in definition["Steps"]:
            self.step(step)
        return self.properties


def test_the_execution_role_may_do_what_its_pipelines_jobs_do(system, evaluated_definitions):
    """The SageMaker execution role's policy is planned in roles-ENV (ml-baseline), apart from the
    pipelines that name it (envs/ml): each request their steps make as it — start the job, pass
    the role to SageMaker, pull the image, log, read the code and the data, write features,
    model artefacts and predictions with the data key, register the model — is allowed by that
    policy and, where the resource has one, by the bucket's or the key's policy."""
    _, config, policies = system
    role = f"arn:aws:iam::{config.accounts['staging']}:role/{config.project}-staging-sagemaker"
    assert role in policies.identity and policies.identity[role], "the execution role's policy is not planned"
    definitions = sagemaker_side.definitions_for(evaluated_definitions, _inputs(), config.project, "staging",
                                                 config.region, dict(config.accounts))
    found = ExecutionRequests(role, config.region, policies)
    trained = found.pipeline(definitions["training"])["Steps.Train.ModelArtifacts.S3ModelArtifacts"]
    found.pipeline(definitions["inference"], ModelDataUri=trained)  # as run-pipeline passes the registered model
    actions = {request.action for _, request, _ in found.found}
    assert {"sagemaker:CreateTrainingJob", "sagemaker:CreateModelPackage", "iam:PassRole", "kms:Decrypt",
            "kms:GenerateDataKey", "s3:PutObject"} <= actions
    judged = [(step, request, decide(request, policies.identity[role], **extra))
              for step, request, extra in found.found]
    refused = [f"{step:16} {r.action:32} {r.resource}  {v.decision}  <- {'; '.join(v.reasons)}"
               for step, r, v in judged if not v.allowed]
    assert not refused, "requests the planned policies do not allow:\n" + "\n".join(refused)
