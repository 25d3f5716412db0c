"""The shape every hardening item of the state backend has, and the read-only view its check gets.

An item is one thing mlcicd keeps in place (the bucket, its versioning, the KMS key, the lock
table, ...). It names the resource it is a setting `of` and any other items it `needs`; its
`check` reads AWS and returns a Finding, its `repair` (None for items mlcicd only reports)
writes. A check receives clients wrapped in ReadOnly, so it cannot send a write even by mistake;
what a check learns that later items need (the key's ARN) travels in `Finding.found`, never in
hidden state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlcicd import aws
from mlcicd.errors import AwsError

if TYPE_CHECKING:
    from mlcicd.config import Config

OK, MISSING, ERROR, NOT_CHECKED = "ok", "missing", "error", "not checked"
_READ_PREFIXES = ("Get", "Head", "Describe", "List")


class StateBackendError(AwsError):
    """The state backend cannot be set up as configured."""


class UnrepairableItem(StateBackendError):
    """A resource exists but is not what mlcicd needs, and bootstrap will not change it: doing
    so would lose data or overrule a person's decision."""

    def __init__(self, item: str, detail: str, hint: str) -> None:
        self.item, self.detail = item, detail
        super().__init__(detail, hint=hint)  # shown beside the item's name


class ReadOnlyViolation(StateBackendError):
    """Code holding a read-only client tried to call an operation that is not a read."""

    def __init__(self, service: str, method: str) -> None:
        self.service, self.method = service, method
        super().__init__(f"refused {service}.{method}: checking the state backend never writes")


@dataclass(frozen=True)
class Finding:
    """What checking one item found: OK, MISSING (bootstrap creates or repairs it), ERROR (a
    person must act; `error` says what) or NOT_CHECKED (an item it depends on is not in place)."""

    item: str
    state: str
    detail: str = ""
    error: AwsError | None = None
    # An ERROR that bootstrap may still act on, because only its repair can tell the cause.
    probe: bool = False
    cause: str = ""  # NOT_CHECKED: the item in error that it (or what it depends on) waits for
    found: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.state == OK


def is_read(operation: Any) -> bool:
    """Whether a botocore OperationModel only reads: AWS names reads Get/Head/Describe/List,
    and a REST API (S3) also sends them as GET or HEAD."""
    if not operation.name.startswith(_READ_PREFIXES):
        return False
    if operation.metadata.get("protocol", "").startswith("rest"):
        return operation.http.get("method") in ("GET", "HEAD")
    return True


class ReadOnly:
    """The read operations of a boto3 client; any other attribute raises ReadOnlyViolation."""

    def __init__(self, client: Any) -> None:
        model = client.meta.service_model
        self._client = client
        self._service = model.service_name
        self._reads = frozenset(method for method, op in client.meta.method_to_api_mapping.items()
                                if is_read(model.operation_model(op)))

    def __getattr__(self, name: str) -> Any:
        if name in self._reads:
            return getattr(self._client, name)
        raise ReadOnlyViolation(self._service, name)


def read_only(client: Any) -> Any:
    return client if client is None or isinstance(client, ReadOnly) else ReadOnly(client)


@dataclass(frozen=True)
class Clients:
    """The devops-account clients the items use (dynamodb only with `state.lock: dynamodb`)."""

    s3: Any
    kms: Any = None
    dynamodb: Any = None

    def read_only(self) -> Clients:
        return Clients(read_only(self.s3), read_only(self.kms), read_only(self.dynamodb))


@dataclass(frozen=True)
class Context:
    """What one item's check or repair works with: the config, the clients (read-only for a
    check) and the findings of the items it depends on."""

    item: str
    config: Config
    account_id: str
    clients: Clients
    deps: Mapping[str, Finding]

    @property
    def bucket(self) -> str:
        return self.config.state.bucket

    def key(self) -> Mapping[str, Any] | None:
        """The state KMS key's metadata (from the kms-key item); None for the AWS-managed key."""
        dep = self.deps.get("kms-key")
        return dep.found if dep else None

    def ok(self, **found: Any) -> Finding:
        return Finding(self.item, OK, found=found)

    def missing(self, detail: str = "missing") -> Finding:
        return Finding(self.item, MISSING, detail)

    def verdict(self, problem: str) -> Finding:
        """OK when `problem` is empty, else MISSING with it as the detail."""
        return self.missing(problem) if problem else self.ok()


@dataclass(frozen=True)
class Item:
    name: str
    check: Callable[[Context], Finding]
    repair: Callable[[Context], None] | None  # None: reported, never changed by bootstrap
    of: str = ""  # the resource this item is a setting of; "" for a resource itself
    needs: tuple[str, ...] = ()  # other items that must be in place to check (and repair) it
    repair_needs: tuple[str, ...] = ()  # items that must be in place only to repair it

    @property
    def depends_on(self) -> tuple[str, ...]:
        return ((self.of,) if self.of else ()) + self.needs


def call(client: Any, method: str, action: str, resource: str | None = None, **kwargs: Any) -> Any:
    """One AWS call; a botocore failure leaves as a specific AwsError."""
    with aws.errors(action, resource=resource):
        return getattr(client, method)(**kwargs)


def optional(client: Any, method: str, absent_code: str, action: str, resource: str | None = None,
             **kwargs: Any) -> dict[str, Any] | None:
    """A setting, or None when AWS answers that it was never set (`absent_code`)."""
    from botocore.exceptions import ClientError

    with aws.errors(action, resource=resource):
        try:
            return getattr(client, method)(**kwargs)
        except ClientError as exc:
            if aws.error_code(exc) == absent_code:
                return None
            raise
