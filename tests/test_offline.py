"""Offline preview: the bundled Terraform validates and plans a root module that uses real
aws_* resources, modules and data sources, against mlcicd's stand-in for hashicorp/aws.

No AWS credentials, no network (a dead proxy would catch any attempt), no state backend: the
fixture's `backend "s3" {}` is never reached and the project directory is left untouched.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlcicd import awsschema
from mlcicd.cli import main
from mlcicd.offline import provider
from tests.conftest import ACCOUNT, FIXTURES, write_config

OFFLINE_FIXTURE = FIXTURES / "offline"


@pytest.fixture(scope="session")
def schema_cache():
    """The schema index and serialised schema, built once per machine (about 15 s the first time)."""
    cache = awsschema.default_cache_dir()
    provider.schema_path(cache)
    return cache


@pytest.fixture
def offline_env(monkeypatch, schema_cache):
    """No credentials and no way out: any network attempt would fail at a dead proxy."""
    import os

    for name in list(os.environ):
        if name.startswith(("AWS_", "TF_")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(schema_cache.parent))
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "")


@pytest.fixture
def offline_project(tmp_path, offline_env):
    root = tmp_path / "proj"
    shutil.copytree(OFFLINE_FIXTURE, root / "terraform")
    write_config(root, extra=textwrap.dedent("""\
        environments:
          app:
            account: staging
            dir: terraform/envs/app
        """))
    return root


def snapshot(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def run(project: Path, *args: str):
    return CliRunner().invoke(main, ["--config", str(project / "mlcicd.yaml"), *args])


def flat(output: str, env: str = "app") -> str:
    """The output as one line of text: each line of Terraform's output carries the env's name."""
    return " ".join(" ".join(line.removeprefix(f"{env}: ").split()) for line in output.splitlines())


def line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_validate_offline_passes_and_touches_nothing(offline_project):
    before = snapshot(offline_project / "terraform")
    result = run(offline_project, "validate", "app", "--offline")
    assert result.exit_code == 0, result.output
    assert "app: valid: offline preview" in result.output
    assert "offline stand-in" in result.output
    assert snapshot(offline_project / "terraform") == before


BUCKET_TF = "modules/bucket/main.tf"
APP_TF = "envs/app/main.tf"
ARTIFACTS_BLOCK = '  artifacts {\n    type = "NO_ARTIFACTS"\n  }\n'

MISTAKES = {
    "misspelt argument": (
        BUCKET_TF, "force_destroy = false", "force_destroi = false",
        'An argument named "force_destroi" is not expected here. Did you mean "force_destroy"?'),
    "attribute that does not exist": (
        BUCKET_TF, "value       = aws_s3_bucket.this.arn", "value       = aws_s3_bucket.this.arnn",
        'named "arnn"'),
    "wrong type": (
        BUCKET_TF, "force_destroy = false", 'force_destroy = "sometimes"',
        'Inappropriate value for attribute "force_destroy": a bool is required.'),
    "missing required block": (
        APP_TF, ARTIFACTS_BLOCK, "", 'Insufficient artifacts blocks'),
}


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_validate_offline_reports_terraforms_own_message(offline_project, mistake):
    relative, old, new, message = MISTAKES[mistake]
    path = offline_project / "terraform" / relative
    anchor = old.splitlines()[0].strip() if new else 'resource "aws_codebuild_project" "build"'
    line = line_of(path, anchor)
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))

    result = run(offline_project, "validate", "app", "--offline")

    assert result.exit_code == 1, result.output
    output = flat(result.output)
    assert message in output
    assert re.search(rf"{re.escape(path.name)} line {line}\b", output), result.output
    assert "failed validation (offline preview): app" in output


def test_plan_offline_writes_a_real_plan(offline_project, tmp_path):
    before = snapshot(offline_project / "terraform")
    out = tmp_path / "plan"
    result = run(offline_project, "plan", "app", "--offline", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "offline preview" in result.output
    assert (out / "tfplan").is_file() and (out / "OFFLINE-PREVIEW.txt").is_file()

    plan = json.loads((out / "plan.json").read_text())
    assert plan["format_version"] and plan["terraform_version"]
    changes = {rc["address"]: rc["change"] for rc in plan["resource_changes"]}
    bucket = changes["module.bucket.aws_s3_bucket.this"]
    assert bucket["actions"] == ["create"]
    assert bucket["after"]["bucket"] == f"demo-app-{ACCOUNT}"  # from aws_caller_identity
    assert bucket["after_unknown"]["arn"] is True  # computed: known after apply
    assert "force_destroy" not in bucket["after_unknown"]
    assert changes["aws_codebuild_project.build"]["after"]["source"][0]["buildspec"].startswith("version: 0.2")

    # aws_iam_policy_document renders the real policy once its inputs are known ...
    trust = json.loads(changes["aws_iam_role.builder"]["after"]["assume_role_policy"])
    assert trust == {"Version": "2012-10-17", "Statement": [{
        "Sid": "CodeBuildAssumes", "Effect": "Allow", "Action": "sts:AssumeRole",
        "Principal": {"Service": "codebuild.amazonaws.com"},
        "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}}}]}
    # ... and is read at apply time when they are not (the bucket ARN).
    assert changes["module.bucket.data.aws_iam_policy_document.tls"]["actions"] == ["read"]
    assert plan["output_changes"]["region"]["after"] == "aws:us-east-1"

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["offline"] is True and "OFFLINE-PREVIEW.txt" in manifest["files"]
    assert snapshot(offline_project / "terraform") == before
    assert not list(offline_project.rglob("*.tfstate"))


def test_offline_plan_is_not_applied(offline_project, tmp_path):
    out = tmp_path / "plan"
    assert run(offline_project, "plan", "app", "--offline", "--out", str(out)).exit_code == 0
    data_dir = offline_project / ".mlcicd" / "app" / "tfdata"
    # Refused before init: no backend is configured and none is reachable here.
    result = run(offline_project, "apply", "app", "--plan", str(out))
    assert result.exit_code == 1, result.output
    assert "is an offline preview" in result.output and "can never be applied" in result.output
    assert "Traceback" not in result.output
    assert not data_dir.exists()


def test_offline_needs_a_known_environment(offline_project):
    result = run(offline_project, "validate", "nope", "--offline")
    assert result.exit_code == 2
    assert "nope" in result.output


def test_validate_without_offline_uses_the_real_backend(project, state_bucket):
    """Without --offline, validate inits the environment as plan does (here against the
    emulator's state bucket) and runs Terraform's validate."""
    result = run(project, "validate", "app")
    assert result.exit_code == 0, result.output
    assert "app: valid" in result.output and "offline" not in result.output
    (project / "terraform" / "app" / "main.tf").write_text(
        (project / "terraform" / "app" / "main.tf").read_text() + '\noutput "broken" { value = var.nope }\n')
    result = run(project, "validate", "app")
    assert result.exit_code == 1
    assert 'An input variable with the name "nope" has not been declared' in flat(result.output)


def test_without_the_offline_extra_it_says_what_to_install(offline_project, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tf" else real(name, *a))
    result = run(offline_project, "validate", "app", "--offline")
    assert result.exit_code == 1
    assert "needs packages that are not installed: tf" in result.output and "mlcicd[offline]" in result.output


COLOR_WARNING = [
    "\x1b[33m╷\x1b[0m\x1b[0m",
    "\x1b[33m│\x1b[0m \x1b[0m\x1b[1m\x1b[33mWarning: \x1b[0m\x1b[0m\x1b[1m"
    "Provider development overrides are in effect\x1b[0m",
    "\x1b[33m│\x1b[0m \x1b[0m",
    "\x1b[33m│\x1b[0m \x1b[0m - hashicorp/aws in /tmp/x/provider",
    "\x1b[33m│\x1b[0m \x1b[0mand applying changes may cause the state to become incompatible with",
    "\x1b[33m│\x1b[0m \x1b[0mpublished releases.",
    "\x1b[33m╵\x1b[0m\x1b[0m",
    "\x1b[32m\x1b[1mSuccess!\x1b[0m The configuration is valid, but there were some",
    "validation warnings as shown above.",
]
PLAIN_WARNING = [
    "", "Warning: Provider development overrides are in effect", "", " - hashicorp/aws in /tmp/x/provider",
    "applying changes may cause the state to become incompatible with published", "releases.",
    "Success! The configuration is valid, but there were some validation warnings", "as shown above.",
]


@pytest.mark.parametrize("lines", [COLOR_WARNING, PLAIN_WARNING], ids=["color", "plain"])
def test_the_dev_override_warning_is_dropped(lines):
    from mlcicd.offline.preview import DropDevOverrideWarning

    shown: list[str] = []
    sink = DropDevOverrideWarning(lambda line, is_err: shown.append(line))
    for line in [*lines, "", "Warning: Deprecated attribute", "keep me"]:
        sink(line, False)
    assert shown == ["Success! The configuration is valid.", "", "Warning: Deprecated attribute", "keep me"]


def test_mirror_copies_the_root_and_links_its_surroundings(tmp_path):
    from mlcicd.fsutil import mirror
    from mlcicd.offline.preview import used_types

    top = tmp_path / "proj"
    (top / "terraform" / "envs" / "app").mkdir(parents=True)
    (top / "terraform" / "modules" / "m").mkdir(parents=True)
    (top / ".git").mkdir()
    (top / "terraform" / "envs" / "app" / "main.tf").write_text('module "m" { source = "../../modules/m" }\n')
    (top / "terraform" / "envs" / "app" / ".terraform").mkdir()
    (top / "terraform" / "modules" / "m" / "main.tf").write_text('resource "aws_sqs_queue" "q" {}\n')

    root = mirror(top / "terraform" / "envs" / "app", top, tmp_path / "scratch")

    assert root == tmp_path / "scratch" / "terraform" / "envs" / "app"
    assert (root / "main.tf").is_file() and not (root / "main.tf").is_symlink()
    assert (root / "../../modules").resolve() == (top / "terraform" / "modules").resolve()
    assert not (root / ".terraform").exists() and not (tmp_path / "scratch" / ".git").exists()
    (root / "main.tf").write_text("changed")  # Terraform writing beside the root reaches no user file
    assert "module" in (top / "terraform" / "envs" / "app" / "main.tf").read_text()
    data = tmp_path / "tfdata" / "modules"
    data.mkdir(parents=True)
    (data / "modules.json").write_text(json.dumps({"Modules": [{"Key": "m", "Dir": "../../modules/m"}]}))
    assert used_types(root, tmp_path / "tfdata") == ["aws_sqs_queue"]
