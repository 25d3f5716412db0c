"""The Terraform state backend in the devops account: a hardened S3 bucket and, when
`state.lock: dynamodb`, a lock table.

Two questions kept apart: `StateBackend.inspect()` answers "does it need bootstrap?" without
changing anything; `StateBackend.bootstrap()` runs one idempotent ensure step per hardening
item and reports each as created, repaired or unchanged. Both walk the same list of items, so
what `--check` names is exactly what `bootstrap` would fix.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlcicd import aws
from mlcicd.errors import AwsError, MlcicdError

if TYPE_CHECKING:
    from mlcicd.config import Config
    from mlcicd.runtime import Runtime

CREATED, REPAIRED, UNCHANGED = "created", "repaired", "unchanged"
TLS_SID = "EnforcedTLS"
_PAB_FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
_MISSING = "missing"


class StateBackendError(AwsError):
    """The state backend cannot be set up as configured."""


class BucketNameTaken(StateBackendError):
    def __init__(self, bucket: str) -> None:
        self.bucket = bucket
        super().__init__(f"state bucket name {bucket!r} is taken by another AWS account",
                         hint="bucket names are global; set state.bucket in mlcicd.yaml to another name")


class BucketAccessDenied(StateBackendError):
    def __init__(self, bucket: str, detail: str) -> None:
        self.bucket = bucket
        self.detail = detail
        super().__init__(f"access to state bucket {bucket!r} denied: {detail}",
                         hint="use devops-account credentials allowed s3:* on the bucket (or a profile: AWS_PROFILE)")


class BucketRegionMismatch(StateBackendError):
    def __init__(self, bucket: str, actual: str, expected: str) -> None:
        self.bucket, self.actual, self.expected = bucket, actual, expected
        super().__init__(f"state bucket {bucket!r} is in {actual}, but the config's region is {expected}",
                         hint="set region to the bucket's region, or state.bucket to a bucket in " + expected)


class LoggingBucketNotReady(StateBackendError):
    def __init__(self, bucket: str, detail: str) -> None:
        self.bucket, self.detail = bucket, detail
        super().__init__(f"access logging bucket {bucket!r} cannot receive logs: {detail}",
                         hint="create it in the same region and let logging.s3.amazonaws.com s3:PutObject into it")


class UnrepairableItem(StateBackendError):
    """A resource exists but is not what mlcicd needs, and changing it would lose data."""

    def __init__(self, item: str, detail: str, hint: str) -> None:
        self.item, self.detail = item, detail
        super().__init__(f"{item}: {detail}", hint=hint)


class BackendNotReady(MlcicdError):
    """`bootstrap --check` found hardening items missing or wrong."""

    def __init__(self, missing: tuple[Check, ...]) -> None:
        self.missing = missing
        names = ", ".join(c.item for c in missing)
        super().__init__(f"state backend needs bootstrap: {names}", hint="run `mlcicd bootstrap`")


@dataclass(frozen=True)
class Check:
    item: str
    ok: bool
    detail: str  # what is wrong; empty when in place


@dataclass(frozen=True)
class Step:
    item: str
    outcome: str  # CREATED, REPAIRED or UNCHANGED
    detail: str


@dataclass(frozen=True)
class Status:
    bucket: str
    checks: tuple[Check, ...]

    @property
    def missing(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.ok)

    @property
    def needs_bootstrap(self) -> bool:
        return bool(self.missing)


@dataclass(frozen=True)
class _Item:
    name: str
    group: str  # the resource it belongs to: bucket, kms-key or lock-table
    check: Callable[[], str]  # "" when in place, else what is wrong
    fix: Callable[[], None]


def key_alias(config: Config) -> str:
    """The alias that finds the state key again on later runs (kms_key: create)."""
    return f"alias/{config.project}-tfstate"


def state_kms_key_id(config: Config) -> str:
    """What Terraform's S3 backend must get as `kms_key_id` so state objects use the bucket's KMS
    key: with `encrypt = true` alone it asks for SSE-S3 (AES256) on every write, which overrides
    the bucket's default encryption."""
    if config.state.kms_key == "create":
        return key_alias(config)
    if config.state.kms_key == "aws-managed":
        return "alias/aws/s3"
    return config.state.kms_key


def tls_statement(bucket: str, region: str) -> dict[str, Any]:
    """Deny every request to the bucket and its objects that does not use TLS."""
    arn = f"arn:{aws.partition(region)}:s3:::{bucket}"
    return {
        "Sid": TLS_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [arn, f"{arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def merge_tls_statement(policy: dict[str, Any] | None, bucket: str, region: str) -> dict[str, Any]:
    """`policy` with its EnforcedTLS statement replaced by ours (added when absent); every
    other statement is kept as it is."""
    policy = dict(policy or {"Version": "2012-10-17"})
    statements = policy.get("Statement") or []
    statements = [statements] if isinstance(statements, dict) else list(statements)
    policy["Statement"] = [s for s in statements if s.get("Sid") != TLS_SID] + [tls_statement(bucket, region)]
    return policy


def _normal(statement: dict[str, Any]) -> dict[str, Any]:
    def as_list(value: Any) -> list[str]:
        return sorted([value] if isinstance(value, str) else list(value or []))

    principal = statement.get("Principal")
    if isinstance(principal, dict) and principal.get("AWS") == "*":
        principal = "*"
    return {"Effect": statement.get("Effect"), "Principal": principal,
            "Action": as_list(statement.get("Action")), "Resource": as_list(statement.get("Resource")),
            "Condition": statement.get("Condition")}


def has_tls_statement(policy: dict[str, Any] | None, bucket: str, region: str) -> bool:
    statements = (policy or {}).get("Statement") or []
    statements = [statements] if isinstance(statements, dict) else statements
    want = _normal(tls_statement(bucket, region))
    return any(s.get("Sid") == TLS_SID and _normal(s) == want for s in statements)


@dataclass
class StateBackend:
    """The state bucket (and lock table) of one config, reached through given clients."""

    config: Config
    s3: Any
    kms: Any
    dynamodb: Any | None
    account_id: str
    _exists: dict[str, bool] = field(default_factory=dict)
    _key: dict[str, Any] | None = None

    @classmethod
    def open(cls, config: Config, runtime: Runtime) -> StateBackend:
        """Clients in the devops account; refuses credentials for any other account."""
        session = aws.devops_session(config, runtime)

        def make(service: str) -> Any:
            return aws.client(config, runtime, service, boto_session=session)

        dynamodb = make("dynamodb") if config.state.lock == "dynamodb" else None
        return cls(config, make("s3"), make("kms"), dynamodb, config.accounts["devops"])

    @property
    def bucket(self) -> str:
        return self.config.state.bucket

    def inspect(self) -> Status:
        """What is missing or wrong, changing nothing."""
        checks = []
        for item in self._items():
            problem = self._problem(item)
            checks.append(Check(item.name, not problem, problem))
        return Status(self.bucket, tuple(checks))

    def bootstrap(self, on_step: Callable[[Step], None] | None = None) -> tuple[Step, ...]:
        """Create or repair every item, verifying each by reading it back. Idempotent."""
        fresh: set[str] = set()
        steps = []
        for item in self._items(probe=True):
            problem = self._problem(item)
            if problem:
                item.fix()
                if item.name == item.group:
                    fresh.add(item.group)
                left = self._problem(item)
                if left:
                    raise StateBackendError(f"{item.name}: still not in place after repair: {left}")
            # Settings that come with a resource created in this run count as created with it.
            outcome = CREATED if item.group in fresh else REPAIRED if problem else UNCHANGED
            step = Step(item.name, outcome, problem)
            steps.append(step)
            if on_step:
                on_step(step)
        return tuple(steps)

    def _problem(self, item: _Item) -> str:
        # A setting of a resource that does not exist is missing; no need to ask AWS.
        if item.name != item.group and not self._exists.get(item.group):
            return _MISSING
        return item.check()

    def _items(self, probe: bool = False) -> list[_Item]:
        self._exists.clear()
        self._key = None
        state = self.config.state
        items = [_Item("bucket", "bucket", lambda: self._check_bucket(probe), self._create_bucket)]
        if state.kms_key == "create":
            items += [_Item("kms-key", "kms-key", self._check_key, self._create_key),
                      _Item("kms-key-rotation", "kms-key", self._check_rotation, self._fix_rotation)]
        items += [
            _Item("encryption", "bucket", self._check_encryption, self._fix_encryption),
            _Item("versioning", "bucket", self._check_versioning, self._fix_versioning),
            _Item("public-access-block", "bucket", self._check_pab, self._fix_pab),
            _Item("ownership-controls", "bucket", self._check_ownership, self._fix_ownership),
        ]
        if state.tls_policy:
            items.append(_Item("tls-policy", "bucket", self._check_policy, self._fix_policy))
        if state.logging_bucket:
            items.append(_Item("access-logging", "bucket", self._check_logging, self._fix_logging))
        if state.lock == "dynamodb":
            items += [
                _Item("lock-table", "lock-table", self._check_table, self._create_table),
                _Item("lock-table-billing", "lock-table", self._check_billing, self._fix_billing),
                _Item("lock-table-encryption", "lock-table", self._check_table_sse, self._fix_table_sse),
                _Item("lock-table-pitr", "lock-table", self._check_pitr, self._fix_pitr),
            ]
        return items

    # -- bucket ---------------------------------------------------------------------------

    def _s3(self, action: str, call: str, **kwargs: Any) -> Any:
        with aws.errors(action, resource=self.bucket):
            return getattr(self.s3, call)(Bucket=self.bucket, **kwargs)

    def _check_bucket(self, probe: bool) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            head = self.s3.head_bucket(Bucket=self.bucket, ExpectedBucketOwner=self.account_id)
        except ClientError as exc:
            code = aws.error_code(exc)
            if code in ("404", "NoSuchBucket"):
                self._exists["bucket"] = False
                return _MISSING
            if code in ("403", "AccessDenied"):
                if probe:
                    self._create_bucket()  # raises the specific reason
                raise BucketAccessDenied(self.bucket, "it belongs to another account (name taken), "
                                         "or these credentials may not read it") from exc
            if code in ("301", "PermanentRedirect"):
                raise BucketRegionMismatch(self.bucket, _region_of(exc.response), self.config.region) from exc
            raise aws.translate(exc, "reading the state bucket", self.bucket) from exc
        except BotoCoreError as exc:
            raise aws.translate(exc, "reading the state bucket", self.bucket) from exc
        actual = _region_of(head)
        if actual and actual != self.config.region:
            raise BucketRegionMismatch(self.bucket, actual, self.config.region)
        self._exists["bucket"] = True
        return ""

    def _create_bucket(self) -> None:
        from botocore.exceptions import ClientError

        kwargs: dict[str, Any] = {"ObjectOwnership": "BucketOwnerEnforced"}
        if self.config.region != "us-east-1":  # us-east-1 rejects an explicit constraint
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.config.region}
        try:
            self.s3.create_bucket(Bucket=self.bucket, **kwargs)
        except ClientError as exc:
            code = aws.error_code(exc)
            if code == "BucketAlreadyExists":
                raise BucketNameTaken(self.bucket) from exc
            if code == "BucketAlreadyOwnedByYou":
                raise BucketAccessDenied(self.bucket, "the bucket is this account's, but these "
                                         "credentials may not read it (s3:ListBucket)") from exc
            if code in ("AccessDenied", "403"):
                raise BucketAccessDenied(self.bucket, "not allowed to create it (s3:CreateBucket)") from exc
            raise aws.translate(exc, "creating the state bucket", self.bucket) from exc
        self._exists["bucket"] = True

    def _check_versioning(self) -> str:
        status = self._s3("reading bucket versioning", "get_bucket_versioning").get("Status")
        return "" if status == "Enabled" else f"versioning is {status or 'off'}"

    def _fix_versioning(self) -> None:
        self._s3("enabling versioning", "put_bucket_versioning",
                 VersioningConfiguration={"Status": "Enabled"})

    def _check_pab(self) -> str:
        got = self._optional("get_public_access_block", "NoSuchPublicAccessBlockConfiguration")
        if got is None:
            return _MISSING
        off = [f for f in _PAB_FLAGS if not got["PublicAccessBlockConfiguration"].get(f)]
        return f"off: {', '.join(off)}" if off else ""

    def _fix_pab(self) -> None:
        self._s3("blocking public access", "put_public_access_block",
                 PublicAccessBlockConfiguration=dict.fromkeys(_PAB_FLAGS, True))

    def _check_ownership(self) -> str:
        got = self._optional("get_bucket_ownership_controls", "OwnershipControlsNotFoundError")
        rules = (got or {}).get("OwnershipControls", {}).get("Rules", [])
        have = rules[0].get("ObjectOwnership") if rules else None
        return "" if have == "BucketOwnerEnforced" else (f"object ownership is {have}" if have else _MISSING)

    def _fix_ownership(self) -> None:
        self._s3("enforcing bucket-owner object ownership", "put_bucket_ownership_controls",
                 OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})

    def _policy(self) -> dict[str, Any] | None:
        got = self._optional("get_bucket_policy", "NoSuchBucketPolicy")
        return json.loads(got["Policy"]) if got else None

    def _check_policy(self) -> str:
        policy = self._policy()
        if has_tls_statement(policy, self.bucket, self.config.region):
            return ""
        return _MISSING if policy is None else f"no {TLS_SID} deny statement in the bucket policy"

    def _fix_policy(self) -> None:
        policy = merge_tls_statement(self._policy(), self.bucket, self.config.region)
        self._s3("writing the bucket policy", "put_bucket_policy", Policy=json.dumps(policy))

    def _check_logging(self) -> str:
        enabled = self._s3("reading access logging", "get_bucket_logging").get("LoggingEnabled")
        if not enabled:
            return "off"
        want = (self.config.state.logging_bucket, f"{self.bucket}/")
        have = (enabled.get("TargetBucket"), enabled.get("TargetPrefix"))
        return "" if have == want else f"logs go to s3://{have[0]}/{have[1] or ''}"

    def _fix_logging(self) -> None:
        from botocore.exceptions import ClientError

        target = self.config.state.logging_bucket
        try:
            self.s3.put_bucket_logging(Bucket=self.bucket, BucketLoggingStatus={
                "LoggingEnabled": {"TargetBucket": target, "TargetPrefix": f"{self.bucket}/"}})
        except ClientError as exc:
            if aws.error_code(exc) in ("InvalidTargetBucketForLogging", "CrossLocationLoggingProhibitted",
                                       "CrossLocationLoggingProhibited"):
                raise LoggingBucketNotReady(str(target), exc.response["Error"].get("Message", "")) from exc
            raise aws.translate(exc, "enabling access logging", self.bucket) from exc

    def _optional(self, call: str, absent_code: str) -> dict[str, Any] | None:
        """A bucket setting, or None when AWS says it was never set."""
        from botocore.exceptions import ClientError

        try:
            return getattr(self.s3, call)(Bucket=self.bucket)
        except ClientError as exc:
            if aws.error_code(exc) == absent_code:
                return None
            raise aws.translate(exc, f"reading the state bucket ({call})", self.bucket) from exc

    # -- encryption -----------------------------------------------------------------------

    def key(self) -> dict[str, Any] | None:
        """The KMS key the bucket should use (its KeyMetadata); None for the AWS-managed key
        or when kms_key: create and the key does not exist yet."""
        wanted = self.config.state.kms_key
        if wanted == "aws-managed":
            return None
        if self._key is None:
            from botocore.exceptions import ClientError

            key_id = key_alias(self.config) if wanted == "create" else wanted
            try:
                self._key = self.kms.describe_key(KeyId=key_id)["KeyMetadata"]
            except ClientError as exc:
                if aws.error_code(exc) != "NotFoundException":
                    raise aws.translate(exc, "reading the state KMS key", key_id) from exc
                if wanted != "create":
                    raise UnrepairableItem("encryption", f"KMS key {wanted} not found",
                                           "fix state.kms_key, or use 'create' or 'aws-managed'") from exc
        return self._key

    def _check_key(self) -> str:
        key = self.key()
        if key is None:
            return _MISSING
        if key.get("KeyState") != "Enabled":
            raise UnrepairableItem("kms-key", f"{key_alias(self.config)} is {key.get('KeyState')}",
                                   "enable it (or cancel its deletion) in KMS, then run bootstrap again")
        self._exists["kms-key"] = True
        return ""

    def _create_key(self) -> None:
        with aws.errors("creating the state KMS key"):
            meta = self.kms.create_key(
                Description=f"{self.config.project}: Terraform state bucket {self.bucket}",
                KeyUsage="ENCRYPT_DECRYPT",
                Tags=[{"TagKey": "mlcicd:project", "TagValue": self.config.project}],
            )["KeyMetadata"]
            self.kms.create_alias(AliasName=key_alias(self.config), TargetKeyId=meta["KeyId"])
            self.kms.enable_key_rotation(KeyId=meta["KeyId"])
        self._key = None

    def _check_rotation(self) -> str:
        key = self.key()
        if key is None:
            return _MISSING
        with aws.errors("reading key rotation", key["Arn"]):
            on = self.kms.get_key_rotation_status(KeyId=key["KeyId"]).get("KeyRotationEnabled")
        return "" if on else "automatic key rotation is off"

    def _fix_rotation(self) -> None:
        with aws.errors("enabling key rotation", key_alias(self.config)):
            self.kms.enable_key_rotation(KeyId=self.key()["KeyId"])  # type: ignore[index]

    def _check_encryption(self) -> str:
        got = self._optional("get_bucket_encryption", "ServerSideEncryptionConfigurationNotFoundError")
        rules = (got or {}).get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
        if not rules:
            return _MISSING
        default = rules[0].get("ApplyServerSideEncryptionByDefault", {})
        if default.get("SSEAlgorithm") != "aws:kms":
            return f"default encryption is {default.get('SSEAlgorithm')}, not aws:kms"
        have = default.get("KMSMasterKeyID")
        key = self.key()
        if self.config.state.kms_key == "aws-managed":
            ok = have in (None, "", "alias/aws/s3") or str(have).endswith(":alias/aws/s3")
        else:
            ok = key is not None and have in (self.config.state.kms_key, key["Arn"], key["KeyId"])
        if not ok:
            return f"encrypted with {have or 'the AWS-managed key'}, not the configured key"
        return "" if rules[0].get("BucketKeyEnabled") else "S3 bucket key is off"

    def _fix_encryption(self) -> None:
        default: dict[str, Any] = {"SSEAlgorithm": "aws:kms"}
        key = self.key()
        if key is not None:
            default["KMSMasterKeyID"] = key["Arn"]
        self._s3("setting default encryption", "put_bucket_encryption", ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": default, "BucketKeyEnabled": True}]})

    # -- lock table -----------------------------------------------------------------------

    def _ddb(self, action: str, call: str, **kwargs: Any) -> Any:
        table = self.config.state.lock_table
        with aws.errors(action, resource=table):
            return getattr(self.dynamodb, call)(TableName=table, **kwargs)

    def _check_table(self) -> str:
        from botocore.exceptions import ClientError

        table = self.config.state.lock_table
        try:
            desc = self.dynamodb.describe_table(TableName=table)["Table"]
        except ClientError as exc:
            if aws.error_code(exc) == "ResourceNotFoundException":
                return _MISSING
            raise aws.translate(exc, "reading the lock table", table) from exc
        keys = {(k["AttributeName"], k["KeyType"]) for k in desc["KeySchema"]}
        types = {a["AttributeName"]: a["AttributeType"] for a in desc["AttributeDefinitions"]}
        if keys != {("LockID", "HASH")} or types.get("LockID") != "S":
            raise UnrepairableItem("lock-table", f"table {table} does not have the string hash key LockID",
                                   "set state.lock_table to a new name; Terraform needs LockID (S)")
        self._exists["lock-table"] = True
        return ""

    def _create_table(self) -> None:
        self._ddb("creating the lock table", "create_table",
                  AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
                  KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}],
                  BillingMode="PAY_PER_REQUEST", SSESpecification=self._table_sse(),
                  Tags=[{"Key": "mlcicd:project", "Value": self.config.project}])
        self._wait_active()
        self._exists["lock-table"] = True

    def _wait_active(self) -> None:
        waiter = self.dynamodb.get_waiter("table_exists")
        with aws.errors("waiting for the lock table", self.config.state.lock_table):
            waiter.wait(TableName=self.config.state.lock_table, WaiterConfig={"Delay": 3, "MaxAttempts": 100})

    def _table_sse(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"Enabled": True, "SSEType": "KMS"}
        key = self.key()
        if key is not None:
            spec["KMSMasterKeyId"] = key["Arn"]
        return spec

    def _current_table(self) -> dict[str, Any]:
        return self._ddb("reading the lock table", "describe_table")["Table"]

    def _check_billing(self) -> str:
        mode = self._current_table().get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED")
        return "" if mode == "PAY_PER_REQUEST" else f"billing mode is {mode}, not PAY_PER_REQUEST"

    def _fix_billing(self) -> None:
        self._ddb("switching the lock table to on-demand", "update_table", BillingMode="PAY_PER_REQUEST")
        self._wait_active()

    def _check_table_sse(self) -> str:
        sse = self._current_table().get("SSEDescription") or {}
        if sse.get("Status") not in ("ENABLED", "UPDATING"):
            return "encryption at rest uses the DynamoDB-owned key, not KMS"
        key = self.key()
        if key is not None and sse.get("KMSMasterKeyArn") != key["Arn"]:
            return f"encrypted with {sse.get('KMSMasterKeyArn')}, not the configured key"
        return ""

    def _fix_table_sse(self) -> None:
        self._ddb("encrypting the lock table", "update_table", SSESpecification=self._table_sse())
        self._wait_active()

    def _check_pitr(self) -> str:
        desc = self._ddb("reading point-in-time recovery", "describe_continuous_backups")
        status = desc["ContinuousBackupsDescription"].get("PointInTimeRecoveryDescription", {})
        return "" if status.get("PointInTimeRecoveryStatus") == "ENABLED" else "point-in-time recovery is off"

    def _fix_pitr(self) -> None:
        self._ddb("enabling point-in-time recovery", "update_continuous_backups",
                  PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})


def _region_of(response: dict[str, Any]) -> str:
    if response.get("BucketRegion"):
        return str(response["BucketRegion"])
    headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    return str(headers.get("x-amz-bucket-region", ""))

