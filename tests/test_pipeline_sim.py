"""The whole pipeline, simulated: the six stages in order, the way CodePipeline and CodeBuild run them.

What the pipeline is comes from the devops environment's offline plan (`mlcicd plan devops
--offline`): the planned aws_codepipeline's stages, actions, namespaces, artifacts and the
environment variables each action sets, and the planned CodeBuild projects' own variables and
buildspec. What each CodeBuild action runs comes from buildspec.yml: its phases run in one bash,
in a fresh copy of the action's primary input artifact, with the spec's variables, the project's,
the action's (after CodePipeline's `#{NAMESPACE.VARIABLE}` substitution — a reference that does
not resolve fails the action, as it does in CodePipeline), and CodeBuild's own
(CODEBUILD_SRC_DIR, CODEBUILD_SRC_DIR_<artifact>, CODEBUILD_BUILD_ARN ...). Its exported
variables are read when the build ends and published under the action's namespace; its output
artifact is the spec's base-directory, copied; the approval is decided by `mlcicd approve`.

The only liberty: the install phase's `pip install` is replaced by `mlcicd` on PATH — the real CLI
(tests/sim_mlcicd.py) with every AWS call recorded and moto's gaps answered through Stubber:
SageMaker's step listing (tests/sagemaker_side.py) and CodePipeline's state and approval
(tests/stubbed_ops.py). Staging and prod point at the built-in-resources root module, so the
bundled Terraform really plans and applies them against the moto server.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
import yaml

from tests import aws_calls, sagemaker_side, stubbed_ops
from tests.conftest import ACCOUNT, REGION, builtin_staging_and_prod

REPO = Path(__file__).resolve().parent.parent
COMMIT = "3f2c1e0d9b8a7f6e5d4c3b2a1f0e9d8c7b6a5f4e"
TOKEN = "0a1b2c3d-approval-token"
EXECUTION_ID = "5e4d3c2b-1a09-4f8e-9d7c-6b5a4f3e2d1c"
REFERENCE = re.compile(r"#\{([A-Za-z0-9@_-]+)\.([A-Za-z0-9@_-]+)\}")
PHASES = ("install", "pre_build", "build", "post_build")

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Action:
    stage: str
    name: str
    category: str
    provider: str
    namespace: str | None
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    configuration: dict


def pipeline_of(plan: dict, name: str) -> tuple[dict, list[Action], dict[str, dict]]:
    """The planned pipeline `name`, its actions in execution order, and the planned CodeBuild projects."""
    [pipeline] = [rc["change"]["after"] for rc in plan["resource_changes"]
                  if rc["type"] == "aws_codepipeline" and rc["change"]["after"]["name"] == name]
    actions = [Action(stage["name"], a["name"], a["category"], a["provider"], a.get("namespace"),
                      tuple(a.get("input_artifacts") or ()), tuple(a.get("output_artifacts") or ()),
                      a.get("configuration") or {})
               for stage in pipeline["stage"]
               for a in sorted(stage["action"], key=lambda a: a.get("run_order") or 1)]
    projects = {}
    for rc in plan["resource_changes"]:
        if rc["type"] == "aws_codebuild_project":
            after, unknown = rc["change"]["after"], rc["change"]["after_unknown"]
            variables = after["environment"][0]["environment_variable"]
            flags = (unknown.get("environment") or [{}])[0].get("environment_variable") or [{}] * len(variables)
            projects[after["name"]] = {
                "buildspec": after["source"][0]["buildspec"],
                "env": {v["name"]: v["value"] or "" for v, f in zip(variables, flags, strict=True)
                        if f.get("value") is not True},
                "after_apply": {v["name"]: (rc["address"], i) for i, (v, f) in
                                enumerate(zip(variables, flags, strict=True)) if f.get("value") is True},
            }
    return pipeline, actions, projects


def planned_bucket(plan: dict, project: str, index: int) -> str:
    """A project variable the plan knows only after apply: the name of the one bucket of the
    module it refers to (the artifact bucket), which the plan does know. Variables made by a
    dynamic block have no expression in the plan's configuration: then the one bucket of the
    project's own module answers."""
    from tests.planned_policies import Plan

    planned = Plan(plan)
    prefix = project[: project.rindex(planned._local(project))]
    written = planned.config(project)["expressions"]["environment"][0].get("environment_variable") or []
    references = written[index]["value"].get("references", []) if index < len(written) else ["module."]
    for ref in references:
        if ref.startswith("module."):
            module = prefix + ".".join(ref.split(".")[:2]) + "." if ref != "module." else prefix
            buckets = [planned.value(a, "bucket") for a in planned.of_type("aws_s3_bucket") if a.startswith(module)]
            if len(buckets) == 1:
                return buckets[0]
    raise AssertionError(f"{project}: environment variable {index} is known only after apply")


class Simulation:
    def __init__(self, checkout: Path, work: Path, plan: dict, name: str, codebuild_role: str) -> None:
        self.checkout, self.work, self.plan = checkout, work, plan
        self.pipeline, self.actions, self.projects = pipeline_of(plan, name)
        self.codebuild_role = codebuild_role
        self.artifacts: dict[str, Path] = {}
        self.namespaces: dict[str, dict[str, str]] = {
            "variables": {v["name"]: v.get("default_value") or "" for v in self.pipeline.get("variable") or []},
            "codepipeline": {"PipelineExecutionId": EXECUTION_ID, "PipelineName": self.pipeline["name"]}}
        self.calls: dict[str, list[aws_calls.Call]] = {}
        self.seconds: dict[str, float] = {}
        self.bindir = work / "bin"
        self.bindir.mkdir(parents=True)
        shim = self.bindir / "mlcicd"
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -c "from tests.sim_mlcicd import run; run()" "$@"\n')
        shim.chmod(0o755)

    def resolve(self, action: Action, text: str) -> str:
        def one(match: re.Match) -> str:
            namespace, name = match.groups()
            value = self.namespaces.get(namespace, {}).get(name)
            assert value is not None, (f"{action.stage}/{action.name}: #{{{namespace}.{name}}} does not resolve: "
                                       f"namespace {namespace} has {sorted(self.namespaces.get(namespace, {}))}")
            return value

        return REFERENCE.sub(one, text)

    def run(self) -> None:
        for action in self.actions:
            started = time.monotonic()
            {"Source": self.source, "Build": self.codebuild, "Approval": self.approval}[action.category](action)
            self.seconds[f"{action.stage}/{action.name}"] = time.monotonic() - started

    def environ(self, action: Action, log: Path) -> dict[str, str]:
        env = dict(os.environ)
        site = Path(__file__).parent / "sim_site"
        env.update({"PATH": f"{self.bindir}{os.pathsep}{env['PATH']}", "AWS_REGION": REGION,
                    "PYTHONPATH": os.pathsep.join([str(site), str(REPO), *filter(None, [env.get("PYTHONPATH")])]),
                    aws_calls.LOG_VARIABLE: str(log), aws_calls.PRINCIPAL_VARIABLE: self.codebuild_role})
        return env

    def source(self, action: Action) -> None:
        [name] = action.outputs
        self.artifacts[name] = self.work / "artifacts" / name
        shutil.copytree(self.checkout, self.artifacts[name], ignore=shutil.ignore_patterns(".mlcicd"))
        self.namespaces[action.namespace or action.name] = {
            "CommitId": COMMIT, "BranchName": action.configuration["BranchName"],
            "FullRepositoryId": action.configuration["FullRepositoryId"], "AuthorDate": "2026-12-01T09:00:00Z",
            "CommitMessage": "Change the model", "ConnectionArn": action.configuration["ConnectionArn"]}

    def codebuild(self, action: Action) -> None:
        project = self.projects[action.configuration["ProjectName"]]
        primary = action.configuration.get("PrimarySource") or action.inputs[0]
        src = self.work / f"{action.stage}-{action.name}"
        shutil.copytree(self.artifacts[primary], src)
        spec = yaml.safe_load((src / project["buildspec"]).read_text())
        assert not {"parameter-store", "secrets-manager"} & set(spec.get("env", {})), "not simulated"
        log = self.work / f"calls-{action.name}.jsonl"
        env = self.environ(action, log)
        env.update({k: str(v) for k, v in (spec.get("env", {}).get("variables") or {}).items()})
        env.update(project["env"])
        env.update({name: planned_bucket(self.plan, *where) for name, where in project["after_apply"].items()})
        given = json.loads(self.resolve(action, action.configuration.get("EnvironmentVariables", "[]")))
        for variable in given:
            assert variable.get("type", "PLAINTEXT") == "PLAINTEXT", variable
            env[variable["name"]] = variable["value"]
        build_id = f"{action.configuration['ProjectName']}:7e1d2c3b-0000-4000-8000-{len(self.seconds):012d}"
        env.update({"CODEBUILD_SRC_DIR": str(src), "CODEBUILD_BUILD_ID": build_id,
                    "CODEBUILD_BUILD_ARN": f"arn:aws:codebuild:{REGION}:{ACCOUNT}:build/{build_id}",
                    "CODEBUILD_RESOLVED_SOURCE_VERSION": COMMIT, "CODEBUILD_INITIATOR": "codepipeline/demo-pipeline"})
        for name in action.inputs:
            if name != primary:
                secondary = self.work / f"{action.name}-input-{name}"
                shutil.copytree(self.artifacts[name], secondary)
                env[f"CODEBUILD_SRC_DIR_{name}"] = str(secondary)
        script = self.script(spec, src)
        proc = subprocess.run(["bash", "-c", script], cwd=src, env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, (f"{action.stage}/{action.name} failed; the action set "
                                      f"{ {v['name']: v['value'] for v in given} }:\n"
                                      f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
        exported = json.loads((src / ".codebuild-exported.json").read_text())
        if action.namespace:
            self.namespaces[action.namespace] = exported
        for name in action.outputs:
            base = src / spec["artifacts"].get("base-directory", ".")
            assert base.is_dir() and any(base.rglob("*")), f"{action.name}: no files for output artifact {name}"
            self.artifacts[name] = self.work / "artifacts" / name
            shutil.copytree(base, self.artifacts[name])
        self.calls[action.name] = aws_calls.read(log)

    def script(self, spec: dict, src: Path) -> str:
        """The phases in one bash, each command failing the build; then the exported variables."""
        lines = []
        for phase in PHASES:
            for i, command in enumerate((spec.get("phases", {}).get(phase) or {}).get("commands") or []):
                if re.search(r"^\s*(python3? -m )?pip3? install\b", command, re.M):
                    continue  # mlcicd is on PATH already (tests/sim_mlcicd.py)
                path = src.parent / f".{src.name}-{phase}-{i}.sh"
                path.write_text(command + "\n")
                # Not `. file || exit`: on the left of || bash ignores the command's own `set -e`.
                lines.append(f'. "{path}"\nstatus=$?; if [ "$status" -ne 0 ]; then exit "$status"; fi')
        names = spec.get("env", {}).get("exported-variables") or []
        lines.append(f'"{sys.executable}" -c \'import json,os,sys; json.dump({{n: os.environ.get(n, "") '
                     f'for n in sys.argv[1:]}}, open(".codebuild-exported.json", "w"))\' ' + " ".join(names))
        return "\n".join(lines) + "\n"

    def approval(self, action: Action) -> None:
        details = {k: self.resolve(action, v) for k, v in action.configuration.items() if isinstance(v, str)}
        self.namespaces.setdefault("approval", {}).update(details)
        name = self.pipeline["name"]
        stages, seen = [], True
        for stage in self.pipeline["stage"]:
            states = []
            for a in stage["action"]:
                if a["name"] == action.name:
                    states.append({"actionName": a["name"], "latestExecution": {"status": "InProgress",
                                                                                "token": TOKEN}})
                    seen = False
                elif seen:
                    states.append({"actionName": a["name"], "latestExecution": {"status": "Succeeded"}})
                else:
                    states.append({"actionName": a["name"]})
            stages.append({"stageName": stage["name"], "actionStates": states})
        queue = self.work / "codepipeline-stubs.json"
        queue.write_text(json.dumps([
            {"service": "codepipeline", "operation": "get_pipeline_state", "expected_params": {"name": name},
             "response": {"pipelineName": name, "stageStates": stages}},
            {"service": "codepipeline", "operation": "put_approval_result", "response": {},
             "expected_params": {"pipelineName": name, "stageName": action.stage, "actionName": action.name,
                                 "result": {"summary": stubbed_ops.ANY_VALUE, "status": "Approved"},
                                 "token": TOKEN}},
        ]))
        log = self.work / "calls-approve.jsonl"
        env = {**self.environ(action, log), stubbed_ops.VARIABLE: str(queue)}
        proc = subprocess.run(["mlcicd", "approve", "--comment", "reviewed"], cwd=self.checkout, env=env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert json.loads(queue.read_text()) == [], "mlcicd approve did not record the decision"
        self.calls["approve"] = aws_calls.read(log)


@pytest.fixture
def checkout(tmp_path, state_bucket):
    """The repository as the Source action hands it over, with staging and prod on the
    built-in-resources root module."""
    root = tmp_path / "src"
    for name in ("terraform", "ml", "buildspec.yml"):
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns(".terraform", "__pycache__"))
        else:
            shutil.copy(source, root / name)
    builtin_staging_and_prod(root)
    return root


def offline_plan(checkout: Path, env: str, out: Path) -> dict:
    """`mlcicd plan ENV --offline`, with no credentials and no network."""
    from mlcicd import awsschema

    environ = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TF_"))}
    environ.update({"XDG_CACHE_HOME": str(awsschema.default_cache_dir().parent), "MLCICD_TERRAFORM": "bundled",
                    "PYTHONPATH": str(REPO), "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"})
    proc = subprocess.run([sys.executable, "-m", "mlcicd", "plan", env, "--offline", "--out", str(out)],
                          cwd=checkout, env=environ, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads((out / "plan.json").read_text())


def test_the_six_stages_run_in_order_and_deploy_the_approved_plan(checkout, aws_env, tmp_path):
    from tests.planned_policies import Plan
    from tests.test_pipeline_definitions import INPUTS, evaluate_module

    started = time.monotonic()
    plan = offline_plan(checkout, "devops", tmp_path / "devops-plan")
    planned = Plan(plan)
    [project] = planned.of_type("aws_codebuild_project")[:1]
    role = planned.value(planned.referenced(project, "service_role", "aws_iam_role"), "name")
    codebuild_role = f"arn:aws:iam::{ACCOUNT}:role/{role}"
    accounts = {k: ACCOUNT for k in ("devops", "dev", "staging", "prod", "data")}
    definitions = sagemaker_side.definitions_for(evaluate_module(tmp_path / "definitions"), INPUTS, "demo",
                                                 "staging", REGION, accounts)
    sagemaker_side.prepare("demo", "staging", REGION, accounts, aws_env.url, definitions)

    sim = Simulation(checkout, tmp_path / "pipeline", plan, "demo-pipeline", codebuild_role)
    s3 = boto3.client("s3", region_name=REGION)
    for project in {a.configuration.get("ProjectName") for a in sim.actions} - {None}:
        for where in sim.projects[project]["after_apply"].values():  # the devops environment's buckets
            if planned_bucket(plan, *where) not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
                s3.create_bucket(Bucket=planned_bucket(plan, *where))
    assert [s["name"] for s in sim.pipeline["stage"]] == ["Source", "Build", "Train", "Test", "Approval", "Deploy"]
    sim.run()

    train = next(a.namespace for a in sim.actions if a.stage == "Train")
    assert sim.namespaces[train]["MODEL_PACKAGE_ARN"].startswith(f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/")
    plan_prod = next(a for a in sim.actions if a.outputs and a.category == "Build")
    reviewed = sim.namespaces[plan_prod.namespace]
    assert reviewed["PLAN_HEADLINE"].startswith("prod: ")
    assert COMMIT in sim.namespaces["approval"]["CustomData"]
    assert reviewed["PLAN_HEADLINE"] in sim.namespaces["approval"]["CustomData"]
    deploy = sim.actions[-1]
    applied = json.loads((tmp_path / "pipeline" / f"{deploy.stage}-{deploy.name}" / ".mlcicd" / "artifact" /
                          "applied-manifest.json").read_text())
    assert applied["plan_sha256"] == reviewed["PLAN_SHA256"]
    for env in ("staging", "prod"):
        assert s3.head_object(Bucket="tfstate-test", Key=f"{env}/terraform.tfstate")
    predictions = s3.list_objects_v2(Bucket=f"demo-predictions-{ACCOUNT}", Prefix="staging/")["KeyCount"]
    assert predictions == 1
    print(f"\npipeline simulated in {time.monotonic() - started:.1f} s")
    for name, seconds in sim.seconds.items():
        print(f"  {name}: {seconds:.1f} s")
    for name, calls in sim.calls.items():
        print(f"  {name}: " + (", ".join(f"{c.signing_name}:{c.operation}" for c in calls) or "no AWS calls"))
