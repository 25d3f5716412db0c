"""The GitHub connection the pipeline's Source stage uses, in the devops account.

AWS creates a connection PENDING; only a person in the console can complete the GitHub
handshake that makes it AVAILABLE, and a pipeline created against a PENDING connection never
gets its webhook. So this module finds or creates the connection, records its ARN where
rendering picks it up (.mlcicd/connection.json), waits for AVAILABLE on request, and offers the
check `plan devops` / `apply devops` run before touching the pipeline.

The CodeConnections API is used; where a region does not serve it yet, CodeStar Connections
(same operations, same shapes) is used instead.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlcicd import aws, render
from mlcicd.errors import AwsError

if TYPE_CHECKING:
    from mlcicd.config import Config, Environment
    from mlcicd.runtime import Runtime

API = "codeconnections"
FALLBACK_API = "codestar-connections"
PROVIDER = "GitHub"
AVAILABLE, PENDING, ERROR = "AVAILABLE", "PENDING", "ERROR"
POLL_SECONDS = 10.0


class GitHubConnectionError(AwsError):
    """The GitHub connection is missing, ambiguous, failed or not ready."""


class ConnectionNotFound(GitHubConnectionError):
    def __init__(self, arn: str) -> None:
        self.arn = arn
        super().__init__(f"GitHub connection {arn} does not exist in this account and region",
                         hint="fix or remove repository.connection_arn in mlcicd.yaml")


class ConnectionNameCollision(GitHubConnectionError):
    """More than one connection, or one of another provider, carries the configured name."""

    def __init__(self, name: str, found: tuple[Connection, ...]) -> None:
        self.name, self.found = name, found
        listed = "; ".join(f"{c.arn} ({c.provider}, {c.status})" for c in found)
        super().__init__(f"connection name {name!r} is ambiguous: {listed}",
                         hint="pick one with repository.connection_arn, or set repository.connection_name "
                              "to an unused name")


class ConnectionFailed(GitHubConnectionError):
    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        super().__init__(f"GitHub connection {connection.name} ({connection.arn}) is in ERROR status",
                         hint="delete it in the console (Developer Tools > Settings > Connections) "
                              "and run `mlcicd connect` again")


class ConnectionTimeout(GitHubConnectionError):
    def __init__(self, connection: Connection, timeout: float, url: str) -> None:
        self.connection, self.timeout = connection, timeout
        super().__init__(f"GitHub connection {connection.name} still {connection.status} after "
                         f"{timeout:.0f} s", hint=f"complete the handshake at {url}, then run "
                                                  "`mlcicd connect --wait` again")


class ConnectionNotAvailable(GitHubConnectionError):
    """plan/apply of the pipeline refused in CI while the connection is not AVAILABLE."""


@dataclass(frozen=True)
class Connection:
    arn: str
    name: str
    status: str
    provider: str
    owner_account: str

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> Connection:
        return cls(data["ConnectionArn"], data.get("ConnectionName", ""), data.get("ConnectionStatus", ""),
                   data.get("ProviderType", ""), data.get("OwnerAccountId", ""))


def console_url(region: str) -> str:
    """Where a person completes a pending connection (Developer Tools > Settings > Connections)."""
    return f"https://{region}.console.aws.amazon.com/codesuite/settings/connections?region={region}"


def handshake_steps(connection: Connection, config: Config) -> list[str]:
    """The exact console steps that turn a PENDING connection AVAILABLE."""
    owner = config.repository.name.split("/")[0]
    return [
        f"Sign in to the AWS console in the devops account {config.accounts['devops']} and open "
        f"{console_url(config.region)}",
        f"Choose the connection {connection.name!r}, then 'Update pending connection'.",
        f"Sign in to GitHub if asked and authorize 'AWS Connector for GitHub'; under GitHub Apps choose "
        f"the installation for {owner!r} (or 'Install a new app' and give it access to "
        f"{config.repository.name}).",
        "Choose 'Connect'. The status turns to Available.",
    ]


class Connections:
    """Connection operations through one API client (CodeConnections or CodeStar Connections)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    @classmethod
    def open(cls, config: Config, runtime: Runtime) -> Connections:
        session = aws.devops_session(config, runtime)
        api = available_api(config, runtime, session)
        return cls(aws.client(config, runtime, api, boto_session=session))

    @property
    def api(self) -> str:
        return self.client.meta.service_model.service_name

    def get(self, arn: str) -> Connection | None:
        from botocore.exceptions import ClientError

        try:
            return Connection.from_api(self.client.get_connection(ConnectionArn=arn)["Connection"])
        except ClientError as exc:
            if aws.error_code(exc) == "ResourceNotFoundException":
                return None
            raise aws.translate(exc, "reading the GitHub connection", arn) from exc

    def named(self, name: str) -> tuple[Connection, ...]:
        found: list[Connection] = []
        token: dict[str, str] = {}
        while True:  # botocore ships no paginator for this operation
            with aws.errors("listing connections"):
                page = self.client.list_connections(**token)
            found += [Connection.from_api(c) for c in page["Connections"] if c.get("ConnectionName") == name]
            if not page.get("NextToken"):
                return tuple(found)
            token = {"NextToken": page["NextToken"]}

    def create(self, name: str, project: str) -> Connection:
        with aws.errors("creating the GitHub connection", name):
            arn = self.client.create_connection(
                ProviderType=PROVIDER, ConnectionName=name,
                Tags=[{"Key": "mlcicd:project", "Value": project}])["ConnectionArn"]
        created = self.get(arn)
        return created or Connection(arn, name, PENDING, PROVIDER, "")


def available_api(config: Config, runtime: Runtime, session: Any) -> str:
    """CodeConnections where its endpoint answers at all (any HTTP reply, even an error, counts);
    CodeStar Connections where it cannot be reached, as in regions that do not serve it yet."""
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

    probe = aws.client(config, runtime, API, boto_session=session, max_attempts=1)
    try:
        probe.list_connections(MaxResults=1)
    except EndpointConnectionError:
        return FALLBACK_API
    except (ClientError, BotoCoreError):
        pass
    return API


def record(config: Config, connection: Connection, api: str) -> bool:
    """Write .mlcicd/connection.json, the file rendering reads the ARN from. Returns whether it changed."""
    from mlcicd.errors import WorkdirNotWritable
    from mlcicd.fsutil import atomic_write

    data = {"generated_by": "mlcicd connect", "arn": connection.arn, "name": connection.name,
            "provider": connection.provider, "api": api, "region": config.region,
            "account": config.accounts["devops"]}
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    path = render.real_dir(config, config.workdir) / render.CONNECTION_RECORD
    try:
        return atomic_write(path, text.encode())
    except OSError as exc:
        raise WorkdirNotWritable(path, exc.strerror or str(exc)) from None


@dataclass(frozen=True)
class Found:
    connection: Connection
    created: bool
    recorded: bool  # .mlcicd/connection.json was written (or rewritten)


def ensure(config: Config, conns: Connections) -> Found:
    """The configured connection: by repository.connection_arn, else the recorded ARN, else by
    name; created (PENDING) when none has the name. Records the ARN unless the config pins it."""
    pinned = config.repository.connection_arn
    if pinned:
        found = conns.get(pinned)
        if found is None:
            raise ConnectionNotFound(pinned)
        return Found(found, created=False, recorded=False)
    name = config.repository.connection_name
    previous = render.connection_record(config).get("arn")
    found = conns.get(str(previous)) if previous else None
    created = False
    if found is None or found.name != name:
        matches = conns.named(name)
        if len(matches) > 1 or (matches and matches[0].provider != PROVIDER):
            raise ConnectionNameCollision(name, matches)
        created = not matches
        found = matches[0] if matches else conns.create(name, config.project)
    return Found(found, created, record(config, found, conns.api))


def raise_for_error(connection: Connection) -> Connection:
    if connection.status == ERROR:
        raise ConnectionFailed(connection)
    return connection


def wait_available(conns: Connections, connection: Connection, timeout: float, url: str, *,
                   interval: float = POLL_SECONDS, tick: float = 1.0,
                   sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
                   on_tick: Callable[[Connection, float, bool], None] | None = None) -> Connection:
    """Poll every `interval` seconds until AVAILABLE; ERROR raises ConnectionFailed, and the
    deadline ConnectionTimeout. `on_tick(connection, seconds_left, just_polled)` runs every
    `tick` seconds so a caller can show a countdown. `sleep`/`clock` are injectable for tests."""
    deadline = clock() + timeout
    while True:
        current = conns.get(connection.arn)
        if current is None:
            raise GitHubConnectionError(f"GitHub connection {connection.arn} was deleted while waiting")
        connection = raise_for_error(current)
        if connection.status == AVAILABLE:
            return connection
        if clock() >= deadline:
            raise ConnectionTimeout(connection, timeout, url)
        # The last poll falls on the deadline itself, so a handshake finished just in time counts.
        polled, next_poll = True, min(clock() + interval, deadline)
        while (now := clock()) < next_poll:
            if on_tick:
                on_tick(connection, deadline - now, polled)
            polled = False
            sleep(min(tick, next_poll - now))


def pipeline_gate(config: Config, runtime: Runtime, env: Environment, allow_pending: bool) -> str | None:
    """Before plan/apply of an env that receives connection_arn: None when the connection is
    AVAILABLE, else a warning to show. In CI, refuses (ConnectionNotAvailable) unless
    `allow_pending`, because a pipeline created against a PENDING connection never gets its webhook."""
    if "connection_arn" not in render.variables(config, env):
        return None
    arn = render.recorded_connection_arn(config)
    if not arn:
        problem = "no GitHub connection is recorded for the pipeline"
    else:
        found = Connections.open(config, runtime).get(arn)
        if found is not None and found.status == AVAILABLE:
            return None
        problem = f"GitHub connection {arn} is {found.status if found else 'missing'}"
    message = f"{problem}; a pipeline created before the connection is AVAILABLE never gets its webhook"
    if runtime.ci and not allow_pending:
        raise ConnectionNotAvailable(message, hint="run `mlcicd connect --wait` and complete the handshake, "
                                                   "or pass --allow-pending-connection")
    return message
