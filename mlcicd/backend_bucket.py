"""The state bucket and its settings: `bucket` (with its LocationConstraint outside us-east-1),
`encryption` (SSE-KMS with the S3 bucket key), `versioning`, `public-access-block`,
`ownership-controls`, `tls-policy`, `policy-principals` (reported, never changed) and
`access-logging`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from mlcicd import aws
from mlcicd.backend_items import (
    ERROR,
    Context,
    Finding,
    Item,
    StateBackendError,
    UnrepairableItem,
    call,
    optional,
)
from mlcicd.backend_policy import TLS_SID, foreign_grants, has_tls_statement, merge_tls_statement

if TYPE_CHECKING:
    from mlcicd.config import Config

_PAB_FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


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


class ForeignAccess(UnrepairableItem):
    """The bucket policy lets someone outside the devops account in. bootstrap does not remove
    a statement it did not write: a person decides."""

    def __init__(self, bucket: str, account: str, grants: tuple[str, ...]) -> None:
        self.bucket, self.grants = bucket, grants
        super().__init__("policy-principals", "the state bucket's policy lets in more than the devops account "
                         f"{account}: " + "; ".join(grants),
                         hint=f"remove or narrow that statement (`aws s3api get-bucket-policy --bucket {bucket}`, "
                         "then put-bucket-policy); state files hold secrets in clear")


def items(config: Config) -> tuple[Item, list[Item]]:
    """The bucket, and its settings (listed after the KMS key, which encryption needs)."""
    key = () if config.state.kms_key == "aws-managed" else ("kms-key",)
    settings = [
        Item("encryption", check_encryption, set_encryption, of="bucket", needs=key),
        Item("versioning", check_versioning, enable_versioning, of="bucket"),
        Item("public-access-block", check_pab, block_public_access, of="bucket"),
        Item("ownership-controls", check_ownership, enforce_ownership, of="bucket"),
    ]
    if config.state.tls_policy:
        settings.append(Item("tls-policy", check_tls_policy, write_tls_policy, of="bucket"))
    settings.append(Item("policy-principals", check_principals, None, of="bucket"))
    if config.state.logging_bucket:
        settings.append(Item("access-logging", check_logging, enable_logging, of="bucket"))
    return Item("bucket", check_bucket, create_bucket), settings


def check_bucket(ctx: Context) -> Finding:
    from botocore.exceptions import ClientError

    try:
        head = ctx.clients.s3.head_bucket(Bucket=ctx.bucket, ExpectedBucketOwner=ctx.account_id)
    except ClientError as exc:
        code = aws.error_code(exc)
        if code in ("404", "NoSuchBucket"):
            return ctx.missing()
        if code in ("403", "AccessDenied"):
            # The name is another account's, or these credentials may not s3:ListBucket. Only
            # trying to create it tells which: bootstrap may (probe), a check never writes.
            denied = BucketAccessDenied(ctx.bucket, "it belongs to another account (name taken), "
                                        "or these credentials may not read it")
            return Finding(ctx.item, ERROR, denied.message, error=denied, probe=True)
        if code in ("301", "PermanentRedirect"):
            raise BucketRegionMismatch(ctx.bucket, _region_of(exc.response), ctx.config.region) from exc
        raise aws.translate(exc, "reading the state bucket", ctx.bucket) from exc
    actual = _region_of(head)
    if actual and actual != ctx.config.region:
        raise BucketRegionMismatch(ctx.bucket, actual, ctx.config.region)
    return ctx.ok()


def create_bucket(ctx: Context) -> None:
    from botocore.exceptions import ClientError

    kwargs: dict[str, Any] = {"ObjectOwnership": "BucketOwnerEnforced"}
    if ctx.config.region != "us-east-1":  # us-east-1 rejects an explicit constraint
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": ctx.config.region}
    try:
        ctx.clients.s3.create_bucket(Bucket=ctx.bucket, **kwargs)
    except ClientError as exc:
        code = aws.error_code(exc)
        if code == "BucketAlreadyExists":
            raise BucketNameTaken(ctx.bucket) from exc
        if code == "BucketAlreadyOwnedByYou":
            raise BucketAccessDenied(ctx.bucket, "the bucket is this account's, but these "
                                     "credentials may not read it (s3:ListBucket)") from exc
        if code in ("AccessDenied", "403"):
            raise BucketAccessDenied(ctx.bucket, "not allowed to create it (s3:CreateBucket)") from exc
        raise aws.translate(exc, "creating the state bucket", ctx.bucket) from exc


def _s3(ctx: Context, method: str, action: str, **kwargs: Any) -> Any:
    return call(ctx.clients.s3, method, action, ctx.bucket, Bucket=ctx.bucket, **kwargs)


def _setting(ctx: Context, method: str, absent_code: str) -> dict[str, Any] | None:
    return optional(ctx.clients.s3, method, absent_code, f"reading the state bucket ({method})", ctx.bucket,
                    Bucket=ctx.bucket)


def check_encryption(ctx: Context) -> Finding:
    got = _setting(ctx, "get_bucket_encryption", "ServerSideEncryptionConfigurationNotFoundError")
    rules = (got or {}).get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
    if not rules:
        return ctx.missing()
    default = rules[0].get("ApplyServerSideEncryptionByDefault", {})
    if default.get("SSEAlgorithm") != "aws:kms":
        return ctx.missing(f"default encryption is {default.get('SSEAlgorithm')}, not aws:kms")
    have = default.get("KMSMasterKeyID")
    key = ctx.key()
    if key is None:  # aws-managed
        ok = have in (None, "", "alias/aws/s3") or str(have).endswith(":alias/aws/s3")
    else:
        ok = have in (ctx.config.state.kms_key, key["Arn"], key["KeyId"])
    if not ok:
        return ctx.missing(f"encrypted with {have or 'the AWS-managed key'}, not the configured key")
    return ctx.verdict("" if rules[0].get("BucketKeyEnabled") else "S3 bucket key is off")


def set_encryption(ctx: Context) -> None:
    default: dict[str, Any] = {"SSEAlgorithm": "aws:kms"}
    key = ctx.key()
    if key is not None:
        default["KMSMasterKeyID"] = key["Arn"]
    _s3(ctx, "put_bucket_encryption", "setting default encryption", ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": default, "BucketKeyEnabled": True}]})


def check_versioning(ctx: Context) -> Finding:
    status = _s3(ctx, "get_bucket_versioning", "reading bucket versioning").get("Status")
    return ctx.verdict("" if status == "Enabled" else f"versioning is {status or 'off'}")


def enable_versioning(ctx: Context) -> None:
    _s3(ctx, "put_bucket_versioning", "enabling versioning", VersioningConfiguration={"Status": "Enabled"})


def check_pab(ctx: Context) -> Finding:
    got = _setting(ctx, "get_public_access_block", "NoSuchPublicAccessBlockConfiguration")
    if got is None:
        return ctx.missing()
    off = [f for f in _PAB_FLAGS if not got["PublicAccessBlockConfiguration"].get(f)]
    return ctx.verdict(f"off: {', '.join(off)}" if off else "")


def block_public_access(ctx: Context) -> None:
    _s3(ctx, "put_public_access_block", "blocking public access",
        PublicAccessBlockConfiguration=dict.fromkeys(_PAB_FLAGS, True))


def check_ownership(ctx: Context) -> Finding:
    got = _setting(ctx, "get_bucket_ownership_controls", "OwnershipControlsNotFoundError")
    rules = (got or {}).get("OwnershipControls", {}).get("Rules", [])
    have = rules[0].get("ObjectOwnership") if rules else None
    if have is None:
        return ctx.missing()
    return ctx.verdict("" if have == "BucketOwnerEnforced" else f"object ownership is {have}")


def enforce_ownership(ctx: Context) -> None:
    _s3(ctx, "put_bucket_ownership_controls", "enforcing bucket-owner object ownership",
        OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})


def _policy(ctx: Context) -> dict[str, Any] | None:
    got = _setting(ctx, "get_bucket_policy", "NoSuchBucketPolicy")
    return json.loads(got["Policy"]) if got else None


def check_tls_policy(ctx: Context) -> Finding:
    policy = _policy(ctx)
    if has_tls_statement(policy, ctx.bucket, ctx.config.region):
        return ctx.ok()
    return ctx.missing() if policy is None else ctx.missing(f"no {TLS_SID} deny statement in the bucket policy")


def write_tls_policy(ctx: Context) -> None:
    policy = merge_tls_statement(_policy(ctx), ctx.bucket, ctx.config.region)
    _s3(ctx, "put_bucket_policy", "writing the bucket policy", Policy=json.dumps(policy))


def check_principals(ctx: Context) -> Finding:
    grants = foreign_grants(_policy(ctx), ctx.account_id)
    if grants:
        raise ForeignAccess(ctx.bucket, ctx.account_id, tuple(g.describe() for g in grants))
    return ctx.ok()


def check_logging(ctx: Context) -> Finding:
    enabled = _s3(ctx, "get_bucket_logging", "reading access logging").get("LoggingEnabled")
    if not enabled:
        return ctx.missing("off")
    want = (ctx.config.state.logging_bucket, f"{ctx.bucket}/")
    have = (enabled.get("TargetBucket"), enabled.get("TargetPrefix"))
    return ctx.verdict("" if have == want else f"logs go to s3://{have[0]}/{have[1] or ''}")


def enable_logging(ctx: Context) -> None:
    from botocore.exceptions import ClientError

    target = str(ctx.config.state.logging_bucket)
    try:
        ctx.clients.s3.put_bucket_logging(Bucket=ctx.bucket, BucketLoggingStatus={
            "LoggingEnabled": {"TargetBucket": target, "TargetPrefix": f"{ctx.bucket}/"}})
    except ClientError as exc:
        if aws.error_code(exc) in ("InvalidTargetBucketForLogging", "CrossLocationLoggingProhibitted",
                                   "CrossLocationLoggingProhibited"):
            raise LoggingBucketNotReady(target, exc.response["Error"].get("Message", "")) from exc
        raise aws.translate(exc, "enabling access logging", ctx.bucket) from exc


def _region_of(response: dict[str, Any]) -> str:
    if response.get("BucketRegion"):
        return str(response["BucketRegion"])
    headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    return str(headers.get("x-amz-bucket-region", ""))
