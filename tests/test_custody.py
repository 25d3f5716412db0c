"""Chain of custody of a reviewed plan, tried as an attacker with write access to a plan
directory (or the artifact bucket) would: each attack is refused with nothing applied.
The real bundled Terraform against the emulator's S3 backend throughout.

    1. swap tfplan after the check, as Terraform starts        test_a_plan_swapped_after_the_check_...
    2. copy another plan's review files into a plan            test_review_files_copied_from_another_plan_...
    3. rewrite the manifest's environment (and its digest)     test_a_plan_for_another_environment_...
    4. deploy a plan other than the approved one               test_apply_refuses_a_plan_other_than_the_approved_one
    5. recovery state shared between environments              test_state_a_failed_apply_could_not_upload_...
    6. SIGKILL of mlcicd during apply                          test_sigkill_of_mlcicd_...
    7. modes, malformed/linked/missing files, checks before init: the tests from test_plan_dir_modes on
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import time
from pathlib import Path

import boto3
import pytest
from click.testing import CliRunner

from mlcicd import plandir
from mlcicd.cli import main
from tests.test_interrupt import BUCKET, LOCK_KEY, Run, bucket_keys, mlcicd, remote_state

pytestmark = pytest.mark.usefixtures("state_bucket")

OTHER = ("  other:\n    account: staging\n    dir: terraform/app\n    assume_role: false\n"
         "    vars:\n      greeting: hi\n")
DENY_ALL = {"Version": "2012-10-17", "Statement": [{
    "Effect": "Deny", "Principal": "*", "Action": "s3:*",
    "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"]}]}


def cli(project, *args):
    return CliRunner().invoke(main, ["--config", str(project / "mlcicd.yaml"), *args])


def ok(result):
    assert result.exit_code == 0, result.output
    return result


def refused(result, *texts: str) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output, result.output
    for text in texts:
        assert text in result.output, result.output
    return result.output


def state_keys() -> list[str]:
    return sorted(k for k in bucket_keys() if k.endswith(".tfstate"))


def resource_names(key: str = "app/terraform.tfstate") -> set[str]:
    body = boto3.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return {r["name"] for r in json.loads(body)["resources"]}


@pytest.fixture
def applied(project):
    """`app` applied (item[0..1], secret); a reviewed no-change plan `good` and a plan `bad`
    that destroys everything, both valid against the current state."""
    ok(cli(project, "apply", "app", "--auto-approve"))
    ok(cli(project, "plan", "app", "--out", str(project / "good")))
    ok(cli(project, "plan", "app", "--destroy", "--out", str(project / "bad")))
    assert resource_names() == {"item", "secret"}
    return project


def manifest(plan_dir: Path) -> dict:
    return json.loads((plan_dir / plandir.MANIFEST).read_text())


def reseal(plan_dir: Path, **fields) -> None:
    """What an attacker with mlcicd's own code can do: recompute every hash in the manifest."""
    data = manifest(plan_dir)
    data["files"] = {name: plandir.sha256_bytes((plan_dir / name).read_bytes()) for name in data["files"]}
    data["plan_sha256"] = data["files"]["tfplan"]
    data.update(fields)
    (plan_dir / plandir.MANIFEST).write_text(json.dumps(data))


# -- 1. swap after the check -----------------------------------------------------------------------


def test_a_plan_swapped_after_the_check_is_not_what_terraform_applies(applied, monkeypatch):
    from mlcicd.terraform import Terraform

    good, bad = applied / "good", applied / "bad"
    approved = manifest(good)["plan_sha256"]
    real_run = Terraform.run
    swapped = []

    def swap_as_terraform_starts(self, argv, **kwargs):
        # The worst moment: every check passed, Terraform is about to open the plan.
        if argv[0] == "apply":
            for name in os.listdir(bad):
                shutil.copy(bad / name, good / name)
            swapped.append(argv)
        return real_run(self, argv, **kwargs)

    monkeypatch.setattr(Terraform, "run", swap_as_terraform_starts)
    result = ok(cli(applied, "apply", "app", "--plan", str(good), "--expect-sha256", approved))
    assert swapped, "the apply never ran"
    assert f"app: applied plan {approved[:12]}" in result.output
    assert "Destruction complete" not in result.output
    assert resource_names() == {"item", "secret"}  # the reviewed plan (no changes), not the destroy
    assert manifest(good)["plan_sha256"] != approved  # the directory really was swapped


# -- 2. review not bound to the plan ---------------------------------------------------------------


def test_review_files_copied_from_another_plan_are_refused_by_review_and_apply(applied):
    good, bad = applied / "good", applied / "bad"
    for name in (plandir.PLAN_JSON, plandir.SUMMARY, plandir.REVIEW_MARKDOWN):
        shutil.copy(good / name, bad / name)

    refused(cli(applied, "review", str(bad), "--fail-on", "destroy", "--no-checkov"),
            "plan.json was modified after it was planned")
    refused(cli(applied, "apply", "app", "--plan", str(bad)), "plan.json was modified after it was planned")

    # With the manifest resealed the files match it, but plan.json still is not tfplan's.
    reseal(bad)
    refused(cli(applied, "apply", "app", "--plan", str(bad)),
            "plan.json in", "does not describe its tfplan; what was reviewed is not what would be applied")
    assert resource_names() == {"item", "secret"}


# -- 3. environment not bound to the plan ----------------------------------------------------------


def test_a_plan_for_another_environment_is_refused_whatever_its_manifest_says(project):
    from mlcicd import config
    from mlcicd.deploy import Workspace
    from mlcicd.runtime import Runtime

    cfg = project / "mlcicd.yaml"
    cfg.write_text(cfg.read_text() + OTHER)
    plan = project / "other-plan"
    ok(cli(project, "plan", "other", "--out", str(plan)))
    loaded = config.load(cfg)
    forged_digest = Workspace(loaded, loaded.env("app"), Runtime.from_environ()).config_digest()
    reseal(plan, env="app", config_digest=forged_digest)

    refused(cli(project, "apply", "app", "--plan", str(plan)),
            "writes its state to s3 bucket 'tfstate-test' key 'other/terraform.tfstate'",
            "not to 'app''s state", "another environment's plan")
    assert state_keys() == []  # nothing applied to either environment


def test_a_plan_for_another_environment_is_refused_before_init(project, tmp_path):
    cfg = project / "mlcicd.yaml"
    cfg.write_text(cfg.read_text() + OTHER)
    plan = tmp_path / "other-plan"
    ok(cli(project, "plan", "other", "--out", str(plan)))
    fresh = tmp_path / "fresh-checkout"  # a CI job that has not run init for app
    shutil.copytree(project, fresh, ignore=shutil.ignore_patterns(".mlcicd"))
    refused(cli(fresh, "apply", "app", "--plan", str(plan)), "holds a plan for environment 'other', not 'app'")
    # So is a plan.json that does not parse (its hash resealed), and the wrong approved sha.
    ours = tmp_path / "app-plan"
    ok(cli(project, "plan", "app", "--out", str(ours)))
    refused(cli(fresh, "apply", "app", "--plan", str(ours), "--expect-sha256", "0" * 64), "not the approved")
    _malformed_json(ours)
    refused(cli(fresh, "apply", "app", "--plan", str(ours)), "is not readable plan JSON")
    assert not (fresh / ".mlcicd" / "app" / "tfdata").exists()


# -- 4. deploy not bound to the approval -----------------------------------------------------------


def test_apply_refuses_a_plan_other_than_the_approved_one(project):
    plan = project / "p"
    ok(cli(project, "plan", "app", "--out", str(plan)))
    sha = manifest(plan)["plan_sha256"]
    other = "0" * 64
    refused(cli(project, "apply", "app", "--plan", str(plan), "--expect-sha256", other),
            f"has sha256 {sha}, not the approved {other}")
    assert state_keys() == []
    usage = cli(project, "apply", "app", "--expect-sha256", sha, "--auto-approve")
    assert usage.exit_code == 2 and "pass --plan DIR too" in usage.output
    ok(cli(project, "apply", "app", "--plan", str(plan), "--expect-sha256", sha.upper()))
    assert resource_names() == {"item", "secret"}


# -- 5. recovery state per environment -------------------------------------------------------------


def test_state_a_failed_apply_could_not_upload_is_kept_per_environment_until_recovered(project, tmp_path):
    cfg = project / "mlcicd.yaml"
    cfg.write_text(cfg.read_text() + OTHER)  # `other` shares app's root module directory
    s3 = boto3.client("s3")
    release = tmp_path / "release"
    run = Run(project, "apply", "app", "--auto-approve", TF_VAR_hold_until=str(release))
    run.wait_for("terraform_data.hold[0]: Provisioning with 'local-exec'")
    s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(DENY_ALL))  # the state cannot be uploaded now
    release.touch()
    assert run.finish() == 1, run.output
    kept = project / ".mlcicd" / "app" / "errored.tfstate"
    error = run.output[run.output.rindex("Error: terraform"):]
    assert "could not upload the state" in error and str(kept) in error, error
    assert "`mlcicd recover app`" in error
    assert not list((project / "terraform").rglob("errored.tfstate"))  # never in the shared directory
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert {r["name"] for r in json.loads(kept.read_text())["resources"]} == {"item", "secret", "hold"}
    s3.delete_bucket_policy(Bucket=BUCKET)

    # app refuses to plan against the older state and names the command; other is not affected.
    refused(cli(project, "plan", "app"), "has state from a failed apply", "`mlcicd recover app`")
    refused(cli(project, "apply", "app", "--auto-approve"), "`mlcicd recover app`")
    ok(cli(project, "plan", "other"))

    # The lock could not be released either (403): recover names it, force-unlock, recover.
    assert LOCK_KEY in bucket_keys()
    lock_id = json.loads(s3.get_object(Bucket=BUCKET, Key=LOCK_KEY)["Body"].read())["ID"]
    refused(cli(project, "recover", "app"), f"lock ID {lock_id}", f"force-unlock app {lock_id}")
    assert kept.exists()
    ok(cli(project, "force-unlock", "app", lock_id, "--yes"))
    ok(cli(project, "recover", "app"))
    assert not kept.exists()
    assert resource_names() == {"item", "secret", "hold"}
    again = cli(project, "plan", "app", "--detailed-exitcode")
    # Nothing recorded before the failure is lost: only the hold, unwanted now, would go.
    assert again.exit_code == 2 and "app: 1 to destroy" in again.output, again.output
    assert "will be created" not in again.output
    nothing = cli(project, "recover", "app")
    assert nothing.exit_code == 2 and "no state to recover" in nothing.output


# -- 6. SIGKILL of mlcicd --------------------------------------------------------------------------


def terraform_processes(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def exited(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError):
        return True


def test_sigkill_of_mlcicd_lets_terraform_save_state_and_release_the_lock(project, tmp_path):
    run = Run(project, "apply", "app", "--auto-approve", TF_VAR_hold_until=str(tmp_path / "never"))
    for text in ("terraform_data.secret: Creation complete", "terraform_data.item[1]: Creation complete",
                 "terraform_data.item[0]: Creation complete", "terraform_data.hold[0]: Provisioning"):
        if not any(text in line for line in run.lines):
            run.wait_for(text)
    terraform = terraform_processes(run.proc.pid)
    assert terraform and LOCK_KEY in bucket_keys()
    run.proc.kill()  # mlcicd only, as an OOM killer or a CI timeout would
    run.proc.wait()
    deadline = time.monotonic() + 120
    while not all(exited(pid) for pid in terraform):
        assert time.monotonic() < deadline, "Terraform did not stop after mlcicd died"
        time.sleep(0.1)
    assert LOCK_KEY not in bucket_keys()  # released by Terraform's graceful stop
    assert {"item", "secret"} <= {r["name"] for r in remote_state()["resources"]}
    code, out = mlcicd(project, "plan", "app", "--detailed-exitcode")
    # Everything created before the kill is recorded: nothing left to create (only the
    # interrupted hold, no longer wanted without TF_VAR_hold_until, goes).
    assert code == 2 and "app: 1 to destroy" in out and "will be created" not in out, out


# -- 7. modes, bad files, checks before init ------------------------------------------------------


def test_plan_dir_modes(project):
    plan = project / "p"
    ok(cli(project, "plan", "app", "--out", str(plan)))
    assert stat.S_IMODE(plan.stat().st_mode) == 0o700
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in plan.iterdir()} == {
        name: 0o600 for name in ("tfplan", "plan.json", "summary.txt", "review.md", "manifest.json")}
    assert set(manifest(plan)["files"]) == {"tfplan", "plan.json", "summary.txt", "review.md"}
    # Terraform writes the plan into a file that is 0600 before its first byte.
    with plandir.partial_plan(plan) as partial:
        assert stat.S_IMODE(partial.stat().st_mode) == 0o600 and partial.stat().st_size == 0


def test_a_new_plan_replaces_everything_an_earlier_one_left(project):
    plan = project / "p"
    plan.mkdir()
    (plan / plandir.OFFLINE_MARKER).write_text("left by an offline preview")
    (plan / "review.md").write_text("an old review")
    ok(cli(project, "plan", "app", "--out", str(plan)))
    assert not (plan / plandir.OFFLINE_MARKER).exists() and manifest(plan)["offline"] is False
    assert (plan / "review.md").read_text() != "an old review"
    (project / "afile").write_text("")
    refused(cli(project, "plan", "app", "--out", str(project / "afile" / "p")), "(or a directory above it) is a file")
    ok(cli(project, "apply", "app", "--plan", str(plan)))


def test_a_plan_dir_others_can_write_or_someone_else_owns_is_refused(project, monkeypatch):
    plan = project / "p"
    ok(cli(project, "plan", "app", "--out", str(plan)))
    plan.chmod(0o777)
    refused(cli(project, "apply", "app", "--plan", str(plan)), "is writable by others (mode 0777)", "chmod -R go-w")
    plan.chmod(0o700)
    (plan / "tfplan").chmod(0o666)
    refused(cli(project, "apply", "app", "--plan", str(plan)), "tfplan is writable by others (mode 0666)")
    (plan / "tfplan").chmod(0o600)
    with monkeypatch.context() as patch:
        patch.setattr(os, "getuid", lambda: plan.stat().st_uid + 4242)
        refused(cli(project, "apply", "app", "--plan", str(plan)), "is owned by uid", "not by you")
    assert state_keys() == []


def _malformed_json(plan: Path) -> None:
    (plan / "plan.json").write_text('{"format_version": ')
    reseal(plan)


def _symlinked_json(plan: Path) -> None:
    target = plan.parent / "elsewhere.json"
    shutil.move(plan / "plan.json", target)
    (plan / "plan.json").symlink_to(target)


def _fifo_json(plan: Path) -> None:
    (plan / "plan.json").unlink()
    os.mkfifo(plan / "plan.json", 0o600)


def _manifest_names_a_path(plan: Path) -> None:
    data = manifest(plan)
    data["files"]["../mlcicd.yaml"] = "0" * 64
    (plan / "manifest.json").write_text(json.dumps(data))


def _manifest_a_directory(plan: Path) -> None:
    (plan / "manifest.json").unlink()
    (plan / "manifest.json").mkdir()


BROKEN = {
    "malformed plan.json": (_malformed_json, "is not readable plan JSON"),
    "plan.json a symlink": (_symlinked_json, "plan.json is a symbolic link"),
    "plan.json a fifo": (_fifo_json, "plan.json is not a regular file"),
    "plan.json missing": (lambda p: (p / "plan.json").unlink(), "plan.json is missing"),
    "manifest garbage": (lambda p: (p / "manifest.json").write_text("[1, 2"), "is not a valid mlcicd plan manifest"),
    "manifest not an object": (lambda p: (p / "manifest.json").write_text("[]"), "is not a valid mlcicd plan manifest"),
    "manifest missing": (lambda p: (p / "manifest.json").unlink(), "manifest.json is missing"),
    "manifest a directory": (_manifest_a_directory, "manifest.json is not a regular file"),
    "manifest names a path": (_manifest_names_a_path, "names '../mlcicd.yaml', which is not a plan directory file"),
    "old manifest format": (lambda p: reseal(p, format=1), "manifest format 1 is not supported"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_plan_directory_is_refused_by_review_and_apply_without_a_traceback(project, case):
    plan = project / "p"
    ok(cli(project, "plan", "app", "--out", str(plan)))
    breaks, message = BROKEN[case]
    breaks(plan)
    refused(cli(project, "review", str(plan), "--no-checkov"), message)
    refused(cli(project, "apply", "app", "--plan", str(plan)), message)
    assert state_keys() == []


def test_a_linked_plan_directory_is_refused(project):
    ok(cli(project, "plan", "app", "--out", str(project / "p")))
    (project / "link").symlink_to(project / "p")
    refused(cli(project, "review", str(project / "link"), "--no-checkov"), "it is a symbolic link")
    refused(cli(project, "apply", "app", "--plan", str(project / "link")), "it is a symbolic link")
    assert state_keys() == []


def test_review_may_reseal_only_the_review_of_a_plan_directory(project):
    plan = project / "p"
    ok(cli(project, "plan", "app", "--out", str(plan)))
    ok(cli(project, "review", str(plan), "--format", "markdown", "--no-checkov", "--out", str(plan / "review.md")))
    assert manifest(plan)["files"]["review.md"] == plandir.sha256_bytes((plan / "review.md").read_bytes())
    refused(cli(project, "review", str(plan), "--no-checkov", "--out", str(plan / "summary.txt")),
            "only review.md of a plan directory may be rewritten")
    ok(cli(project, "apply", "app", "--plan", str(plan)))


def test_review_of_a_bare_plan_json_says_it_is_unverified(project):
    ok(cli(project, "plan", "app", "--out", str(project / "p")))
    verified = ok(cli(project, "review", str(project / "p"), "--no-checkov"))
    assert "unverified" not in verified.output
    bare = ok(cli(project, "review", str(project / "p" / "plan.json"), "--no-checkov"))
    assert "unverified:" in bare.output and "is a bare plan.json, not a plan directory" in bare.output


# -- Terraform's failures, each with its own message ---------------------------------------------


def test_access_denied_by_the_state_bucket_is_not_called_a_lock(project):
    ok(cli(project, "init", "app"))
    boto3.client("s3").put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(DENY_ALL))
    out = refused(cli(project, "plan", "app"), "access denied (403) by the state backend", "bootstrap --check")
    assert "released it moments later" not in out and "is locked by" not in out


def test_an_unreachable_registry_is_said_once_with_what_to_do(project):
    (project / "terraform" / "app" / "provider.tf").write_text(
        'terraform {\n  required_providers {\n    thing = { source = "registry.invalid/acme/thing" }\n  }\n}\n')
    out = refused(cli(project, "plan", "app"), "cannot download provider registry.invalid/acme/thing",
                  "--offline", "provider mirror", "TF_CLI_CONFIG_FILE")
    assert out.count("Failed to query available provider packages") == 1  # Terraform's own, not repeated


def test_after_a_failed_init_the_next_command_inits_again_not_using_the_previous_backend(project):
    ok(cli(project, "apply", "app", "--auto-approve"))
    cfg = project / "mlcicd.yaml"
    cfg.write_text(cfg.read_text().replace("bucket: tfstate-test", "bucket: tfstate-moved"))
    refused(cli(project, "init", "app"), 'S3 bucket "tfstate-moved" does not exist')
    # The bucket exists now, empty: plan must init against it, not plan against the old state.
    boto3.client("s3").create_bucket(Bucket="tfstate-moved")
    result = cli(project, "plan", "app", "--detailed-exitcode")
    assert result.exit_code == 2, result.output
    assert "app: 3 to create" in result.output


def test_apply_in_its_private_mirror_still_finds_relative_modules_and_files(project):
    root = project / "terraform" / "app"
    (project / "terraform" / "shared").mkdir()
    (project / "terraform" / "shared" / "data.txt").write_text("from the shared module")
    (project / "terraform" / "shared" / "main.tf").write_text(
        'resource "terraform_data" "shared" {\n  input = file("${path.module}/data.txt")\n}\n')
    (root / "root.txt").write_text("from the root module")
    (root / "extra.tf").write_text(
        'module "shared" {\n  source = "../shared"\n}\n\n'
        'resource "terraform_data" "local" {\n  input = file("${path.module}/root.txt")\n}\n')
    ok(cli(project, "apply", "app", "--auto-approve"))
    state = remote_state()
    inputs = {r["name"]: r["instances"][0]["attributes"]["input"]["value"] for r in state["resources"]
              if r["name"] in ("shared", "local")}
    assert inputs == {"shared": "from the shared module", "local": "from the root module"}
    assert not [p for p in (project / ".mlcicd" / "app").iterdir() if p.name.startswith("apply-")]
