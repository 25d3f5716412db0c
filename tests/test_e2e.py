"""End to end with the real bundled Terraform against the emulator's S3 backend."""

from __future__ import annotations

import json

import boto3
import pytest
from click.testing import CliRunner

from mlcicd.cli import main

pytestmark = pytest.mark.usefixtures("state_bucket")


def cli(project, *args):
    return CliRunner().invoke(main, ["--config", str(project / "mlcicd.yaml"), *args])


def state_versions(key="app/terraform.tfstate"):
    s3 = boto3.client("s3")
    return [v for v in s3.list_object_versions(Bucket="tfstate-test").get("Versions", []) if v["Key"] == key]


def test_plan_apply_saved_plan_then_no_changes(project):
    result = cli(project, "plan", "app", "--out", str(project / "p1"))
    assert result.exit_code == 0, result.output
    assert "app: 3 to create" in result.output
    manifest = json.loads((project / "p1/manifest.json").read_text())
    assert manifest["env"] == "app" and manifest["has_changes"] is True
    assert len(manifest["plan_sha256"]) == 64 and manifest["terraform_version"].startswith("1.")
    assert oct((project / "p1/plan.json").stat().st_mode & 0o777) == "0o600"

    applied = cli(project, "apply", "app", "--plan", str(project / "p1"))
    assert applied.exit_code == 0, applied.output
    assert "Apply complete! Resources: 3 added" in applied.output

    versions = state_versions()
    assert len(versions) >= 1
    body = boto3.client("s3").get_object(Bucket="tfstate-test", Key="app/terraform.tfstate")["Body"].read()
    state = json.loads(body)
    assert {r["type"] for r in state["resources"]} == {"terraform_data"}

    again = cli(project, "plan", "app", "--out", str(project / "p2"), "--detailed-exitcode")
    assert again.exit_code == 0, again.output
    assert "app: no changes" in again.output
    changed = cli(project, "output", "app", "--json")
    assert json.loads(changed.output)["items"]["value"] == ["hello-0", "hello-1"]


def test_detailed_exitcode_reports_changes(project):
    result = cli(project, "plan", "app", "--detailed-exitcode")
    assert result.exit_code == 2, result.output


def test_tampered_plan_is_refused(project):
    assert cli(project, "plan", "app", "--out", str(project / "p")).exit_code == 0
    plan_file = project / "p" / "tfplan"
    data = bytearray(plan_file.read_bytes())
    data[-10] ^= 0xFF
    plan_file.write_bytes(bytes(data))
    result = cli(project, "apply", "app", "--plan", str(project / "p"))
    assert result.exit_code == 1
    assert "was modified after it was planned" in result.output
    assert state_versions() == []  # nothing applied


def test_plan_for_another_environment_is_refused(project):
    cfg = project / "mlcicd.yaml"
    cfg.write_text(cfg.read_text() + "  other:\n    account: staging\n    dir: terraform/app\n"
                   "    assume_role: false\n    vars:\n      greeting: hi\n")
    assert cli(project, "plan", "other", "--out", str(project / "p")).exit_code == 0
    result = cli(project, "apply", "app", "--plan", str(project / "p"))
    assert result.exit_code == 1
    assert "holds a plan for environment 'other', not 'app'" in result.output


def test_plan_after_config_change_is_refused(project):
    assert cli(project, "plan", "app", "--out", str(project / "p")).exit_code == 0
    cfg = project / "mlcicd.yaml"
    cfg.write_text(cfg.read_text().replace("greeting: hello", "greeting: bonjour"))
    result = cli(project, "apply", "app", "--plan", str(project / "p"))
    assert result.exit_code == 1
    assert "configuration of 'app' changed" in result.output


def test_stale_plan_is_refused(project):
    assert cli(project, "plan", "app", "--out", str(project / "old")).exit_code == 0
    assert cli(project, "plan", "app", "--out", str(project / "new")).exit_code == 0
    assert cli(project, "apply", "app", "--plan", str(project / "new")).exit_code == 0
    serial = json.loads(boto3.client("s3").get_object(
        Bucket="tfstate-test", Key="app/terraform.tfstate")["Body"].read())["serial"]
    result = cli(project, "apply", "app", "--plan", str(project / "old"))
    assert result.exit_code == 1
    assert "plan is stale" in result.output and "nothing was applied" in result.output
    after = json.loads(boto3.client("s3").get_object(
        Bucket="tfstate-test", Key="app/terraform.tfstate")["Body"].read())["serial"]
    assert after == serial


def test_not_a_plan_directory(project):
    (project / "empty").mkdir()
    result = cli(project, "apply", "app", "--plan", str(project / "empty"))
    assert result.exit_code == 1
    assert "is not a plan directory" in result.output


def test_apply_without_approval_refuses_in_ci(project):
    result = cli(project, "apply", "app")
    assert result.exit_code == 2
    assert "non-interactive" in result.output and "--auto-approve" in result.output
    assert state_versions() == []


def test_apply_auto_approve_and_destroy(project):
    result = cli(project, "apply", "app", "--auto-approve")
    assert result.exit_code == 0, result.output
    assert "applied: app: 3 to create" in result.output
    gone = cli(project, "destroy", "app", "--auto-approve")
    assert gone.exit_code == 0, gone.output
    assert "applied: app: 3 to destroy" in gone.output
    state = json.loads(boto3.client("s3").get_object(
        Bucket="tfstate-test", Key="app/terraform.tfstate")["Body"].read())
    assert state["resources"] == []


def test_second_apply_fails_naming_the_lock_and_state_stays_intact(project, tmp_path):
    from tests.test_interrupt import Run

    release = tmp_path / "release"
    # The first apply holds the lock until the test creates `release`: the second always meets it.
    first = Run(project, "--config", str(project / "mlcicd.yaml"), "apply", "app", "--auto-approve",
                TF_VAR_hold_until=str(release))
    first.wait_for("terraform_data.hold[0]: Provisioning with 'local-exec'")
    s3 = boto3.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="tfstate-test").get("Contents", [])]
    assert "app/terraform.tfstate.tflock" in keys
    second = cli(project, "apply", "app", "--auto-approve")
    release.touch()
    assert first.finish() == 0, first.output
    assert second.exit_code == 1, second.output
    assert "is locked by" in second.output and "lock ID" in second.output
    assert "force-unlock app" in second.output
    state = json.loads(s3.get_object(Bucket="tfstate-test", Key="app/terraform.tfstate")["Body"].read())
    assert len(state["resources"]) == 3  # item, secret, hold: the first apply's result, intact
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="tfstate-test").get("Contents", [])]
    assert "app/terraform.tfstate.tflock" not in keys


def test_a_module_that_gained_a_nested_module_is_initialised_again(project):
    root = project / "terraform" / "app"
    (root / "child").mkdir()
    (root / "child" / "main.tf").write_text('resource "terraform_data" "c" {\n  input = "child"\n}\n')
    (root / "modules.tf").write_text('module "child" {\n  source = "./child"\n}\n')
    assert cli(project, "plan", "app").exit_code == 0
    # Only the child changes: the root's files (and so the init stamp) stay the same.
    (root / "grandchild").mkdir()
    (root / "grandchild" / "main.tf").write_text('resource "terraform_data" "g" {\n  input = "grandchild"\n}\n')
    with open(root / "child" / "main.tf", "a") as fh:
        fh.write('module "grandchild" {\n  source = "../grandchild"\n}\n')
    result = cli(project, "plan", "app")
    assert result.exit_code == 0, result.output
    assert "module.child.module.grandchild.terraform_data.g" in result.output
