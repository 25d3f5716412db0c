"""buildspec.yml: every action it names runs commands the CLI has, and each action's script runs
as CodeBuild would run it (bash, one shell, spec variables set) — against the emulator and the
bundled Terraform where it can, with a stubbed SageMaker client where moto falls short."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import boto3
import click
import pytest
import yaml
from click.testing import CliRunner

from mlcicd.cli import main
from tests.conftest import ACCOUNT, REGION, builtin_staging_and_prod
from tests.test_sagemaker import (
    ARN,
    MODEL,
    MODEL_DATA,
    inference_success,
    model_package,
    stubbed_sagemaker,
    training_success,
)

BUILDSPEC = Path(__file__).resolve().parents[1] / "buildspec.yml"
ACTIONS = {"build", "train", "test", "plan-prod", "deploy", "pr", "drift"}
BUILD_ARN = f"arn:aws:codebuild:{REGION}:{ACCOUNT}:build/demo-plan-prod:0a1b2c3d-4e5f"
SHA = "5" * 64
EXECUTION = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:demo-pipeline-notifications"
# What the pipeline module and the webhook give each action besides MLCICD_ACTION
# (tests/test_pipeline_plan.py checks the module gives them).
PIPELINE_ENV = {
    "plan-prod": {"PIPELINE_EXECUTION_ID": EXECUTION, "MLCICD_ARTIFACT_BUCKET": "demo-artifacts", "AWS_REGION": REGION},
    "deploy": {"PLAN_SHA256": SHA, "CODEBUILD_SRC_DIR_prodplan": "/src/plan-art"},
    "test": {"MODEL_PACKAGE_ARN": MODEL},
    "pr": {"CODEBUILD_WEBHOOK_TRIGGER": "pr/17", "CODEBUILD_WEBHOOK_BASE_REF": "refs/heads/main"},
    "drift": {"TOPIC_ARN": TOPIC},
}


def spec() -> dict:
    return yaml.safe_load(BUILDSPEC.read_text())


def build_script() -> str:
    return "\n".join(spec()["phases"]["build"]["commands"])


def script_actions(script: str) -> set[str]:
    return set(re.findall(r"^\s+([a-z][a-z-]*)\)\s*$", script, re.M))


def test_spec_shape_and_contract():
    s = spec()
    assert s["version"] == 0.2
    assert s["env"]["shell"] == "bash"
    exported = set(s["env"]["exported-variables"])
    assert {"PLAN_HEADLINE", "PLAN_SHA256", "PLAN_DESTROY", "PLAN_REPLACE", "REVIEW_URL",
            "MODEL_PACKAGE_ARN"} <= exported
    install = " ".join(s["phases"]["install"]["commands"])
    assert "pip install" in install and install.rstrip().endswith(' ".$extras"')
    assert "terraform" not in install.lower().replace("# terraform", "")  # the bundled core, no download
    assert s["artifacts"]["base-directory"] == s["env"]["variables"]["ARTIFACT_DIR"]
    assert script_actions(build_script()) == ACTIONS


@pytest.mark.parametrize("action,extras", [
    ("build", "[policy]"), ("plan-prod", "[policy]"), ("pr", "[policy]"),
    ("train", ""), ("test", ""), ("deploy", ""), ("drift", ""),
])
def test_the_reviewing_actions_install_the_policy_checks(tmp_path, action, extras):
    """The install phase run by bash, pip replaced by a function that records its arguments: the
    actions that review a plan install checkov (the `policy` extra pyproject declares), the others not."""
    install = "\n".join(spec()["phases"]["install"]["commands"])
    script = 'python() { printf "%s\\n" "$@" > "$RECORD"; }\n' + install
    subprocess.run(["bash", "-euo", "pipefail", "-c", script], check=True,
                   env={"PATH": os.environ["PATH"], "MLCICD_ACTION": action, "RECORD": str(tmp_path / "argv")})
    assert (tmp_path / "argv").read_text().split()[-1] == f".{extras}"
    optional = tomllib.loads((BUILDSPEC.parent / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(d.startswith("checkov") for d in optional["policy"])


def _codebuild_env(workdir: Path, action: str, **extra: str) -> dict[str, str]:
    """The environment CodeBuild gives the build phase: ours, the spec's variables, CodeBuild's own."""
    bindir = workdir / "bin"
    bindir.mkdir(exist_ok=True)
    wrapper = bindir / "mlcicd"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m mlcicd "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    env = dict(os.environ)
    env.update({str(k): str(v) for k, v in spec()["env"]["variables"].items()})
    env.update({"MLCICD_ACTION": action, "CODEBUILD_SRC_DIR": str(workdir), "CODEBUILD_BUILD_ARN": BUILD_ARN,
                "PATH": f"{bindir}{os.pathsep}{env['PATH']}", **extra})
    return env


def run_action(workdir: Path, action: str, **extra: str) -> tuple[subprocess.CompletedProcess, dict[str, str]]:
    """Run the build phase in one bash, then read back every exported variable."""
    names = spec()["env"]["exported-variables"]
    dump = workdir / f".exported-{action}.json"
    probe = ("\npython3 -c 'import json,os,sys; json.dump({n: os.environ.get(n) for n in sys.argv[2:]}, "
             "open(sys.argv[1], \"w\"))' " + f'"{dump}" ' + " ".join(names))
    env = _codebuild_env(workdir, action, **extra)
    proc = subprocess.run(["bash", "-c", build_script() + probe], cwd=workdir, env=env, capture_output=True,
                          text=True, timeout=300)
    exported = json.loads(dump.read_text()) if dump.exists() else {}
    return proc, exported


def record_invocations(workdir: Path, action: str, **extra: str) -> list[list[str]]:
    """Run the action's script with `mlcicd` replaced by a recorder (and `cp`, `cat`, `git`,
    `python3` by no-ops): the exact argv of every mlcicd command, with the variables the pipeline gives."""
    log = workdir / f".argv-{action}"
    fakes = textwrap.dedent(f"""\
        mlcicd() {{ for a in "$@"; do printf '%s\\037' "$a"; done; printf '\\036'; }} >> "{log}"
        cp() {{ :; }}
        cat() {{ :; }}
        git() {{ :; }}
        python3() {{ :; }}
        """)
    env = _codebuild_env(workdir, action, **PIPELINE_ENV.get(action, {}), **extra)
    proc = subprocess.run(["bash", "-c", fakes + build_script()], cwd=workdir, env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    raw = log.read_text() if log.exists() else ""
    return [call.split("\x1f")[:-1] for call in raw.split("\x1e") if call]


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_every_command_an_action_runs_exists_in_the_cli(tmp_path, action):
    calls = record_invocations(tmp_path, action)
    assert calls, f"action {action} runs no mlcicd command"
    for argv in calls:
        ctx = click.Context(main, info_name="mlcicd")
        command = main.get_command(ctx, argv[0])
        assert command is not None, f"{action}: `mlcicd {argv[0]}` is not a command"
        command.make_context(argv[0], argv[1:], parent=ctx)  # raises on an unknown option or bad value


def test_deploy_applies_the_named_input_artifact_only_with_the_approved_sha256(tmp_path):
    calls = record_invocations(tmp_path, "deploy")
    assert calls == [["apply", "prod", "--plan", "/src/plan-art/plan", "--expect-sha256", SHA]]
    proc = subprocess.run(["bash", "-c", build_script()], cwd=tmp_path, capture_output=True, text=True,
                          env=_codebuild_env(tmp_path, "deploy", CODEBUILD_SRC_DIR_prodplan="/src/plan-art"))
    assert proc.returncode != 0 and "the pipeline passes the approved plan sha256" in proc.stderr


def test_pr_plans_what_changed_and_posts_one_review_never_applies(tmp_path):
    root = ".mlcicd/pr-plans"
    assert record_invocations(tmp_path, "pr") == [["plan", "--changed", "--out", root],
                                                  ["review", root, "--github-pr", "17"]]
    # A failed plan is still posted, and fails the build.
    for plan_code, review_code, build_code in ((1, 0, 1), (0, 3, 3), (0, 0, 0)):
        fake = f'mlcicd() {{ if [ "$1" = plan ]; then return {plan_code}; fi; return {review_code}; }}\n'
        proc = subprocess.run(["bash", "-c", fake + build_script()], cwd=tmp_path, capture_output=True, text=True,
                              env=_codebuild_env(tmp_path, "pr", **PIPELINE_ENV["pr"]))
        assert proc.returncode == build_code, (plan_code, review_code, proc.stderr)


def test_pr_outside_a_pull_request_webhook_is_refused(tmp_path):
    proc = subprocess.run(["bash", "-c", build_script()], cwd=tmp_path, capture_output=True, text=True,
                          env=_codebuild_env(tmp_path, "pr", CODEBUILD_WEBHOOK_TRIGGER="branch/main"))
    assert proc.returncode == 2 and "pull-request webhooks" in proc.stderr


def test_drift_notifies_the_topic_and_treats_found_drift_as_done(tmp_path):
    assert record_invocations(tmp_path, "drift") == [["drift", "--all", "--notify-topic", TOPIC]]
    for code, ok in ((0, True), (2, True), (1, False)):
        fake = f"mlcicd() {{ return {code}; }}\n"
        proc = subprocess.run(["bash", "-c", fake + build_script()], cwd=tmp_path, capture_output=True, text=True,
                              env=_codebuild_env(tmp_path, "drift", TOPIC_ARN=TOPIC))
        assert (proc.returncode == 0) is ok, (code, proc.stderr)


def test_review_gate_none_is_no_gate(tmp_path, project):
    """REVIEW_FAIL_ON=none, which the pipeline variable offers, must not break Build and PlanProd."""
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"format_version": "1.2", "terraform_version": "1.15.0", "resource_changes": [
        {"address": "terraform_data.old", "mode": "managed", "type": "terraform_data", "name": "old",
         "change": {"actions": ["delete"], "before": {"input": "x"}, "after": None}}]}))
    cfg = ["--config", str(project / "mlcicd.yaml"), "review", str(plan), "--no-checkov", "--fail-on"]
    assert CliRunner().invoke(main, [*cfg, "destructive"]).exit_code == 3
    result = CliRunner().invoke(main, [*cfg, "none"])
    assert result.exit_code == 0, result.output


def test_review_gate_variable_reaches_the_review(tmp_path):
    gated = record_invocations(tmp_path, "plan-prod", MLCICD_REVIEW_FAIL_ON="destroy,replace")
    assert next(c for c in gated if c[0] == "review")[-2:] == ["--fail-on", "destroy,replace"]
    (tmp_path / "ungated").mkdir()
    plain = record_invocations(tmp_path / "ungated", "plan-prod")
    assert "--fail-on" not in next(c for c in plain if c[0] == "review")


def test_an_unknown_action_fails(tmp_path):
    proc, _ = run_action(tmp_path, "ship-it")
    assert proc.returncode == 2
    assert "unknown MLCICD_ACTION 'ship-it'" in proc.stderr


@pytest.fixture
def codebuild_project(tmp_path, state_bucket):
    """A checkout as CodeBuild sees it: config with staging and prod on the built-in-resources module."""
    root = tmp_path / "src"
    builtin_staging_and_prod(root)
    shutil.copy(BUILDSPEC, root / "buildspec.yml")
    return root


# Three CodeBuild actions end to end: Terraform init/plan/apply three times and checkov twice;
# ~15 s on an idle 2-core machine.
@pytest.mark.slow
def test_build_then_plan_prod_then_deploy_against_the_emulator(codebuild_project, tmp_path):
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="demo-artifacts")
    root = codebuild_project

    proc, _ = run_action(root, "build")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "staging: 3 to create" in proc.stdout
    assert s3.head_object(Bucket="tfstate-test", Key="staging/terraform.tfstate")

    proc, exported = run_action(root, "plan-prod", **PIPELINE_ENV["plan-prod"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    artifact = root / spec()["artifacts"]["base-directory"]
    manifest = json.loads((artifact / "plan" / "manifest.json").read_text())
    assert exported["PLAN_HEADLINE"] == "prod: 3 to create, 1 output change"
    assert exported["PLAN_SHA256"] == manifest["plan_sha256"]
    assert (exported["PLAN_CREATE"], exported["PLAN_DESTROY"], exported["PLAN_REPLACE"]) == ("3", "0", "0")
    # The approval links to the review page, stored under the execution id beside the artifacts.
    key = f"reviews/{EXECUTION}/review.html"
    assert exported["REVIEW_URL"] == (f"https://{REGION}.console.aws.amazon.com/s3/object/demo-artifacts"
                                      f"?region={REGION}&bucketType=general&prefix={key}")
    page = s3.get_object(Bucket="demo-artifacts", Key=key)
    assert page["ContentType"].startswith("text/html")
    assert page["Body"].read() == (artifact / "review.html").read_bytes()
    with pytest.raises(s3.exceptions.ClientError):
        s3.head_object(Bucket="tfstate-test", Key="prod/terraform.tfstate")  # planned, not applied

    # Deploy runs in a fresh checkout; the reviewed plan arrives as a secondary input artifact,
    # and only the sha256 the approver saw is applied.
    reviewed = tmp_path / "reviewed-plan-artifact"
    shutil.copytree(artifact, reviewed)
    fresh = tmp_path / "deploy-src"
    shutil.copytree(root, fresh, ignore=shutil.ignore_patterns(".mlcicd"))
    proc, _ = run_action(fresh, "deploy", CODEBUILD_SRC_DIR_prodplan=str(reviewed), PLAN_SHA256="0" * 64)
    assert proc.returncode != 0, proc.stdout + proc.stderr
    with pytest.raises(s3.exceptions.ClientError):
        s3.head_object(Bucket="tfstate-test", Key="prod/terraform.tfstate")
    proc, _ = run_action(fresh, "deploy", CODEBUILD_SRC_DIR_prodplan=str(reviewed),
                         PLAN_SHA256=exported["PLAN_SHA256"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"prod: applied plan {manifest['plan_sha256'][:12]}" in proc.stdout
    assert s3.head_object(Bucket="tfstate-test", Key="prod/terraform.tfstate")
    assert (fresh / ".mlcicd" / "artifact" / "applied-manifest.json").exists()


def test_train_then_test_actions_with_stubbed_sagemaker(project, aws_env, tmp_path, monkeypatch):
    """moto has no list_pipeline_execution_steps: the exact argv of each action runs in-process
    with a stubbed SageMaker client; the predictions are real objects in the emulator's S3."""
    from mlcicd import aws

    client, stub = stubbed_sagemaker()
    real = aws.client
    monkeypatch.setattr(aws, "client", lambda config, runtime, service, role_arn=None, **kw:
                        client if service == "sagemaker" else real(config, runtime, service, role_arn, **kw))
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="preds")
    s3.put_object(Bucket="preds", Key="run1/abc/predictions/predictions.csv",
                  Body=b"id,score,prediction\n1,0.9,1\n2,0.1,0\n")
    exports = tmp_path / "exports.sh"
    artifact = tmp_path / "artifact"
    cfg = ["--config", str(project / "mlcicd.yaml")]

    [train] = record_invocations(tmp_path, "train", MLCICD_EXPORTS=str(exports), ARTIFACT_DIR=str(artifact))
    train[1] = "app"  # the fixture project's environment stands in for staging
    with stub:
        stub.add_response("start_pipeline_execution", {"PipelineExecutionArn": ARN})
        training_success(stub)
        result = CliRunner().invoke(main, [*cfg, *train, "--poll-interval", "0"])
        assert result.exit_code == 0, result.output
        assert f"export MODEL_PACKAGE_ARN={MODEL}" in exports.read_text()

        [test] = record_invocations(tmp_path, "test", MLCICD_EXPORTS=str(exports), ARTIFACT_DIR=str(artifact))
        test[1] = "app"
        model_package(stub)
        stub.add_response("start_pipeline_execution", {"PipelineExecutionArn": ARN}, {
            "PipelineName": "demo-app-inference", "PipelineExecutionDisplayName": "mlcicd-inference",
            "PipelineParameters": [{"Name": "ModelDataUri", "Value": MODEL_DATA}]})
        inference_success(stub, "s3://preds/run1/abc/predictions")
        result = CliRunner().invoke(main, [*cfg, *test, "--poll-interval", "0"])
        assert result.exit_code == 0, result.output
        assert "predictions ok: 2 rows" in result.output
    assert json.loads((artifact / "run-inference.json").read_text())["predictions_uri"] == \
        "s3://preds/run1/abc/predictions"
