"""Interrupting a real apply: the bundled Terraform against the emulator's S3 backend, with
`mlcicd` run as its own process and signalled the way a terminal or a CI runner does."""

from __future__ import annotations

import http.client
import http.server
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3
import pytest

pytestmark = pytest.mark.usefixtures("state_bucket")

BUCKET = "tfstate-test"
STATE_KEY = "app/terraform.tfstate"
LOCK_KEY = STATE_KEY + ".tflock"

# Four resources created one after another, each running a command. Step 0 finishes at once;
# the later ones wait until the file TF_VAR_release_file exists, so an interrupt sent after
# step 0 always lands while Terraform is busy, however loaded the machine. TF_VAR_steps=0 makes
# a quick baseline apply.
SLOW_TF = "\n".join(
    f"""
resource "terraform_data" "step{i}" {{
  count      = var.steps > {i} ? 1 : 0
  input      = {i}
  {f"depends_on = [terraform_data.step{i - 1}]" if i else ""}

  provisioner "local-exec" {{
    command     = var.step_command
    environment = {{ STEP = {i}, RELEASE = var.release_file }}
  }}
}}"""
    for i in range(4)
) + """

variable "steps" {
  type    = number
  default = 4
}

variable "release_file" {
  type    = string
  default = ""
}

variable "step_command" {
  type    = string
  default = "[ $STEP = 0 ] && exit 0; for i in $(seq 3000); do [ -e $RELEASE ] && exit 0; sleep 0.1; done; exit 1"
}
"""


class Run:
    """`python -m mlcicd ARGS` in the project, its merged output read line by line."""

    def __init__(self, project, *args: str, **env: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mlcicd", *args], cwd=project, env={**os.environ, **env},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, text: str, timeout: float = 90) -> None:
        """Block until a line containing `text` is printed; fail if the run ends first."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"no line with {text!r} within {timeout}s:\n{self.output}")
            if line is None:
                pytest.fail(f"the run ended before printing {text!r}:\n{self.output}")
            self.lines.append(line)
            if text in line:
                return

    def finish(self, timeout: float = 90) -> int:
        returncode = self.proc.wait(timeout=timeout)
        while (line := self._queue.get(timeout=timeout)) is not None:
            self.lines.append(line)
        return returncode

    @property
    def output(self) -> str:
        return "".join(self.lines)


def mlcicd(project, *args: str, **env: str) -> tuple[int, str]:
    run = Run(project, *args, **env)
    return run.finish(), run.output


def bucket_keys() -> list[str]:
    return [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def remote_state() -> dict:
    body = boto3.client("s3").get_object(Bucket=BUCKET, Key=STATE_KEY)["Body"].read()
    return json.loads(body)  # raises on a torn or corrupt state


@pytest.fixture
def slow_project(project):
    (project / "terraform" / "app" / "slow.tf").write_text(SLOW_TF)
    code, out = mlcicd(project, "apply", "app", "--auto-approve", TF_VAR_steps="0")
    assert code == 0, out
    return project


def interrupted_apply(project, signals: list[signal.Signals], **env: str) -> tuple[Run, dict]:
    """Start an apply, wait until it is creating the slow steps, send `signals` (the second
    once Terraform has said it is stopping), and return the finished run and the old state."""
    before = remote_state()
    run = Run(project, "apply", "app", "--auto-approve", TF_VAR_release_file=str(release_file(project)), **env)
    run.wait_for("terraform_data.step0[0]: Creation complete")
    run.proc.send_signal(signals[0])
    for sig in signals[1:]:
        run.wait_for("Stopping operation...")
        run.proc.send_signal(sig)
    assert run.finish() == 130, run.output
    return run, before


def release_file(project) -> Path:
    """Once this file exists, the slow steps finish."""
    return project.parent / "release-steps"


def assert_state_safe(before: dict) -> dict:
    after = remote_state()
    assert after["lineage"] == before["lineage"]
    assert after["serial"] >= before["serial"]
    return after


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_apply_stops_gracefully_and_releases_the_lock(slow_project, sig):
    run, before = interrupted_apply(slow_project, [sig])

    assert "asking Terraform to stop gracefully" in run.output
    assert "Gracefully shutting down..." in run.output  # Terraform's own answer to the interrupt
    assert "Two interrupts received" not in run.output
    assert "Error: interrupted: Terraform stopped after 1 interrupt(s)" in run.output
    assert "Traceback" not in run.output
    assert LOCK_KEY not in bucket_keys()
    after = assert_state_safe(before)
    # The graceful stop recorded what finished before it, and did not run the rest.
    names = {r["name"] for r in after["resources"]}
    assert "step0" in names and "step3" not in names
    assert after["serial"] > before["serial"]

    code, out = mlcicd(slow_project, "plan", "app", "--detailed-exitcode")
    assert code == 2, out  # works without force-unlock, and the unfinished steps are still to do
    assert "to create" in out and "locked" not in out


def test_apply_after_an_interrupt_completes_the_work(slow_project):
    interrupted_apply(slow_project, [signal.SIGINT])
    release_file(slow_project).touch()
    code, out = mlcicd(slow_project, "apply", "app", "--auto-approve",
                       TF_VAR_release_file=str(release_file(slow_project)))
    assert code == 0, out
    assert {f"step{i}" for i in range(4)} <= {r["name"] for r in remote_state()["resources"]}
    code, out = mlcicd(slow_project, "plan", "app", "--detailed-exitcode")
    assert code == 0, out


class StateWriteGate(http.server.BaseHTTPRequestHandler):
    """A pass-through to the emulator that, once armed, holds the next upload of the state
    until released: Terraform is then certainly still stopping (writing the state) when the
    test sends its second interrupt."""

    upstream = ""
    armed = threading.Event()
    holding = threading.Event()
    release = threading.Event()

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path = self.path.split("?")[0]
        if self.command == "PUT" and path.endswith("/" + STATE_KEY) and StateWriteGate.armed.is_set():
            StateWriteGate.holding.set()
            StateWriteGate.release.wait(timeout=120)
        conn = http.client.HTTPConnection(self.upstream, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        conn.request(self.command, self.path, body=body, headers=headers)
        answer = conn.getresponse()
        data = answer.read()
        self.send_response(answer.status)
        for k, v in answer.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length", "server", "date"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def state_write_gate(aws_env):
    StateWriteGate.upstream = aws_env.url.removeprefix("http://")
    for event in (StateWriteGate.armed, StateWriteGate.holding, StateWriteGate.release):
        event.clear()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), StateWriteGate)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    StateWriteGate.release.set()
    server.shutdown()


def test_second_interrupt_makes_terraform_exit_at_once_as_documented(slow_project, state_write_gate):
    before = remote_state()
    run = Run(slow_project, "apply", "app", "--auto-approve", TF_VAR_release_file=str(release_file(slow_project)),
              AWS_ENDPOINT_URL_S3=state_write_gate)
    run.wait_for("terraform_data.step0[0]: Creation complete")
    StateWriteGate.armed.set()
    run.proc.send_signal(signal.SIGINT)
    # Terraform stops the in-flight step and writes the state; that write is held here.
    assert StateWriteGate.holding.wait(timeout=90), run.output
    run.proc.send_signal(signal.SIGINT)
    assert run.finish() == 130, run.output
    StateWriteGate.release.set()

    assert "second interrupt; Terraform will exit immediately" in run.output
    assert "Two interrupts received. Exiting immediately." in run.output
    assert "stopped after 2 interrupt(s) and may have exited before writing state" in run.output
    assert "force-unlock" in run.output  # the hint says how to recover a left lock
    assert_state_safe(before)  # never a torn state: S3 replaces the object whole

    # As documented: Terraform exited before it could release the lock; the next plan names
    # it, force-unlock releases it, and work goes on.
    code, out = mlcicd(slow_project, "plan", "app")
    assert code == 1 and "is locked by" in out, out
    lock_id = out.split("lock ID ")[1].split(",")[0].split(")")[0]
    code, out = mlcicd(slow_project, "force-unlock", "app", lock_id, "--yes")
    assert code == 0, out
    code, out = mlcicd(slow_project, "plan", "app")
    assert code == 0, out
