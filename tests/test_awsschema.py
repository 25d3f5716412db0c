"""The hashicorp/aws schema index built from the cdktn-provider-aws wheel: facts about the real
provider that Terraform relies on, the cache, and the storage-type translation."""

from __future__ import annotations

import json
import time

import pytest

from mlcicd import awsschema


@pytest.fixture(scope="session")
def schema():
    # The user's cache: built once per machine (about 15 s), then read in well under a second.
    return awsschema.load_schema()


def block_of(schema: dict, kind: str, name: str) -> dict:
    return schema[kind][name]["block"]


def test_every_resource_and_data_source_is_indexed(schema):
    assert len(schema["resource_schemas"]) > 1500
    assert len(schema["data_source_schemas"]) > 600
    for name in ("aws_codepipeline", "aws_codebuild_project", "aws_sagemaker_pipeline", "aws_kms_key",
                 "aws_s3_bucket_policy", "aws_iam_role"):
        assert name in schema["resource_schemas"]


def test_s3_bucket_flags_and_types(schema):
    attrs = block_of(schema, "resource_schemas", "aws_s3_bucket")["attributes"]
    assert attrs["arn"] == {"type": "string", "computed": True}  # computed only: no input twin
    assert attrs["bucket"] == {"type": "string", "optional": True, "computed": True}
    assert attrs["force_destroy"] == {"type": "bool", "optional": True}
    assert attrs["tags"] == {"type": ["map", "string"], "optional": True}
    assert attrs["tags_all"]["computed"] is True


def test_nested_blocks_keep_nesting_mode_and_limits(schema):
    bucket = block_of(schema, "resource_schemas", "aws_s3_bucket")["block_types"]
    assert bucket["cors_rule"]["nesting_mode"] == "list"
    assert bucket["cors_rule"]["block"]["attributes"]["allowed_methods"] == {
        "type": ["list", "string"], "required": True}
    assert bucket["grant"]["nesting_mode"] == "set"
    assert bucket["logging"]["max_items"] == 1
    assert bucket["timeouts"]["nesting_mode"] == "single"
    pipeline = block_of(schema, "resource_schemas", "aws_codepipeline")
    assert pipeline["attributes"]["role_arn"]["required"] is True
    assert pipeline["block_types"]["stage"]["min_items"] >= 1
    action = pipeline["block_types"]["stage"]["block"]["block_types"]["action"]["block"]["attributes"]
    assert action["configuration"]["type"] == ["map", "string"]


def test_computed_nested_objects_are_attributes(schema):
    vpc = block_of(schema, "data_source_schemas", "aws_vpc")["attributes"]
    kind, element = vpc["cidr_block_associations"]["type"]
    assert kind == "list" and element[0] == "object"
    assert element[1]["cidr_block"] == "string"


def test_data_sources_and_provider(schema):
    doc = block_of(schema, "data_source_schemas", "aws_iam_policy_document")
    assert doc["attributes"]["json"] == {"type": "string", "computed": True}
    statement = doc["block_types"]["statement"]
    assert statement["nesting_mode"] == "list"
    assert statement["block"]["block_types"]["principals"]["nesting_mode"] == "set"
    provider = schema["provider"]["block"]
    assert provider["attributes"]["region"]["optional"] is True
    assert {"assume_role", "default_tags"} <= set(provider["block_types"])


def test_cache_is_reused(tmp_path, monkeypatch, schema):
    path = awsschema.cache_file(tmp_path)
    path.write_text(json.dumps(schema))
    # The wheel is not read again once the cache exists.
    monkeypatch.setattr(awsschema, "build_schema", lambda _: pytest.fail("rebuilt despite a cache"))
    started = time.perf_counter()
    loaded = awsschema.load_schema(tmp_path)
    elapsed = time.perf_counter() - started
    assert loaded == schema
    print(f"schema load from cache: {elapsed * 1000:.0f} ms")


def test_cache_name_is_keyed_by_wheel_and_format(tmp_path):
    name = awsschema.cache_file(tmp_path).name
    assert awsschema.wheel_version() in name and f"f{awsschema.FORMAT}" in name


def test_missing_wheel_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(awsschema.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(awsschema.SchemaUnavailable) as caught:
        awsschema.assembly_path()
    assert "cdktn-provider-aws" in str(caught.value) and "mlcicd[offline]" in str(caught.value)


@pytest.mark.parametrize(("kind", "storage", "expected"), [
    ("simple", "string", "string"),
    ("simple", "number", "number"),
    ("simple", "boolean", "bool"),
    ("simple", "any", "dynamic"),
    ("list", "stringList", ["list", "string"]),
    ("set", "stringList", ["set", "string"]),
    ("set", "numberList", ["set", "number"]),
    ("map", "stringMap", ["map", "string"]),
    ("map", "booleanMap", ["map", "bool"]),
    ("set", "stringListList", ["set", ["list", "string"]]),
    ("map", "stringListMap", ["map", ["list", "string"]]),
    ("map", "stringMapMap", ["map", ["map", "string"]]),
    ("list", "stringMapList", ["list", ["map", "string"]]),
])
def test_storage_types(kind, storage, expected):
    assert awsschema._storage_type(kind, storage) == expected


@pytest.mark.slow
def test_building_from_the_wheel_gives_the_cached_index(tmp_path, schema):
    """The build itself (about 10-20 s: it reads ~280 MB of bindings): deterministic, and the
    same as the cache every other test reads, so a stale cache of an older format shows here."""
    built = awsschema.load_schema(tmp_path)
    assert awsschema.cache_file(tmp_path).is_file()
    assert built == schema
