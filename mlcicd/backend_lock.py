"""The DynamoDB lock table items (`state.lock: dynamodb`; S3-native locking needs none):
`lock-table` (hash key LockID, a string), `lock-table-billing` (on-demand),
`lock-table-encryption` (the state KMS key) and `lock-table-pitr` (point-in-time recovery).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlcicd import aws
from mlcicd.backend_items import Context, Finding, Item, UnrepairableItem, call

if TYPE_CHECKING:
    from mlcicd.config import Config


class LockTableWrongKey(UnrepairableItem):
    """A table of that name exists without the key Terraform locks by; changing it would lose it."""

    def __init__(self, table: str) -> None:
        self.table = table
        super().__init__("lock-table", f"table {table} does not have the string hash key LockID",
                         "set state.lock_table to a new name; Terraform needs LockID (S)")


def items(config: Config) -> list[Item]:
    if config.state.lock != "dynamodb":
        return []
    key = () if config.state.kms_key == "aws-managed" else ("kms-key",)
    return [
        Item("lock-table", check_table, create_table, repair_needs=key),  # created encrypted with the key
        Item("lock-table-billing", check_billing, set_billing, of="lock-table"),
        Item("lock-table-encryption", check_encryption, set_encryption, of="lock-table", needs=key),
        Item("lock-table-pitr", check_pitr, enable_pitr, of="lock-table"),
    ]


def _ddb(ctx: Context, method: str, action: str, **kwargs: Any) -> Any:
    table = ctx.config.state.lock_table
    return call(ctx.clients.dynamodb, method, action, table, TableName=table, **kwargs)


def _wait_active(ctx: Context) -> None:
    table = ctx.config.state.lock_table
    waiter = ctx.clients.dynamodb.get_waiter("table_exists")
    with aws.errors("waiting for the lock table", table):
        waiter.wait(TableName=table, WaiterConfig={"Delay": 3, "MaxAttempts": 100})


def check_table(ctx: Context) -> Finding:
    from botocore.exceptions import ClientError

    table = ctx.config.state.lock_table
    try:
        desc = ctx.clients.dynamodb.describe_table(TableName=table)["Table"]
    except ClientError as exc:
        if aws.error_code(exc) == "ResourceNotFoundException":
            return ctx.missing()
        raise aws.translate(exc, "reading the lock table", table) from exc
    keys = {(k["AttributeName"], k["KeyType"]) for k in desc["KeySchema"]}
    types = {a["AttributeName"]: a["AttributeType"] for a in desc["AttributeDefinitions"]}
    if keys != {("LockID", "HASH")} or types.get("LockID") != "S":
        raise LockTableWrongKey(table)
    return ctx.ok()


def create_table(ctx: Context) -> None:
    _ddb(ctx, "create_table", "creating the lock table",
         AttributeDefinitions=[{"AttributeName": "LockID", "AttributeType": "S"}],
         KeySchema=[{"AttributeName": "LockID", "KeyType": "HASH"}], BillingMode="PAY_PER_REQUEST",
         SSESpecification=_sse(ctx), Tags=[{"Key": "mlcicd:project", "Value": ctx.config.project}])
    _wait_active(ctx)


def _table(ctx: Context) -> dict[str, Any]:
    return _ddb(ctx, "describe_table", "reading the lock table")["Table"]


def check_billing(ctx: Context) -> Finding:
    mode = _table(ctx).get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED")
    return ctx.verdict("" if mode == "PAY_PER_REQUEST" else f"billing mode is {mode}, not PAY_PER_REQUEST")


def set_billing(ctx: Context) -> None:
    _ddb(ctx, "update_table", "switching the lock table to on-demand", BillingMode="PAY_PER_REQUEST")
    _wait_active(ctx)


def check_encryption(ctx: Context) -> Finding:
    sse = _table(ctx).get("SSEDescription") or {}
    if sse.get("Status") not in ("ENABLED", "UPDATING"):
        return ctx.missing("encryption at rest uses the DynamoDB-owned key, not KMS")
    key = ctx.key()
    if key is not None and sse.get("KMSMasterKeyArn") != key["Arn"]:
        return ctx.missing(f"encrypted with {sse.get('KMSMasterKeyArn')}, not the configured key")
    return ctx.ok()


def _sse(ctx: Context) -> dict[str, Any]:
    spec: dict[str, Any] = {"Enabled": True, "SSEType": "KMS"}
    key = ctx.key()
    if key is not None:
        spec["KMSMasterKeyId"] = key["Arn"]
    return spec


def set_encryption(ctx: Context) -> None:
    _ddb(ctx, "update_table", "encrypting the lock table", SSESpecification=_sse(ctx))
    _wait_active(ctx)


def check_pitr(ctx: Context) -> Finding:
    desc = _ddb(ctx, "describe_continuous_backups", "reading point-in-time recovery")
    status = desc["ContinuousBackupsDescription"].get("PointInTimeRecoveryDescription", {})
    return ctx.verdict("" if status.get("PointInTimeRecoveryStatus") == "ENABLED" else "point-in-time recovery is off")


def enable_pitr(ctx: Context) -> None:
    _ddb(ctx, "update_continuous_backups", "enabling point-in-time recovery",
         PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})
