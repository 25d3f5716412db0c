"""The state KMS key items: `kms-key` (created and found again by its alias with
`state.kms_key: create`, only checked when it is a key of your own) and `kms-key-rotation`.
With `state.kms_key: aws-managed` there is no key item: S3 and DynamoDB use their AWS-managed keys.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlcicd import aws
from mlcicd.backend_items import Context, Finding, Item, UnrepairableItem, call

if TYPE_CHECKING:
    from mlcicd.config import Config


class KmsKeyNotUsable(UnrepairableItem):
    """The configured key is missing, disabled or pending deletion; bootstrap will not touch it."""

    def __init__(self, key: str, detail: str, hint: str) -> None:
        self.key = key
        super().__init__("kms-key", f"{key} {detail}", hint)


def key_alias(config: Config) -> str:
    """The alias that finds the state key again on later runs (kms_key: create)."""
    return f"alias/{config.project}-tfstate"


def key_id(config: Config) -> str:
    """The id mlcicd looks the state key up by: its alias, or the ARN/alias of your own key."""
    return key_alias(config) if config.state.kms_key == "create" else config.state.kms_key


def items(config: Config) -> list[Item]:
    if config.state.kms_key == "aws-managed":
        return []
    if config.state.kms_key != "create":
        return [Item("kms-key", check_key, None)]
    return [Item("kms-key", check_key, create_key),
            Item("kms-key-rotation", check_rotation, enable_rotation, of="kms-key")]


def check_key(ctx: Context) -> Finding:
    from botocore.exceptions import ClientError

    wanted = key_id(ctx.config)
    try:
        meta = ctx.clients.kms.describe_key(KeyId=wanted)["KeyMetadata"]
    except ClientError as exc:
        if aws.error_code(exc) != "NotFoundException":
            raise aws.translate(exc, "reading the state KMS key", wanted) from exc
        if ctx.config.state.kms_key == "create":
            return ctx.missing()
        raise KmsKeyNotUsable(wanted, "not found", "fix state.kms_key, or use 'create' or 'aws-managed'") from exc
    if meta.get("KeyState") != "Enabled":
        raise KmsKeyNotUsable(wanted, f"is {meta.get('KeyState')}",
                              "enable it (or cancel its deletion) in KMS, then run bootstrap again")
    return ctx.ok(**meta)


def create_key(ctx: Context) -> None:
    config = ctx.config
    kms = ctx.clients.kms
    meta = call(kms, "create_key", "creating the state KMS key",
                Description=f"{config.project}: Terraform state bucket {ctx.bucket}",
                KeyUsage="ENCRYPT_DECRYPT", Tags=[{"TagKey": "mlcicd:project", "TagValue": config.project}],
                )["KeyMetadata"]
    call(kms, "create_alias", "naming the state KMS key", key_alias(config),
         AliasName=key_alias(config), TargetKeyId=meta["KeyId"])
    call(kms, "enable_key_rotation", "enabling key rotation", key_alias(config), KeyId=meta["KeyId"])


def check_rotation(ctx: Context) -> Finding:
    key = ctx.key() or {}
    on = call(ctx.clients.kms, "get_key_rotation_status", "reading key rotation", key.get("Arn"),
              KeyId=key.get("KeyId")).get("KeyRotationEnabled")
    return ctx.verdict("" if on else "automatic key rotation is off")


def enable_rotation(ctx: Context) -> None:
    key = ctx.key() or {}
    call(ctx.clients.kms, "enable_key_rotation", "enabling key rotation", key.get("Arn"), KeyId=key.get("KeyId"))
