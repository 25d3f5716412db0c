"""The stand-in provider's protocol methods on real tfplugin6 messages and msgpack values (no
Terraform here: tests/test_offline.py runs it under Terraform), and its pure parts."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mlcicd import awsschema
from mlcicd.offline import datasources, provider, values

WHO = datasources.Identity("123456789012", "eu-west-1")


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory):
    cache = awsschema.default_cache_dir()
    types = tmp_path_factory.mktemp("types") / "types.json"
    types.write_text(json.dumps(["aws_s3_bucket", "aws_caller_identity", "aws_iam_policy_document", "aws_nope"]))
    return provider.StandIn(provider.schema_path(cache), WHO, types)


def dynamic(stand_in, value):
    return stand_in.pb.DynamicValue(msgpack=values.encode(value))


def test_schema_served_is_the_types_the_configuration_uses(stand_in):
    served = stand_in.pb.GetProviderSchema.Response.FromString(stand_in.GetProviderSchema(None))
    assert set(served.resource_schemas) == {"aws_s3_bucket"}
    # aws_s3_bucket is a data source too; aws_nope is in neither and is left out.
    assert set(served.data_source_schemas) == {"aws_s3_bucket", "aws_caller_identity", "aws_iam_policy_document"}
    assert {a.name for a in served.provider.block.attributes} >= {"region", "allowed_account_ids"}
    bucket = {a.name: a for a in served.resource_schemas["aws_s3_bucket"].block.attributes}
    assert json.loads(bucket["tags"].type) == ["map", "string"] and bucket["arn"].computed


def test_plan_marks_unset_computed_attributes_unknown(stand_in):
    block = provider.block_dict(stand_in.full.resource_schemas["aws_s3_bucket"].block)
    proposed = {name: None for name in block["attributes"]}
    proposed |= {name: [] for name, b in block["block_types"].items() if b["nesting_mode"] != "single"}
    proposed |= {"bucket": "demo", "force_destroy": True, "timeouts": None}
    request = stand_in.pb.PlanResourceChange.Request(
        type_name="aws_s3_bucket", proposed_new_state=dynamic(stand_in, proposed))
    planned = values.decode(stand_in.PlanResourceChange(request).planned_state.msgpack)
    assert planned["bucket"] == "demo" and planned["force_destroy"] is True
    assert isinstance(planned["arn"], values.Unknown) and isinstance(planned["tags_all"], values.Unknown)
    assert planned["tags"] is None  # optional, not computed: stays as configured


def test_plan_keeps_what_the_prior_state_knows():
    block = {"attributes": {"arn": {"type": "string", "computed": True}, "name": {"type": "string"}},
             "block_types": {"rule": {"nesting_mode": "list", "block": {
                 "attributes": {"id": {"type": "string", "computed": True}}}}}}
    planned = values.plan_unknowns(block, {"arn": "arn:aws:x", "name": "n", "rule": [{"id": None}]})
    assert planned["arn"] == "arn:aws:x"
    assert isinstance(planned["rule"][0]["id"], values.Unknown)


def test_refined_unknowns_round_trip():
    refined = values.decode(b"\xc7\x03\x0c\x81\x01\xc3")  # ext 12: an unknown with a refinement
    assert isinstance(refined, values.Unknown)
    assert values.encode({"a": refined}) == b"\x81\xa1a\xc7\x03\x0c\x81\x01\xc3"


def test_apply_is_refused_with_a_reason(stand_in):
    response = stand_in.ApplyResourceChange(stand_in.pb.ApplyResourceChange.Request(type_name="aws_s3_bucket"))
    [diagnostic] = response.diagnostics
    assert diagnostic.severity == stand_in.pb.Diagnostic.ERROR
    assert "apply is not offered in an offline preview" in diagnostic.summary


def test_caller_identity_is_the_configured_account(stand_in):
    request = stand_in.pb.ReadDataSource.Request(
        type_name="aws_caller_identity", config=dynamic(stand_in, {"id": None}))
    state = values.decode(stand_in.ReadDataSource(request).state.msgpack)
    assert state["account_id"] == "123456789012" and state["id"] == "123456789012"
    assert state["arn"].startswith("arn:aws:iam::123456789012:")
    assert not any(isinstance(v, values.Unknown) for v in state.values())


def test_provider_region_wins(stand_in):
    stand_in.ConfigureProvider(stand_in.pb.ConfigureProvider.Request(config=dynamic(stand_in, {"region": "us-west-2"})))
    try:
        state = datasources.read("aws_region", {"attributes": {"region": {"type": "string", "computed": True}}},
                                 {"region": None}, stand_in.who)
        assert state["region"] == "us-west-2"
    finally:
        stand_in.who = WHO


def test_policy_document_is_the_real_json():
    config = {
        "version": None, "policy_id": None, "source_policy_documents": [json.dumps({"Statement": [
            {"Sid": "Keep", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"},
            {"Sid": "Replace", "Effect": "Allow", "Action": "s3:*", "Resource": "*"}]})],
        "override_policy_documents": None,
        "statement": [{
            "sid": "Replace", "effect": None, "actions": ["s3:GetObject", "s3:PutObject"],
            "not_actions": None, "resources": ["arn:aws:s3:::b/*"], "not_resources": None,
            "principals": [{"type": "AWS", "identifiers": ["arn:aws:iam::123456789012:root"]}],
            "not_principals": [],
            "condition": [{"test": "Bool", "variable": "aws:SecureTransport", "values": ["true"]}],
        }],
    }
    assert datasources.policy_document(config) == {"Version": "2012-10-17", "Statement": [
        {"Sid": "Keep", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"},
        {"Sid": "Replace", "Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject"],
         "Resource": "arn:aws:s3:::b/*", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
         "Condition": {"Bool": {"aws:SecureTransport": "true"}}},
    ]}


def test_everyone_principal_is_a_star():
    statement = datasources._statement({"principals": [{"type": "*", "identifiers": ["*"]}], "actions": ["s3:*"]})
    assert statement["Principal"] == "*"


def test_not_started_by_terraform_it_says_what_it_is():
    result = subprocess.run([sys.executable, "-m", "mlcicd.offline.provider"], capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin"}, timeout=60)
    assert result.returncode == 1
    assert "offline stand-in" in result.stderr and "mlcicd validate" in result.stderr
