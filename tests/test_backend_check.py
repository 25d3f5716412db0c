"""`mlcicd bootstrap --check` never writes, and lists every item: what the emulator (moto server
over HTTP) holds is compared before and after, and botocore's before-call event records every
operation mlcicd's clients send. Also what needs a person: a disabled KMS key, a bucket policy
that lets another account in, a key of your own that is gone."""

from __future__ import annotations

import json
import urllib.request

import boto3
import botocore.session
import pytest
from click.testing import CliRunner

from mlcicd.backend import items
from mlcicd.backend_items import ReadOnly, ReadOnlyViolation
from mlcicd.backend_policy import foreign_grants
from mlcicd.cli import main
from mlcicd.config import load
from tests.conftest import ACCOUNT, REGION, write_config

BUCKET = "tfstate-test"
OTHER = "111111111111"
DYNAMODB = "  lock: dynamodb\n  lock_table: demo-tflock\n"
EVERY_ITEM = ("bucket", "kms-key", "kms-key-rotation", "encryption", "versioning", "public-access-block",
              "ownership-controls", "tls-policy", "policy-principals", "lock-table", "lock-table-billing",
              "lock-table-encryption", "lock-table-pitr")


def cli(root, *args):
    return CliRunner().invoke(main, ["--config", str(root / "mlcicd.yaml"), *args])


def s3():
    return boto3.client("s3", region_name=REGION)


def kms():
    return boto3.client("kms", region_name=REGION)


def state_key_id():
    return kms().describe_key(KeyId="alias/demo-tfstate")["KeyMetadata"]["KeyId"]


@pytest.fixture
def sent(monkeypatch):
    """Every AWS operation sent in this test as (service, operation, HTTP method), recorded by
    botocore's before-call event on each client as it is created."""
    calls: list[tuple[str, str, str]] = []
    real = botocore.session.Session.create_client

    def create_client(self, *args, **kwargs):
        client = real(self, *args, **kwargs)
        service = client.meta.service_model.service_name
        client.meta.events.register(
            "before-call.*.*", lambda model, **_: calls.append((service, model.name, model.http["method"])))
        return client

    monkeypatch.setattr(botocore.session.Session, "create_client", create_client)
    return calls


def writes(calls):
    """The calls that are not reads, by AWS's own conventions: S3 is a REST API whose reads are
    GET and HEAD; the JSON APIs (KMS, DynamoDB, STS) name their reads Describe, Get and List."""
    return [c for c in calls
            if (c[2] not in ("GET", "HEAD") if c[0] == "s3" else not c[1].startswith(("Describe", "Get", "List")))]


def emulator_data(emulator) -> dict:
    """What the emulator holds in S3, KMS and DynamoDB, as moto itself dumps it (IAM is left
    out: it notes when an access key was last used, as AWS does)."""
    dump = json.loads(urllib.request.urlopen(f"{emulator.url}/moto-api/data.json", timeout=30).read())
    return {service: {kind: found for kind, found in dump.get(service, {}).items() if found}
            for service in ("s3", "kms", "dynamodb")}


def _bootstrapped(root, emulator):
    assert cli(root, "bootstrap").exit_code == 0


def _every_setting_removed(root, emulator):
    _bootstrapped(root, emulator)
    c = s3()
    c.delete_bucket_encryption(Bucket=BUCKET)
    c.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Suspended"})
    c.delete_public_access_block(Bucket=BUCKET)
    c.delete_bucket_ownership_controls(Bucket=BUCKET)
    c.delete_bucket_policy(Bucket=BUCKET)
    kms().disable_key_rotation(KeyId=state_key_id())
    ddb = boto3.client("dynamodb", region_name=REGION)
    ddb.update_continuous_backups(TableName="demo-tflock",
                                  PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": False})
    ddb.update_table(TableName="demo-tflock", BillingMode="PROVISIONED",
                     ProvisionedThroughput={"ReadCapacityUnits": 1, "WriteCapacityUnits": 1})


def _key_disabled(root, emulator):
    _bootstrapped(root, emulator)
    kms().disable_key(KeyId=state_key_id())


def _partner_statement(root, emulator):
    _bootstrapped(root, emulator)
    policy = json.loads(s3().get_bucket_policy(Bucket=BUCKET)["Policy"])
    policy["Statement"].append({"Sid": "Partner", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OTHER}:root"},
                                "Action": "s3:*", "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"]})
    s3().put_bucket_policy(Bucket=BUCKET, Policy=json.dumps(policy))


@pytest.mark.parametrize(("scenario", "said"), [
    (None, "MISSING  bucket: missing"),
    (_bootstrapped, "state backend s3://tfstate-test: ready"),
    (_every_setting_removed, "needs bootstrap: kms-key-rotation, encryption, versioning, public-access-block, "
                             "ownership-controls, tls-policy, lock-table-billing, lock-table-pitr"),
    (_key_disabled, "ERROR    kms-key: alias/demo-tfstate is Disabled"),
    (_partner_statement, "statement 'Partner' allows account 111111111111"),
])
def test_check_never_writes(tmp_path, aws_env, sent, scenario, said):
    write_config(tmp_path, extra=DYNAMODB)
    if scenario:
        scenario(tmp_path, aws_env)
    s3().list_buckets()  # loads the emulator's S3 models, with the constants moto dumps among them
    before = emulator_data(aws_env)
    sent.clear()

    result = cli(tmp_path, "bootstrap", "--check")
    assert result.exit_code == (0 if scenario is _bootstrapped else 1), result.output
    assert said in result.output
    assert sent, "the check read nothing"
    assert writes(sent) == []
    assert emulator_data(aws_env) == before


@pytest.fixture
def reader(aws_env, monkeypatch):
    """Credentials of an IAM user that may read the bucket's settings, the key and the table,
    but not s3:ListBucket (so HeadBucket answers 403) nor create anything; the emulator
    enforces IAM for the duration of the test."""
    iam = boto3.client("iam", region_name=REGION)
    iam.create_user(UserName="reader")
    iam.put_user_policy(UserName="reader", PolicyName="read", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*", "Action": [
            "sts:GetCallerIdentity", "s3:GetBucket*", "s3:GetEncryptionConfiguration", "s3:GetLifecycle*",
            "kms:Describe*", "kms:Get*", "dynamodb:Describe*"]}]}))
    key = iam.create_access_key(UserName="reader")["AccessKey"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])

    def enforce(count: str) -> None:
        urllib.request.urlopen(urllib.request.Request(
            f"{aws_env.url}/moto-api/reset-auth", data=count.encode(), method="POST",
            headers={"Content-Type": "text/plain"}), timeout=10).read()

    enforce("0")
    yield
    enforce("inf")


def test_check_on_a_403_lists_every_item_and_never_writes(tmp_path, aws_env, sent, reader):
    write_config(tmp_path, extra=DYNAMODB)
    before = emulator_data(aws_env)
    sent.clear()
    check = cli(tmp_path, "bootstrap", "--check")
    assert check.exit_code == 1, check.output
    assert "ERROR    bucket: access to state bucket 'tfstate-test' denied" in check.output
    assert "SKIPPED  versioning: not checked because of bucket" in check.output
    assert "MISSING  kms-key: missing" in check.output  # checked all the same: it does not need the bucket
    assert all(f" {item}" in check.output for item in EVERY_ITEM)
    assert ("s3", "HeadBucket", "HEAD") in sent
    assert writes(sent) == []
    assert emulator_data(aws_env) == before

    # bootstrap itself may try to create the bucket: that tells "no permission" from "name taken".
    run = cli(tmp_path, "bootstrap")
    assert run.exit_code == 1
    assert "access to state bucket 'tfstate-test' denied: not allowed to create it (s3:CreateBucket)" in run.output


def test_a_disabled_key_is_reported_with_every_other_item_still_checked_and_repaired(tmp_path, aws_env):
    write_config(tmp_path, extra=DYNAMODB)
    _key_disabled(tmp_path, aws_env)
    s3().put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Suspended"})

    check = cli(tmp_path, "bootstrap", "--check")
    assert check.exit_code == 1
    lines = check.output.splitlines()
    for item in EVERY_ITEM:
        assert any(line.split()[1:2] == [item + ":"] or line.split()[1:2] == [item] for line in lines), item
    assert "  ERROR    kms-key: alias/demo-tfstate is Disabled" in lines
    for dependant in ("kms-key-rotation", "encryption", "lock-table-encryption"):
        assert f"  SKIPPED  {dependant}: not checked because of kms-key" in lines
    assert "  ok       lock-table" in lines  # needs the key only to be created
    assert "  MISSING  versioning: versioning is Suspended" in lines
    assert "  ok       public-access-block" in lines
    assert "enable it (or cancel its deletion) in KMS" in check.output

    run = cli(tmp_path, "bootstrap")
    assert run.exit_code == 1
    assert "  repaired  versioning (was: versioning is Suspended)" in run.output
    assert "  failed    kms-key: alias/demo-tfstate is Disabled" in run.output
    assert "  skipped   encryption: not checked because of kms-key" in run.output
    assert "Error: state backend not ready\n  kms-key: alias/demo-tfstate is Disabled" in run.output
    assert s3().get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"

    kms().enable_key(KeyId=state_key_id())
    assert cli(tmp_path, "bootstrap", "--check").exit_code == 0


def test_a_lock_table_that_needs_the_disabled_key_to_be_created_waits_for_it(tmp_path, aws_env):
    write_config(tmp_path, extra=DYNAMODB)
    _key_disabled(tmp_path, aws_env)
    boto3.client("dynamodb", region_name=REGION).delete_table(TableName="demo-tflock")
    run = cli(tmp_path, "bootstrap")
    assert run.exit_code == 1
    assert "  skipped   lock-table: waits for kms-key" in run.output
    assert "  skipped   lock-table-pitr: waits for lock-table" in run.output
    assert ("needs bootstrap: lock-table, lock-table-billing, lock-table-pitr\n"
            "  kms-key: alias/demo-tfstate is Disabled") in run.output
    assert boto3.client("dynamodb", region_name=REGION).list_tables()["TableNames"] == []


def test_a_statement_letting_another_account_in_fails_the_check_and_is_not_removed(tmp_path, aws_env):
    write_config(tmp_path)
    _partner_statement(tmp_path, aws_env)
    expected = (f"policy-principals: the state bucket's policy lets in more than the devops account {ACCOUNT}: "
                f"statement 'Partner' allows account {OTHER} (arn:aws:iam::{OTHER}:root): s3:*")

    check = cli(tmp_path, "bootstrap", "--check")
    assert check.exit_code == 1
    assert expected in check.output
    assert "remove or narrow that statement" in check.output

    run = cli(tmp_path, "bootstrap")
    assert run.exit_code == 1
    assert expected in run.output and "unchanged tls-policy" in run.output
    sids = [s.get("Sid") for s in json.loads(s3().get_bucket_policy(Bucket=BUCKET)["Policy"])["Statement"]]
    assert sids == ["EnforcedTLS", "Partner"]  # reported, never silently removed


@pytest.mark.parametrize(("statement", "outsiders"), [
    ({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/ci"}, "Action": "s3:*"}, None),
    ({"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "s3:GetObject"}, None),
    ({"Effect": "Allow", "Principal": {"Service": "logging.s3.amazonaws.com"}, "Action": "s3:PutObject"}, None),
    ({"Effect": "Deny", "Principal": "*", "Action": "s3:*"}, None),
    ({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}, ("everyone (*)",)),
    ({"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:GetObject"}, ("everyone (*)",)),
    ({"Effect": "Allow", "Principal": {"AWS": [f"arn:aws:iam::{ACCOUNT}:root", OTHER]}, "Action": "s3:*"},
     (f"account {OTHER}",)),
    ({"Effect": "Allow", "Principal": {"AWS": f"arn:aws-cn:sts::{OTHER}:assumed-role/r/s"}, "Action": "s3:*"},
     (f"account {OTHER} (arn:aws-cn:sts::{OTHER}:assumed-role/r/s)",)),
    ({"Effect": "Allow", "Principal": {"AWS": "AROAEXAMPLEID"}, "Action": "s3:*"},
     (f"principal AROAEXAMPLEID (not recognisably in account {ACCOUNT})",)),
    ({"Effect": "Allow", "Principal": {"Federated": "cognito-identity.amazonaws.com"}, "Action": "s3:*"},
     ("Federated principal cognito-identity.amazonaws.com",)),
    ({"Effect": "Allow", "NotPrincipal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "s3:*"},
     ("everyone except the NotPrincipal list",)),
])
def test_foreign_grants(statement, outsiders):
    found = foreign_grants({"Statement": [statement]}, ACCOUNT)
    assert (found[0].who if found else None) == outsiders


def test_a_grant_is_named_by_its_sid_or_its_position_and_printed_escaped():
    policy = {"Statement": [
        {"Effect": "Allow", "Principal": {"AWS": OTHER}, "NotAction": "s3:DeleteBucket"},
        {"Sid": "x\x1b[2J\u202e", "Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject", "s3:ListBucket"]},
    ]}
    assert [g.describe() for g in foreign_grants(policy, ACCOUNT)] == [
        f"statement #1 allows account {OTHER}: every action except s3:DeleteBucket",
        "statement 'x\\x1b[2J\\u202e' allows everyone (*): s3:GetObject, s3:ListBucket",
    ]


def test_own_key_that_is_gone_or_disabled(tmp_path, aws_env):
    arn = kms().create_key(Description="mine")["KeyMetadata"]["Arn"]
    write_config(tmp_path, extra=f"  kms_key: {arn}\n")
    result = cli(tmp_path, "bootstrap")
    assert result.exit_code == 0, result.output
    assert "unchanged kms-key" in result.output and "kms-key-rotation" not in result.output
    rule = s3().get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"] == arn

    kms().schedule_key_deletion(KeyId=arn.rsplit("/", 1)[1], PendingWindowInDays=7)
    check = cli(tmp_path, "bootstrap", "--check")
    assert check.exit_code == 1
    assert f"ERROR    kms-key: {arn} is PendingDeletion" in check.output

    write_config(tmp_path, extra="  kms_key: alias/not-there\n")
    check = cli(tmp_path, "bootstrap", "--check")
    assert check.exit_code == 1 and "kms-key: alias/not-there not found" in check.output


@pytest.mark.parametrize("state", [
    "", "  kms_key: aws-managed\n", "  kms_key: alias/mine\n", DYNAMODB, "  tls_policy: false\n",
    "  logging_bucket: demo-logs\n  lock: dynamodb\n  kms_key: aws-managed\n",
])
def test_every_item_comes_after_what_it_depends_on(tmp_path, state):
    listed = items(load(write_config(tmp_path, extra=state)))  # raises on an item listed too early
    names = [item.name for item in listed]
    assert names[0] == "bucket" and len(set(names)) == len(names)
    for item in listed:
        assert all(names.index(dep) < names.index(item.name) for dep in item.depends_on)


def test_read_only_clients_refuse_every_write(aws_env):
    s3_view = ReadOnly(s3())
    assert s3_view.get_bucket_policy.__name__ == "get_bucket_policy"
    for view, method in ((s3_view, "put_bucket_policy"), (s3_view, "create_bucket"),
                         (s3_view, "delete_bucket"), (ReadOnly(kms()), "create_key"),
                         (ReadOnly(boto3.client("dynamodb", region_name=REGION)), "update_table")):
        with pytest.raises(ReadOnlyViolation):
            getattr(view, method)
