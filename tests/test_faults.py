"""Backend faults: the AWS endpoint goes away and comes back; AWS throttles and answers 5xx.

The outage test runs its own emulator (not the session one) so it can stop and restart it.
The retry tests put a tiny HTTP server on 127.0.0.1 in front of the SDK, answering 503 or
throttling errors a set number of times, and count the requests that reach it.
"""

from __future__ import annotations

import http.server
import json
import os
import stat
import textwrap
import threading
import time
from pathlib import Path

import boto3
import pytest

from mlcicd import aws
from mlcicd import config as configuration
from mlcicd.runtime import Runtime
from tests.conftest import REGION, Emulator
from tests.test_interrupt import Run, mlcicd

LOCK = "app/terraform.tfstate.tflock"


class Restartable:
    """An emulator on a fixed port that can be stopped and started again. The emulated AWS
    lives in this process, so what it held before the stop is there after the restart."""

    def __init__(self) -> None:
        self.first = Emulator()
        self.url, self.port = self.first.url, self.first.port
        self.current = self.first

    def start(self) -> None:
        from moto.server import ThreadedMotoServer

        if self.current is not self.first or getattr(self, "_stopped", False):
            self.current = Emulator.__new__(Emulator)
            self.current._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.current.start()
        self._stopped = False

    def stop(self) -> None:
        self.current.stop()
        self._stopped = True


@pytest.fixture
def own_emulator(monkeypatch, tmp_path):
    server = Restartable()
    server.start()
    for name in list(os.environ):
        if name.startswith(("AWS_", "TF_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret-key-value")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    bucket = f"faults-{server.port}"
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=bucket)
    yield server, bucket
    server.stop()


def leftovers(root: Path) -> list[Path]:
    """Temporary or partial files anywhere in the project."""
    return [p for p in root.rglob("*") if p.is_file()
            and (p.name.endswith((".tmp", ".partial")) or p.name == "errored.tfstate")]


def test_endpoint_down_fails_clearly_then_the_same_command_succeeds(project, own_emulator):
    server, bucket = own_emulator
    path = project / "mlcicd.yaml"
    path.write_text(path.read_text().replace("bucket: tfstate-test", f"bucket: {bucket}"))
    code, out = mlcicd(project, "apply", "app", "--auto-approve")
    assert code == 0, out
    plan_dir = project / "reviewed"

    server.stop()
    code, out = mlcicd(project, "plan", "app", "--out", str(plan_dir))
    assert code == 1, out
    error = out[out.rindex("Error: terraform"):]  # mlcicd's own last word, after Terraform's
    assert f"cannot reach {server.url} (connection refused)" in error, error
    assert "Traceback" not in out
    assert not (plan_dir / "manifest.json").exists() and not (plan_dir / "tfplan").exists()
    assert leftovers(project) == []

    server.start()
    code, out = mlcicd(project, "plan", "app", "--out", str(plan_dir))
    assert code == 0, out
    assert (plan_dir / "manifest.json").is_file() and (plan_dir / "tfplan").is_file()
    code, out = mlcicd(project, "apply", "app", "--plan", str(plan_dir))
    assert code == 0, out


class FlakyAWS(http.server.BaseHTTPRequestHandler):
    """Answers the first `failures` requests with `status`/`code`, then succeeds."""

    failures = 0
    status = 503
    code = "SlowDown"
    requests: list[float] = []

    def do_GET(self) -> None:  # noqa: N802 (the http.server API)
        FlakyAWS.requests.append(time.monotonic())
        if len(FlakyAWS.requests) <= FlakyAWS.failures:
            body = (f"<Error><Code>{self.code}</Code><Message>slow down</Message>"
                    "<RequestId>1</RequestId></Error>").encode()
            self.send_response(self.status)
        else:
            body = (b'<?xml version="1.0" encoding="UTF-8"?><ListAllMyBucketsResult>'
                    b"<Owner><ID>1</ID></Owner><Buckets><Bucket><Name>ok-bucket</Name>"
                    b"<CreationDate>2026-01-01T00:00:00.000Z</CreationDate></Bucket></Buckets>"
                    b"</ListAllMyBucketsResult>")
            self.send_response(200)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def flaky(tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FlakyAWS)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    FlakyAWS.requests = []
    (tmp_path / "mlcicd.yaml").write_text(textwrap.dedent("""\
        project: demo
        region: us-east-1
        repository: {name: acme/ml-models}
        accounts: {devops: "123456789012", dev: "123456789012", staging: "123456789012",
                   prod: "123456789012", data: "123456789012"}
        """))
    cfg = configuration.load(tmp_path / "mlcicd.yaml")
    runtime = Runtime.from_environ({"AWS_ENDPOINT_URL": f"http://127.0.0.1:{server.server_port}",
                                    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
    yield cfg, runtime
    server.shutdown()


def s3_client(cfg, runtime, **kwargs):
    sess = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
    return aws.client(cfg, runtime, "s3", boto_session=sess, **kwargs)


@pytest.mark.parametrize(("status", "code"), [(503, "SlowDown"), (500, "InternalError"), (400, "Throttling")])
def test_throttling_and_5xx_are_retried_by_the_sdk(flaky, status, code):
    FlakyAWS.failures, FlakyAWS.status, FlakyAWS.code = 2, status, code
    buckets = s3_client(*flaky).list_buckets()["Buckets"]
    assert [b["Name"] for b in buckets] == ["ok-bucket"]
    assert len(FlakyAWS.requests) == 3  # two answered with errors, retried, then the success


def test_retries_are_bounded_and_end_in_a_clear_error(flaky):
    FlakyAWS.failures, FlakyAWS.status, FlakyAWS.code = 1000, 503, "SlowDown"
    client = s3_client(*flaky, max_attempts=3)
    with pytest.raises(aws.AwsThrottled) as caught, aws.errors("listing buckets"):
        client.list_buckets()
    assert len(FlakyAWS.requests) == 3
    assert caught.value.attempts == 3 and "SlowDown" in str(caught.value)


def test_every_client_gives_up_after_a_bounded_number_of_requests(flaky, monkeypatch):
    # A client made the way mlcicd makes them, with no bound passed: the default bound holds.
    import types

    import botocore.endpoint

    # The SDK's backoff between attempts, skipped: the count is the point, not the waiting.
    monkeypatch.setattr(botocore.endpoint, "time", types.SimpleNamespace(sleep=lambda seconds: None))
    FlakyAWS.failures, FlakyAWS.status, FlakyAWS.code = 1000, 503, "SlowDown"
    client = s3_client(*flaky)
    with pytest.raises(aws.AwsThrottled), aws.errors("listing buckets"):
        client.list_buckets()
    assert 1 < len(FlakyAWS.requests) <= 10
    assert len(FlakyAWS.requests) == aws.MAX_ATTEMPTS


@pytest.mark.slow  # ~40 s: Terraform's own bounded retries against the stopped endpoint
def test_endpoint_lost_during_apply_keeps_the_state_recoverable(project, own_emulator):
    server, bucket = own_emulator
    path = project / "mlcicd.yaml"
    path.write_text(path.read_text().replace("bucket: tfstate-test", f"bucket: {bucket}"))
    release = project.parent / "release"
    run = Run(project, "apply", "app", "--auto-approve", TF_VAR_hold_until=str(release))
    run.wait_for("terraform_data.hold[0]: Provisioning with 'local-exec'")
    server.stop()  # while Terraform holds the lock and has state to upload
    release.touch()
    assert run.finish(timeout=180) == 1, run.output
    error = run.output[run.output.rindex("Error: terraform"):]
    errored = project / ".mlcicd" / "app" / "errored.tfstate"  # this environment's own, not the module's
    assert f"cannot reach {server.url}" in error and str(errored) in error, error
    assert "force-unlock app" in error and "`mlcicd recover app`" in error
    assert "Traceback" not in run.output
    assert stat.S_IMODE(errored.stat().st_mode) == 0o600  # the whole state, secrets included
    saved = json.loads(errored.read_text())
    assert {r["name"] for r in saved["resources"]} >= {"item", "secret", "hold"}

    # The documented recovery: release the lock, push the saved state, carry on.
    server.start()
    lock = json.loads(boto3.client("s3").get_object(Bucket=bucket, Key=LOCK)["Body"].read())
    code, out = mlcicd(project, "force-unlock", "app", lock["ID"], "--yes")
    assert code == 0, out
    code, out = mlcicd(project, "recover", "app")
    assert code == 0, out
    assert not errored.exists()
    code, out = mlcicd(project, "plan", "app", "--detailed-exitcode", TF_VAR_hold_until=str(release))
    assert code == 2, out  # the hold's timestamp input always changes
    assert "will be created" not in out, out  # nothing recorded before the outage is lost
