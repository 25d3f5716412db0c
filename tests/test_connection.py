"""`mlcicd connect` and the pipeline's connection gate.

moto implements neither CodeConnections nor CodeStar Connections, so the API is played by
botocore's Stubber on a real client: every stubbed request is checked against the real API model.
"""

from __future__ import annotations

import functools
import json

import boto3
import pytest
from botocore.stub import Stubber
from click.testing import CliRunner

from mlcicd import connection as conn
from mlcicd import render
from mlcicd.cli import main
from mlcicd.config import load
from mlcicd.runtime import Runtime
from tests.conftest import ACCOUNT, REGION, free_port, write_config

NAME = "demo-github"
ARN = f"arn:aws:codeconnections:{REGION}:{ACCOUNT}:connection/11111111-2222-3333-4444-555555555555"
OTHER_ARN = f"arn:aws:codeconnections:{REGION}:{ACCOUNT}:connection/99999999-2222-3333-4444-555555555555"


def api_connection(arn=ARN, name=NAME, status="PENDING", provider="GitHub"):
    return {"ConnectionName": name, "ConnectionArn": arn, "ProviderType": provider,
            "OwnerAccountId": ACCOUNT, "ConnectionStatus": status}


@pytest.fixture
def config(tmp_path):
    return load(write_config(tmp_path))


@pytest.fixture
def stubbed():
    client = boto3.client("codeconnections", region_name=REGION, aws_access_key_id="testing",
                          aws_secret_access_key="testing-secret")
    with Stubber(client) as stub:
        yield conn.Connections(client), stub
        stub.assert_no_pending_responses()


def expect_get(stub, status, arn=ARN, name=NAME):
    stub.add_response("get_connection", {"Connection": api_connection(arn, name, status)},
                      expected_params={"ConnectionArn": arn})


def expect_list(stub, *connections, token=None, next_token=None):
    response = {"Connections": list(connections)}
    if next_token:
        response["NextToken"] = next_token
    stub.add_response("list_connections", response, expected_params={"NextToken": token} if token else {})


def test_create_when_missing_records_the_arn_where_rendering_reads_it(config, stubbed):
    conns, stub = stubbed
    expect_list(stub, api_connection(OTHER_ARN, name="someone-else"))
    stub.add_response("create_connection", {"ConnectionArn": ARN}, expected_params={
        "ProviderType": "GitHub", "ConnectionName": NAME,
        "Tags": [{"Key": "mlcicd:project", "Value": "demo"}]})
    expect_get(stub, "PENDING")

    found = conn.ensure(config, conns)
    assert found.created and found.recorded
    assert found.connection.status == "PENDING"
    record = json.loads((config.workdir / "connection.json").read_text())
    assert record["arn"] == ARN and record["api"] == "codeconnections" and record["name"] == NAME
    assert render.recorded_connection_arn(config) == ARN
    assert render.variables(config, config.env("devops"))["connection_arn"] == ARN


def test_found_by_name_across_pages_is_not_created_again(config, stubbed):
    conns, stub = stubbed
    expect_list(stub, api_connection(OTHER_ARN, name="other"), next_token="page2")
    expect_list(stub, api_connection(status="AVAILABLE"), token="page2")
    found = conn.ensure(config, conns)
    assert not found.created
    assert found.connection.arn == ARN and found.connection.status == "AVAILABLE"


def test_the_recorded_arn_is_asked_for_first(config, stubbed):
    conns, stub = stubbed
    conn.record(config, conn.Connection(ARN, NAME, "PENDING", "GitHub", ACCOUNT), "codeconnections")
    expect_get(stub, "AVAILABLE")  # no list, no create
    found = conn.ensure(config, conns)
    assert (found.created, found.recorded, found.connection.status) == (False, False, "AVAILABLE")


def test_a_deleted_recorded_connection_is_replaced(config, stubbed):
    conns, stub = stubbed
    conn.record(config, conn.Connection(OTHER_ARN, NAME, "PENDING", "GitHub", ACCOUNT), "codeconnections")
    stub.add_client_error("get_connection", "ResourceNotFoundException", http_status_code=400,
                          expected_params={"ConnectionArn": OTHER_ARN})
    expect_list(stub)
    stub.add_response("create_connection", {"ConnectionArn": ARN})
    expect_get(stub, "PENDING")
    found = conn.ensure(config, conns)
    assert found.created and render.recorded_connection_arn(config) == ARN


def test_two_connections_with_the_name_is_a_collision(config, stubbed):
    conns, stub = stubbed
    expect_list(stub, api_connection(ARN), api_connection(OTHER_ARN, status="AVAILABLE"))
    with pytest.raises(conn.ConnectionNameCollision) as err:
        conn.ensure(config, conns)
    assert ARN in str(err.value) and OTHER_ARN in str(err.value)
    assert "repository.connection_arn" in str(err.value)
    assert not (config.workdir / "connection.json").exists()


def test_the_name_taken_by_another_provider_is_a_collision(config, stubbed):
    conns, stub = stubbed
    expect_list(stub, api_connection(OTHER_ARN, provider="Bitbucket"))
    with pytest.raises(conn.ConnectionNameCollision, match="Bitbucket"):
        conn.ensure(config, conns)


def test_a_pinned_arn_is_used_and_never_created(tmp_path, stubbed):
    conns, stub = stubbed
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace("  branch: main\n", f"  branch: main\n  connection_arn: {ARN}\n"))
    config = load(path)
    expect_get(stub, "AVAILABLE")
    found = conn.ensure(config, conns)
    assert found.connection.arn == ARN and not found.recorded
    stub.add_client_error("get_connection", "ResourceNotFoundException", http_status_code=400)
    with pytest.raises(conn.ConnectionNotFound, match="fix or remove repository.connection_arn"):
        conn.ensure(config, conns)


class FakeClock:
    """Time that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def wait(conns, clock, timeout, ticks=None, interval=10.0):
    start = conn.Connection(ARN, NAME, "PENDING", "GitHub", ACCOUNT)
    on_tick = (lambda c, left, polled: ticks.append((round(left), polled))) if ticks is not None else None
    return conn.wait_available(conns, start, timeout, "https://console", interval=interval,
                               sleep=clock.sleep, clock=clock, on_tick=on_tick)


def test_wait_pending_then_available_with_a_countdown(stubbed):
    conns, stub = stubbed
    for status in ("PENDING", "PENDING", "AVAILABLE"):
        expect_get(stub, status)
    clock, ticks = FakeClock(), []
    assert wait(conns, clock, timeout=300, ticks=ticks, interval=3).status == "AVAILABLE"
    assert sum(clock.slept) == 6  # two polling intervals, no real waiting
    assert ticks == [(300, True), (299, False), (298, False), (297, True), (296, False), (295, False)]


def test_wait_times_out_with_the_last_poll_on_the_deadline(stubbed):
    conns, stub = stubbed
    for _ in range(4):  # at 0, 10, 20 and the deadline 25
        expect_get(stub, "PENDING")
    clock = FakeClock()
    with pytest.raises(conn.ConnectionTimeout) as err:
        wait(conns, clock, timeout=25)
    assert sum(clock.slept) == 25
    assert "still PENDING after 25 s" in str(err.value) and "https://console" in str(err.value)


def test_wait_stops_at_error_status(stubbed):
    conns, stub = stubbed
    expect_get(stub, "PENDING")
    expect_get(stub, "ERROR")
    with pytest.raises(conn.ConnectionFailed, match="is in ERROR status"):
        wait(conns, FakeClock(), timeout=300)


def test_fallback_to_codestar_connections_where_codeconnections_is_unreachable(config):
    closed = f"http://127.0.0.1:{free_port()}"
    runtime = Runtime.from_environ({"AWS_ENDPOINT_URL_CODECONNECTIONS": closed})
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="x", region_name=REGION)
    assert conn.available_api(config, runtime, session) == "codestar-connections"


def test_codeconnections_where_its_endpoint_answers(config, aws_env):
    # The emulator answers (with an error: it lacks the API), which proves the endpoint exists.
    runtime = Runtime.from_environ({"AWS_ENDPOINT_URL": aws_env.url})
    session = boto3.Session(region_name=REGION)
    assert conn.available_api(config, runtime, session) == "codeconnections"


# -- the CLI --------------------------------------------------------------------------------


@pytest.fixture
def cli_stub(monkeypatch, stubbed):
    conns, stub = stubbed
    monkeypatch.setattr(conn.Connections, "open", classmethod(lambda cls, config, runtime: conns))
    # Time moves only when the command sleeps: the countdown does not depend on how fast this
    # machine is.
    clock = FakeClock()
    monkeypatch.setattr(conn, "wait_available", functools.partial(conn.wait_available, sleep=clock.sleep,
                                                                  clock=clock))
    return stub


def cli(root, *args):
    return CliRunner().invoke(main, ["--config", str(root / "mlcicd.yaml"), *args])


def test_connect_prints_the_handshake_steps_while_pending(tmp_path, cli_stub):
    write_config(tmp_path)
    expect_list(cli_stub)
    cli_stub.add_response("create_connection", {"ConnectionArn": ARN})
    expect_get(cli_stub, "PENDING")
    result = cli(tmp_path, "connect")
    assert result.exit_code == 0, result.output
    assert f"GitHub connection {NAME}: created, PENDING ({ARN})" in result.output
    assert f"https://{REGION}.console.aws.amazon.com/codesuite/settings/connections?region={REGION}" in result.output
    assert "'Update pending connection'" in result.output and "acme/ml-models" in result.output
    assert "mlcicd connect --wait" in result.output


def test_connect_wait_until_available(tmp_path, cli_stub):
    write_config(tmp_path)
    expect_list(cli_stub, api_connection())
    expect_get(cli_stub, "PENDING")
    expect_get(cli_stub, "AVAILABLE")
    result = cli(tmp_path, "connect", "--wait", "--poll-interval", "10", "--timeout", "30")
    assert result.exit_code == 0, result.output
    assert "PENDING: waiting for the handshake, 0:30 left" in result.output
    assert result.output.rstrip().endswith(f"GitHub connection {NAME}: AVAILABLE")


def test_connect_wait_timeout_exits_1(tmp_path, cli_stub):
    write_config(tmp_path)
    expect_list(cli_stub, api_connection())
    expect_get(cli_stub, "PENDING")
    expect_get(cli_stub, "PENDING")
    expect_get(cli_stub, "PENDING")
    result = cli(tmp_path, "connect", "--wait", "--poll-interval", "10", "--timeout", "20")
    assert result.exit_code == 1
    assert "still PENDING after 20 s" in result.output and "Traceback" not in result.output
    cli_stub.assert_no_pending_responses()  # polled at 0, 10 and on the deadline


def test_connect_against_an_endpoint_without_the_api_says_so_at_once(tmp_path, aws_env):
    """The emulator lacks CodeConnections: one retry, then the service and operation by name,
    not an HTML page."""
    write_config(tmp_path)
    result = cli(tmp_path, "connect")
    assert result.exit_code == 1, result.output
    assert "codeconnections ListConnections answered HTTP 500 (500 Internal Server Error) with no AWS error code" \
        in result.output
    assert f"the endpoint {aws_env.url} may not implement codeconnections:ListConnections" in result.output
    assert "<html" not in result.output and "Traceback" not in result.output


def test_connect_error_status_exits_1(tmp_path, cli_stub):
    write_config(tmp_path)
    expect_list(cli_stub, api_connection(status="ERROR"))
    result = cli(tmp_path, "connect")
    assert result.exit_code == 1
    assert "is in ERROR status" in result.output and "run `mlcicd connect` again" in result.output


# -- the gate before planning or applying the pipeline --------------------------------------


def test_plan_devops_refused_in_ci_while_pending(tmp_path, cli_stub):
    write_config(tmp_path)
    conn.record(load(tmp_path / "mlcicd.yaml"), conn.Connection(ARN, NAME, "PENDING", "GitHub", ACCOUNT),
                "codeconnections")
    expect_get(cli_stub, "PENDING")
    result = cli(tmp_path, "plan", "devops")
    assert result.exit_code == 1
    assert f"GitHub connection {ARN} is PENDING" in result.output
    assert "never gets its webhook" in result.output and "--allow-pending-connection" in result.output


def test_apply_devops_refused_in_ci_without_any_connection(tmp_path, cli_stub):
    write_config(tmp_path)
    result = cli(tmp_path, "apply", "devops", "--auto-approve")
    assert result.exit_code == 1
    assert "no GitHub connection is recorded" in result.output


@pytest.mark.parametrize("ci", [True, False])
def test_gate_warns_outside_ci_or_when_allowed(config, cli_stub, ci):
    runtime = Runtime(ci=ci)
    expect_get(cli_stub, "PENDING")
    conn.record(config, conn.Connection(ARN, NAME, "PENDING", "GitHub", ACCOUNT), "codeconnections")
    warning = conn.pipeline_gate(config, runtime, config.env("devops"), allow_pending=ci)
    assert warning and "is PENDING" in warning


def test_gate_passes_when_available_and_ignores_other_envs(config, cli_stub):
    conn.record(config, conn.Connection(ARN, NAME, "AVAILABLE", "GitHub", ACCOUNT), "codeconnections")
    expect_get(cli_stub, "AVAILABLE")
    assert conn.pipeline_gate(config, Runtime(ci=True), config.env("devops"), allow_pending=False) is None
    # staging does not receive connection_arn: no AWS call at all (the stub would reject one).
    assert conn.pipeline_gate(config, Runtime(ci=True), config.env("staging"), allow_pending=False) is None
