"""The Terraform state backend in the devops account: a hardened S3 bucket and, when
`state.lock: dynamodb`, a lock table.

Each hardening item is explicit, with the items it depends on (backend_items): the bucket and
its settings (backend_bucket), the KMS key (backend_kms), the lock table (backend_lock). Two
questions kept apart, over the same list: `StateBackend.inspect()` answers "does it need
bootstrap?" through read-only clients and lists every item, marking the ones it could not
check because an item they depend on is not in place; `StateBackend.bootstrap()` checks each
item the same way and runs its idempotent repair when it is missing, reading it back after.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property
from typing import TYPE_CHECKING

from mlcicd import aws, backend_bucket, backend_kms, backend_lock
from mlcicd.backend_items import (
    ERROR,
    MISSING,
    NOT_CHECKED,
    OK,
    Clients,
    Context,
    Finding,
    Item,
    StateBackendError,
)
from mlcicd.errors import AwsError, MlcicdError

if TYPE_CHECKING:
    from mlcicd.config import Config
    from mlcicd.runtime import Runtime

CREATED, REPAIRED, UNCHANGED, FAILED, SKIPPED = "created", "repaired", "unchanged", "failed", "skipped"
# Failures of the session, not of an item: every later call would fail (or wait) the same way.
_SESSION_ERRORS = (aws.AwsCredentialsError, aws.AwsEndpointError, aws.AwsThrottled)


def state_kms_key_id(config: Config) -> str:
    """What Terraform's S3 backend must get as `kms_key_id` so state objects use the bucket's KMS
    key: with `encrypt = true` alone it asks for SSE-S3 (AES256) on every write, which overrides
    the bucket's default encryption."""
    if config.state.kms_key == "aws-managed":
        return "alias/aws/s3"
    return backend_kms.key_id(config)


def items(config: Config) -> tuple[Item, ...]:
    """Every item for this config, each after the items it depends on."""
    bucket, settings = backend_bucket.items(config)
    ordered = (bucket, *backend_kms.items(config), *settings, *backend_lock.items(config))
    seen: set[str] = set()
    for item in ordered:
        unknown = [d for d in item.depends_on + item.repair_needs if d not in seen]
        if unknown:
            raise ValueError(f"{item.name} depends on {unknown}, which are not listed before it")
        seen.add(item.name)
    return ordered


class BackendNotReady(MlcicdError):
    """Items are missing (bootstrap creates them) or need a person (each one's error says what)."""

    def __init__(self, findings: tuple[Finding, ...]) -> None:
        self.findings = findings
        missing = [f.item for f in findings if f.state == MISSING]
        errors = [f for f in findings if f.state == ERROR]
        unchecked = [f.item for f in findings if f.state == NOT_CHECKED]
        lines = [f"state backend needs bootstrap: {', '.join(missing)}" if missing else "state backend not ready"]
        lines += [f"  {f.item}: {f.detail}" for f in errors]
        if unchecked:
            lines.append(f"  not checked, as they depend on the above: {', '.join(unchecked)}")
        hints = list(dict.fromkeys(f.error.hint for f in errors if f.error and f.error.hint))
        if missing or not hints:
            hints.append("run `mlcicd bootstrap`" if not errors else "then run `mlcicd bootstrap`")
        super().__init__("\n".join(lines), hint="; ".join(hints))


@dataclass(frozen=True)
class Step:
    """What bootstrap did about one item."""

    item: str
    outcome: str  # CREATED, REPAIRED, UNCHANGED, FAILED or SKIPPED
    detail: str  # what was wrong before; for FAILED and SKIPPED, why


@dataclass(frozen=True)
class Status:
    bucket: str
    findings: tuple[Finding, ...]

    @property
    def ready(self) -> bool:
        return all(f.ok for f in self.findings)

    @property
    def to_repair(self) -> tuple[Finding, ...]:
        """What bootstrap would create, repair or probe."""
        return tuple(f for f in self.findings if f.state == MISSING or f.probe)

    def finding(self, item: str) -> Finding:
        return next(f for f in self.findings if f.item == item)


@dataclass
class StateBackend:
    """The state bucket (and lock table) of one config, reached through given clients."""

    config: Config
    clients: Clients
    account_id: str

    @classmethod
    def open(cls, config: Config, runtime: Runtime, *, read_only: bool = False) -> StateBackend:
        """Clients in the devops account (refusing credentials for any other account);
        `read_only` gives clients that can only read, for `bootstrap --check`."""
        session = aws.devops_session(config, runtime)

        def make(service: str):
            return aws.client(config, runtime, service, boto_session=session)

        dynamodb = make("dynamodb") if config.state.lock == "dynamodb" else None
        clients = Clients(make("s3"), make("kms"), dynamodb)
        return cls(config, clients.read_only() if read_only else clients, config.accounts["devops"])

    @property
    def bucket(self) -> str:
        return self.config.state.bucket

    @cached_property
    def _reads(self) -> Clients:
        """What every check gets: the clients' read operations only."""
        return self.clients.read_only()

    def inspect(self) -> Status:
        """Every item's finding, changing nothing."""
        findings: dict[str, Finding] = {}
        for item in items(self.config):
            findings[item.name] = self._check(item, findings)
        return Status(self.bucket, tuple(findings.values()))

    def bootstrap(self, on_step: Callable[[Step], None] | None = None) -> tuple[Step, ...]:
        """Create or repair every item that is missing, verifying each by reading it back; an
        item that needs a person is reported and the items depending on it skipped, and
        BackendNotReady raised at the end. Idempotent."""
        findings: dict[str, Finding] = {}
        created: set[str] = set()
        steps = []
        for item in items(self.config):
            before = after = self._check(item, findings)
            if item.repair and (before.state == MISSING or before.probe):
                after = self._ensure(item, before, findings, created)
            findings[item.name] = after
            outcome = _outcome(item, before, after, created)
            step = Step(item.name, outcome, after.detail if outcome in (FAILED, SKIPPED) else before.detail)
            steps.append(step)
            if on_step:
                on_step(step)
        status = Status(self.bucket, tuple(findings.values()))
        if not status.ready:
            raise BackendNotReady(status.findings)
        return tuple(steps)

    def _ensure(self, item: Item, before: Finding, findings: dict[str, Finding], created: set[str]) -> Finding:
        """Repair one item and read it back. A dependency still missing here is one bootstrap
        could not create either: the item waits for it."""
        waits = [name for name in item.depends_on + item.repair_needs if not findings[name].ok]
        if waits:
            return replace(before, detail=f"waits for {waits[0]}")
        item.repair(self._context(item, findings, self.clients, item.repair_needs))
        after = self._check(item, findings)
        if after.error:
            raise after.error
        if not after.ok:
            raise StateBackendError(f"{item.name}: still not in place after repair: {after.detail}")
        if before.state == MISSING and not item.of:
            created.add(item.name)
        return after

    def _context(self, item: Item, findings: dict[str, Finding], clients: Clients,
                 extra: tuple[str, ...] = ()) -> Context:
        return Context(item.name, self.config, self.account_id, clients,
                       {name: findings[name] for name in item.depends_on + extra})

    def _check(self, item: Item, findings: dict[str, Finding]) -> Finding:
        """One item's finding, from its dependencies' findings or its check (read-only)."""
        for name in item.depends_on:
            dep = findings[name]
            if dep.state in (ERROR, NOT_CHECKED):
                cause = dep.cause or name
                return Finding(item.name, NOT_CHECKED, f"not checked because of {cause}", cause=cause)
        for name in item.depends_on:
            if findings[name].state == MISSING:  # only while inspecting: bootstrap creates it first
                if item.repair is None:
                    return Finding(item.name, NOT_CHECKED, f"not checked until {name} exists")
                return Finding(item.name, MISSING, "missing" if name == item.of else f"waits for {name}")
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return item.check(self._context(item, findings, self._reads))
        except (AwsError, ClientError, BotoCoreError) as exc:
            error = aws.translate(exc, f"checking {item.name}", self.bucket)
            if isinstance(error, _SESSION_ERRORS):
                if error is exc:
                    raise
                raise error from exc
            return Finding(item.name, ERROR, error.message, error=error)


def _outcome(item: Item, before: Finding, after: Finding, created: set[str]) -> str:
    if after.state == ERROR:
        return FAILED
    if after.state in (NOT_CHECKED, MISSING):
        return SKIPPED
    if item.repair is None:
        return UNCHANGED
    # Settings that come with a resource created in this run count as created with it.
    if item.name in created or item.of in created:
        return CREATED
    return REPAIRED if before.state != OK else UNCHANGED
