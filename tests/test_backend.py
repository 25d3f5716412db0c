"""`mlcicd bootstrap`: the state bucket and lock table, created and hardened in the emulator
(moto server over HTTP), every item read back with plain boto3, repaired after hand edits."""

from __future__ import annotations

import json
import re

import boto3
import pytest
from botocore.stub import Stubber
from click.testing import CliRunner

from mlcicd import aws
from mlcicd.backend import StateBackend
from mlcicd.backend_bucket import BucketAccessDenied, BucketNameTaken
from mlcicd.backend_items import Clients
from mlcicd.backend_policy import has_tls_statement, merge_tls_statement, tls_statement
from mlcicd.cli import main
from mlcicd.config import load
from tests.conftest import ACCOUNT, REGION, write_config

BUCKET = "tfstate-test"
PAB_FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


def state_extra(**settings: str) -> str:
    return "".join(f"  {k}: {v}\n" for k, v in settings.items())


def cli(root, *args):
    return CliRunner().invoke(main, ["--config", str(root / "mlcicd.yaml"), *args])


def s3(region=REGION):
    return boto3.client("s3", region_name=region)


def state_key_arn(region=REGION):
    return boto3.client("kms", region_name=region).describe_key(KeyId="alias/demo-tfstate")["KeyMetadata"]["Arn"]


@pytest.fixture
def root(tmp_path, aws_env):
    write_config(tmp_path)
    return tmp_path


def test_bootstrap_creates_every_hardening_item(root):
    result = cli(root, "bootstrap")
    assert result.exit_code == 0, result.output
    for item in ("bucket", "kms-key", "kms-key-rotation", "encryption", "versioning", "public-access-block",
                 "ownership-controls", "tls-policy"):
        assert f"created   {item}" in result.output
    assert "lock-table" not in result.output  # S3-native locking is the default

    client = s3()
    assert client.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"
    rule = client.get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": state_key_arn()}
    assert rule["BucketKeyEnabled"] is True
    kms = boto3.client("kms", region_name=REGION)
    assert kms.get_key_rotation_status(KeyId=state_key_arn())["KeyRotationEnabled"] is True
    pab = client.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"]
    assert pab == dict.fromkeys(PAB_FLAGS, True)
    rules = client.get_bucket_ownership_controls(Bucket=BUCKET)["OwnershipControls"]["Rules"]
    assert rules == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    policy = json.loads(client.get_bucket_policy(Bucket=BUCKET)["Policy"])
    assert policy["Statement"] == [tls_statement(BUCKET, REGION)]
    assert "LoggingEnabled" not in client.get_bucket_logging(Bucket=BUCKET)


def test_second_run_changes_nothing_and_says_so(root):
    assert cli(root, "bootstrap").exit_code == 0
    again = cli(root, "bootstrap")
    assert again.exit_code == 0, again.output
    assert "created" not in again.output and "repaired" not in again.output
    assert "already bootstrapped, nothing changed" in again.output
    # The key is found again by its alias, not created a second time.
    assert len(boto3.client("kms", region_name=REGION).list_keys()["Keys"]) == 1
    assert cli(root, "bootstrap", "--check").exit_code == 0


def test_check_on_an_empty_account_lists_everything_and_creates_nothing(root):
    result = cli(root, "bootstrap", "--check")
    assert result.exit_code == 1
    assert "MISSING  bucket: missing" in result.output
    assert "needs bootstrap: bucket, kms-key, kms-key-rotation, encryption, versioning" in result.output
    assert "run `mlcicd bootstrap`" in result.output
    assert s3().list_buckets()["Buckets"] == []
    assert boto3.client("kms", region_name=REGION).list_keys()["Keys"] == []


def _suspend_versioning(c):
    c.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Suspended"})


def _one_pab_flag_off(c):
    c.put_public_access_block(Bucket=BUCKET, PublicAccessBlockConfiguration={
        **dict.fromkeys(PAB_FLAGS, True), "RestrictPublicBuckets": False})


def _other_policy(c):
    c.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "Mine", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
         "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{BUCKET}/*"}]}))


def _sse_s3(c):
    c.put_bucket_encryption(Bucket=BUCKET, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})


def _bucket_key_off(c):
    c.put_bucket_encryption(Bucket=BUCKET, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": state_key_arn()},
        "BucketKeyEnabled": False}]})


def _rotation_off(c):
    boto3.client("kms", region_name=REGION).disable_key_rotation(KeyId=state_key_arn())


@pytest.mark.parametrize(("item", "damage", "said"), [
    ("versioning", _suspend_versioning, "versioning is Suspended"),
    ("encryption", lambda c: c.delete_bucket_encryption(Bucket=BUCKET), "encryption: missing"),
    ("encryption", _sse_s3, "default encryption is AES256, not aws:kms"),
    ("encryption", _bucket_key_off, "S3 bucket key is off"),
    ("public-access-block", lambda c: c.delete_public_access_block(Bucket=BUCKET), "public-access-block: missing"),
    ("public-access-block", _one_pab_flag_off, "off: RestrictPublicBuckets"),
    ("ownership-controls", lambda c: c.delete_bucket_ownership_controls(Bucket=BUCKET), "ownership-controls: missing"),
    ("tls-policy", lambda c: c.delete_bucket_policy(Bucket=BUCKET), "tls-policy: missing"),
    ("tls-policy", _other_policy, "no EnforcedTLS deny statement"),
    ("kms-key-rotation", _rotation_off, "automatic key rotation is off"),
])
def test_check_names_a_removed_setting_and_bootstrap_repairs_it(root, item, damage, said):
    assert cli(root, "bootstrap").exit_code == 0
    damage(s3())

    check = cli(root, "bootstrap", "--check")
    assert check.exit_code == 1
    assert said in check.output
    assert f"needs bootstrap: {item}\n" in check.output  # only the damaged item

    repair = cli(root, "bootstrap")
    assert repair.exit_code == 0, repair.output
    assert f"repaired  {item}" in repair.output
    assert "1 item(s) created or repaired" in repair.output  # and read back by bootstrap itself


def test_repairing_the_policy_keeps_other_statements(root):
    assert cli(root, "bootstrap").exit_code == 0
    _other_policy(s3())
    assert cli(root, "bootstrap").exit_code == 0
    sids = [s["Sid"] for s in json.loads(s3().get_bucket_policy(Bucket=BUCKET)["Policy"])["Statement"]]
    assert sids == ["Mine", "EnforcedTLS"]


def test_dynamodb_lock_table_hardened_and_repaired(tmp_path, aws_env):
    write_config(tmp_path, extra=state_extra(lock="dynamodb", lock_table="demo-tflock"))
    result = cli(tmp_path, "bootstrap")
    assert result.exit_code == 0, result.output
    for item in ("lock-table", "lock-table-billing", "lock-table-encryption", "lock-table-pitr"):
        assert f"created   {item}" in result.output

    ddb = boto3.client("dynamodb", region_name=REGION)
    table = ddb.describe_table(TableName="demo-tflock")["Table"]
    assert table["KeySchema"] == [{"AttributeName": "LockID", "KeyType": "HASH"}]
    assert table["AttributeDefinitions"] == [{"AttributeName": "LockID", "AttributeType": "S"}]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["SSEDescription"]["Status"] == "ENABLED"
    assert table["SSEDescription"]["KMSMasterKeyArn"] == state_key_arn()
    backups = ddb.describe_continuous_backups(TableName="demo-tflock")["ContinuousBackupsDescription"]
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"

    ddb.update_continuous_backups(TableName="demo-tflock",
                                  PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": False})
    ddb.update_table(TableName="demo-tflock", BillingMode="PROVISIONED",
                     ProvisionedThroughput={"ReadCapacityUnits": 1, "WriteCapacityUnits": 1})
    check = cli(tmp_path, "bootstrap", "--check")
    assert check.exit_code == 1
    assert "needs bootstrap: lock-table-billing, lock-table-pitr" in check.output
    repair = cli(tmp_path, "bootstrap")
    assert "repaired  lock-table-billing" in repair.output and "repaired  lock-table-pitr" in repair.output
    assert cli(tmp_path, "bootstrap", "--check").exit_code == 0


def test_lock_table_with_the_wrong_key_is_not_touched(tmp_path, aws_env):
    write_config(tmp_path, extra=state_extra(lock="dynamodb", lock_table="demo-tflock"))
    boto3.client("dynamodb", region_name=REGION).create_table(
        TableName="demo-tflock", BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])
    result = cli(tmp_path, "bootstrap")
    assert result.exit_code == 1
    assert "does not have the string hash key LockID" in result.output
    assert "Traceback" not in result.output


def test_outside_us_east_1_the_bucket_gets_its_location_constraint(tmp_path, aws_env):
    write_config(tmp_path, region="eu-west-1")
    result = cli(tmp_path, "bootstrap")
    assert result.exit_code == 0, result.output
    assert s3("eu-west-1").get_bucket_location(Bucket=BUCKET)["LocationConstraint"] == "eu-west-1"
    assert state_key_arn("eu-west-1").startswith("arn:aws:kms:eu-west-1:")
    assert cli(tmp_path, "bootstrap", "--check").exit_code == 0


def test_a_bucket_in_another_region_is_a_region_mismatch(root):
    s3("eu-west-1").create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    result = cli(root, "bootstrap")
    assert result.exit_code == 1
    assert "is in eu-west-1, but the config's region is us-east-1" in result.output


def test_aws_managed_key(tmp_path, aws_env):
    write_config(tmp_path, extra=state_extra(kms_key="aws-managed"))
    result = cli(tmp_path, "bootstrap")
    assert result.exit_code == 0, result.output
    rule = s3().get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms"}
    assert rule["BucketKeyEnabled"] is True
    assert boto3.client("kms", region_name=REGION).list_keys()["Keys"] == []
    assert "kms-key" not in result.output


def test_tls_policy_switched_off_for_the_emulator(tmp_path, aws_env):
    write_config(tmp_path, extra=state_extra(tls_policy="false"))
    result = cli(tmp_path, "bootstrap")
    assert result.exit_code == 0, result.output
    assert "tls-policy" not in result.output
    # Without the deny statement the emulator serves object calls, as Terraform's backend needs.
    s3().put_object(Bucket=BUCKET, Key="probe", Body=b"x")


def test_access_logging(tmp_path, aws_env):
    write_config(tmp_path, extra=state_extra(logging_bucket="demo-logs"))
    missing = cli(tmp_path, "bootstrap")
    assert missing.exit_code == 1
    assert "access logging bucket 'demo-logs' cannot receive logs: The target bucket for logging does not exist" \
        in missing.output

    s3().create_bucket(Bucket="demo-logs")
    s3().put_bucket_policy(Bucket="demo-logs", Policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "logging.s3.amazonaws.com"}, "Action": "s3:PutObject",
        "Resource": "arn:aws:s3:::demo-logs/*"}]}))
    result = cli(tmp_path, "bootstrap")
    assert result.exit_code == 0, result.output
    enabled = s3().get_bucket_logging(Bucket=BUCKET)["LoggingEnabled"]
    assert (enabled["TargetBucket"], enabled["TargetPrefix"]) == ("demo-logs", f"{BUCKET}/")

    s3().put_bucket_logging(Bucket=BUCKET, BucketLoggingStatus={})
    check = cli(tmp_path, "bootstrap", "--check")
    assert check.exit_code == 1 and "access-logging: off" in check.output


def test_credentials_of_another_account_are_refused(tmp_path, aws_env):
    write_config(tmp_path, accounts={k: "210987654321" for k in ("devops", "dev", "staging", "prod", "data")})
    result = cli(tmp_path, "bootstrap")
    assert result.exit_code == 1
    assert f"these credentials are for account {ACCOUNT}, not the devops account 210987654321" \
        in result.output
    assert s3().list_buckets()["Buckets"] == []


def test_no_credentials_is_a_clear_error(root, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(root / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(root / "none"))
    result = cli(root, "bootstrap")
    assert result.exit_code == 1
    assert "no AWS credentials found" in result.output and "Traceback" not in result.output


# moto answers HeadBucket with 200 for any bucket, whoever owns it, and never denies access, so
# these cases use Stubber on a real client: it checks each stubbed call against the S3 API model.

def stubbed_backend(tmp_path, aws_env):
    config = load(write_config(tmp_path))
    client = boto3.client("s3", region_name=REGION)
    kms = boto3.client("kms", region_name=REGION)  # the emulator's: no key yet
    return StateBackend(config, Clients(client, kms), ACCOUNT), Stubber(client)


def record_calls(client) -> list[str]:
    """The operations `client` sends, recorded by botocore's own before-call event."""
    sent: list[str] = []
    client.meta.events.register("before-call.*.*", lambda model, **_: sent.append(model.name))
    return sent


def test_bucket_name_taken_by_another_account(tmp_path, aws_env):
    backend, stub = stubbed_backend(tmp_path, aws_env)
    stub.add_client_error("head_bucket", "403", http_status_code=403,
                          expected_params={"Bucket": BUCKET, "ExpectedBucketOwner": ACCOUNT})
    stub.add_client_error("create_bucket", "BucketAlreadyExists", http_status_code=409)
    with stub, pytest.raises(BucketNameTaken) as err:
        backend.bootstrap()
    assert "'tfstate-test' is taken by another AWS account" in str(err.value)
    assert "set state.bucket" in str(err.value)


@pytest.mark.parametrize(("create_code", "said"), [
    ("AccessDenied", "not allowed to create it (s3:CreateBucket)"),
    ("BucketAlreadyOwnedByYou", "the bucket is this account's, but these credentials may not read it"),
])
def test_bucket_access_denied(tmp_path, aws_env, create_code, said):
    backend, stub = stubbed_backend(tmp_path, aws_env)
    stub.add_client_error("head_bucket", "403", http_status_code=403)
    stub.add_client_error("create_bucket", create_code, http_status_code=403)
    with stub, pytest.raises(BucketAccessDenied) as err:
        backend.bootstrap()
    assert said in str(err.value)


def test_check_mode_never_probes_by_creating(tmp_path, aws_env):
    backend, stub = stubbed_backend(tmp_path, aws_env)
    sent = record_calls(backend.clients.s3)
    stub.add_client_error("head_bucket", "403", http_status_code=403)
    with stub:
        status = backend.inspect()
    stub.assert_no_pending_responses()
    assert sent == ["HeadBucket"]  # the kms-key check went to the emulator; the 403 led to no create
    bucket = status.finding("bucket")
    assert isinstance(bucket.error, BucketAccessDenied)
    assert "another account (name taken), or these credentials may not read it" in bucket.detail
    # Every item is still listed: the bucket's settings as not checked because of it.
    assert status.finding("versioning").detail == "not checked because of bucket"
    assert status.finding("kms-key").detail == "missing"


def test_throttling_after_the_sdk_retries_is_reported(tmp_path, aws_env):
    backend, stub = stubbed_backend(tmp_path, aws_env)
    stub.add_client_error("head_bucket", "SlowDown", http_status_code=503)
    with stub, pytest.raises(aws.AwsThrottled) as err:
        backend.inspect()
    assert "throttled" in str(err.value) and "SlowDown" in str(err.value)


def test_tls_statement_document():
    assert tls_statement("b-1", "eu-west-1") == {
        "Sid": "EnforcedTLS",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": ["arn:aws:s3:::b-1", "arn:aws:s3:::b-1/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    assert tls_statement("b-1", "cn-north-1")["Resource"][0] == "arn:aws-cn:s3:::b-1"
    assert tls_statement("b-1", "us-gov-west-1")["Resource"][0] == "arn:aws-us-gov:s3:::b-1"


def test_tls_statement_merge_and_recognition():
    stale = {"Sid": "EnforcedTLS", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
             "Resource": "arn:aws:s3:::other/*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
    mine = {"Sid": "Mine", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"}
    merged = merge_tls_statement({"Version": "2012-10-17", "Statement": [mine, stale]}, "b-1", "us-east-1")
    assert merged["Statement"] == [mine, tls_statement("b-1", "us-east-1")]
    assert not has_tls_statement({"Statement": [stale]}, "b-1", "us-east-1")
    assert not has_tls_statement(None, "b-1", "us-east-1")
    # AWS may hand the policy back with the principal spelled out and the lists reordered.
    respelled = {**tls_statement("b-1", "us-east-1"), "Principal": {"AWS": "*"},
                 "Resource": ["arn:aws:s3:::b-1/*", "arn:aws:s3:::b-1"], "Action": ["s3:*"]}
    assert has_tls_statement({"Statement": respelled}, "b-1", "us-east-1")
    allow = {**tls_statement("b-1", "us-east-1"), "Effect": "Allow"}
    assert not has_tls_statement({"Statement": [allow]}, "b-1", "us-east-1")


@pytest.mark.parametrize("lock", ["s3", "dynamodb"])
def test_terraform_keeps_its_state_in_the_bootstrapped_backend(project, aws_env, lock):
    # The TLS deny statement is switched off: moto ignores its condition and would refuse
    # every object call, Terraform's included.
    config = project / "mlcicd.yaml"
    config.write_text(config.read_text().replace(
        f"  bucket: {BUCKET}\n", f"  bucket: {BUCKET}\n  tls_policy: false\n  lock: {lock}\n"))
    assert cli(project, "bootstrap").exit_code == 0

    applied = cli(project, "apply", "app", "--auto-approve")
    assert applied.exit_code == 0, applied.output
    assert [o["Key"] for o in s3().list_objects_v2(Bucket=BUCKET)["Contents"]] == ["app/terraform.tfstate"]
    versions = {v["Key"] for v in s3().list_object_versions(Bucket=BUCKET)["Versions"]}
    # S3-native locking leaves a (deleted) lock object's versions behind; DynamoDB locking does not.
    assert ("app/terraform.tfstate.tflock" in versions) == (lock == "s3")
    # The state object is encrypted with the bucket's key, as Terraform was told to ask for.
    head = s3().head_object(Bucket=BUCKET, Key="app/terraform.tfstate")
    assert head["ServerSideEncryption"] == "aws:kms"
    kms = boto3.client("kms", region_name=REGION)
    assert kms.describe_key(KeyId=head["SSEKMSKeyId"])["KeyMetadata"]["Arn"] == state_key_arn()
    if lock == "dynamodb":
        items = boto3.client("dynamodb", region_name=REGION).scan(TableName="demo-tflock")["Items"]
        assert [i["LockID"]["S"] for i in items] == [f"{BUCKET}/app/terraform.tfstate-md5"]
    assert cli(project, "bootstrap", "--check").exit_code == 0


@pytest.mark.parametrize("kms_key", ["create", "alias/mine"])
def test_rendered_backend_names_the_key_the_bucket_encrypts_with(tmp_path, aws_env, kms_key):
    from mlcicd.render import render_text
    from mlcicd.runtime import Runtime

    kms = boto3.client("kms", region_name=REGION)
    if kms_key != "create":
        kms.create_alias(AliasName=kms_key, TargetKeyId=kms.create_key()["KeyMetadata"]["KeyId"])
    config = load(write_config(tmp_path, extra=state_extra(kms_key=kms_key)))
    assert cli(tmp_path, "bootstrap").exit_code == 0
    _, backend_hcl = render_text(config, config.env("devops"), Runtime())
    named = re.search(r'^kms_key_id = "(.+)"$', backend_hcl.decode(), re.MULTILINE)[1]
    # What Terraform is told resolves, in KMS, to the key bootstrap set on the bucket.
    rule = s3().get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert kms.describe_key(KeyId=named)["KeyMetadata"]["Arn"] == \
        rule["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"]


@pytest.fixture
def terminal(monkeypatch):
    """A session that looks like a person at a terminal (CliRunner's streams are not ttys)."""
    import dataclasses

    from mlcicd.runtime import Runtime

    real = Runtime.from_environ.__func__
    monkeypatch.delenv("CI")
    monkeypatch.setattr(Runtime, "from_environ", classmethod(
        lambda cls, environ=None: dataclasses.replace(real(cls, environ), interactive=True)))


def test_in_a_terminal_it_lists_the_steps_and_asks_first(root, terminal):
    declined = CliRunner().invoke(main, ["--config", str(root / "mlcicd.yaml"), "bootstrap"], input="n\n")
    assert declined.exit_code == 1
    assert "MISSING  bucket: missing" in declined.output and "Create or repair 8 item(s)" in declined.output
    assert s3().list_buckets()["Buckets"] == []

    accepted = CliRunner().invoke(main, ["--config", str(root / "mlcicd.yaml"), "bootstrap"], input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert "created   bucket" in accepted.output

    again = CliRunner().invoke(main, ["--config", str(root / "mlcicd.yaml"), "bootstrap"])
    assert again.exit_code == 0 and "ready, nothing to change" in again.output  # nothing to ask


def test_in_a_terminal_nothing_is_asked_when_only_a_person_can_help(root, terminal):
    assert cli(root, "bootstrap", "--yes").exit_code == 0
    kms = boto3.client("kms", region_name=REGION)
    kms.disable_key(KeyId=kms.describe_key(KeyId="alias/demo-tfstate")["KeyMetadata"]["KeyId"])
    result = CliRunner().invoke(main, ["--config", str(root / "mlcicd.yaml"), "bootstrap"], input="y\n")
    assert result.exit_code == 1
    assert "?" not in result.output and "ERROR    kms-key: alias/demo-tfstate is Disabled" in result.output
    assert "state backend not ready" in result.output


def test_ci_never_prompts(root):
    result = CliRunner().invoke(main, ["--config", str(root / "mlcicd.yaml"), "bootstrap"], input="")
    assert result.exit_code == 0, result.output
    assert "?" not in result.output
