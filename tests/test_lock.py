"""The state lock under contention: two applies at once, and a lock left behind by a run that
was killed outright, released with `mlcicd force-unlock` after a confirmation."""

from __future__ import annotations

import getpass
import json
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

from tests.test_interrupt import BUCKET, LOCK_KEY, Run, bucket_keys, mlcicd, remote_state

pytestmark = pytest.mark.usefixtures("state_bucket")


def lock_object() -> dict:
    return json.loads(boto3.client("s3").get_object(Bucket=BUCKET, Key=LOCK_KEY)["Body"].read())


def test_two_applies_at_once_exactly_one_proceeds(project, tmp_path):
    # Two CI jobs: two checkouts of the same project, one state in the bucket.
    other = tmp_path / "other-checkout"
    shutil.copytree(project, other)
    for checkout in (project, other):
        code, out = mlcicd(checkout, "init", "app")
        assert code == 0, out
    # The first holds the lock until the test releases it, so the second always meets it.
    release = tmp_path / "release"
    first = Run(project, "apply", "app", "--auto-approve", TF_VAR_hold_until=str(release))
    first.wait_for("terraform_data.hold[0]: Provisioning with 'local-exec'")
    second = Run(other, "apply", "app", "--auto-approve", TF_VAR_hold_until=str(release))
    failed_code = second.finish()
    release.touch()
    ok_code = first.finish()
    ok_out, failed_out = first.output, second.output

    assert (ok_code, failed_code) == (0, 1), (ok_out, failed_out)
    assert "Apply complete!" in ok_out
    assert "Apply complete!" not in failed_out
    assert f"is locked by {getpass.getuser()}@" in failed_out  # who holds it: user@host
    assert "lock ID " in failed_out and "force-unlock app" in failed_out
    assert "lock ID ?" not in failed_out
    assert "Traceback" not in failed_out
    assert LOCK_KEY not in bucket_keys()
    assert {r["name"] for r in remote_state()["resources"]} >= {"item", "secret", "hold"}


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


@pytest.fixture
def stale_lock(project):
    """A lock left in the bucket by a Terraform killed with SIGKILL in the middle of an apply."""
    run = Run(project, "apply", "app", "--auto-approve", TF_VAR_hold_until=str(project / "never"))
    run.wait_for("terraform_data.hold[0]: Provisioning with 'local-exec'")
    assert LOCK_KEY in bucket_keys()
    for child in children(run.proc.pid):  # Terraform runs in its own session: kill all of it
        os.killpg(child, signal.SIGKILL)
    assert run.finish() == 1, run.output
    assert LOCK_KEY in bucket_keys()
    return lock_object()["ID"]


def answer_prompt(project, args: list[str], answer: str) -> tuple[int, str]:
    """Run mlcicd on a pseudo-terminal, as a person would, and answer its question."""
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "CODEBUILD_BUILD_ID")}
    primary, secondary = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "mlcicd", *args], cwd=project, env=env,
                            stdin=secondary, stdout=secondary, stderr=secondary, close_fds=True)
    os.close(secondary)
    out, answered = b"", False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([primary], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(primary, 4096)
            except OSError:  # the other side closed: the process is done
                break
            if not chunk:
                break
            out += chunk
            if not answered and b"[y/N]" in out:
                os.write(primary, answer.encode() + b"\n")
                answered = True
        elif proc.poll() is not None:
            break
    os.close(primary)
    return proc.wait(timeout=30), out.decode(errors="replace")


def test_a_lock_left_by_a_killed_run_is_named_and_force_unlock_asks_first(project, stale_lock):
    code, out = mlcicd(project, "plan", "app")
    assert code == 1 and f"lock ID {stale_lock}" in out, out

    # Without a terminal there is nobody to ask: refuse rather than unlock silently.
    code, out = mlcicd(project, "force-unlock", "app", stale_lock)
    assert code == 2 and "--yes" in out, out
    # A person who says no keeps the lock.
    code, out = answer_prompt(project, ["force-unlock", "app", stale_lock], "n")
    assert f"Release lock {stale_lock} on 'app'?" in out and "Make sure no other run is using it" in out
    assert code == 1 and "released" not in out, out
    assert lock_object()["ID"] == stale_lock
    # A wrong ID is refused by Terraform, and the lock stays.
    code, out = mlcicd(project, "force-unlock", "app", "00000000-0000-0000-0000-000000000000", "--yes")
    assert code == 1 and "Traceback" not in out, out
    assert LOCK_KEY in bucket_keys()
    # Yes releases it, and work goes on.
    code, out = answer_prompt(project, ["force-unlock", "app", stale_lock], "y")
    assert code == 0 and f"app: lock {stale_lock} released" in out, out
    assert LOCK_KEY not in bucket_keys()
    code, out = mlcicd(project, "plan", "app")
    assert code == 0, out
