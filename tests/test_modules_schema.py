"""Every aws_* resource and data block checked against the real hashicorp/aws schema (from the
cdktn-provider-aws wheel, mlcicd.awsschema): argument names, nested block names (inside
`dynamic` blocks too), computed-only attributes set by mistake, required arguments and
required/at-most-one blocks. Bodies come from mlcicd.hcl (python-hcl2); provider blocks are
not checked here."""

from __future__ import annotations

import textwrap
from collections import Counter
from pathlib import Path

import pytest

from mlcicd import hcl, moduledoc

ROOT = Path(__file__).resolve().parent.parent
TERRAFORM = ROOT / "terraform"
DIRS = moduledoc.module_dirs(TERRAFORM)
IDS = [str(d.relative_to(TERRAFORM)) for d in DIRS]

# Terraform's meta-arguments, valid on every resource/data block, never in the provider schema.
META_ARGUMENTS = {"count", "for_each", "provider", "depends_on"}
META_BLOCKS = {"lifecycle", "provisioner", "connection"}


@pytest.fixture(scope="session")
def schema():
    from mlcicd.awsschema import load_schema

    return load_schema()


def check_body(body: dict, block: dict, where: str, meta: tuple[set, set] = (set(), set())) -> list[str]:
    """Problems of one python-hcl2 block body against one schema block, recursively."""
    problems: list[str] = []
    attributes = block.get("attributes", {})
    block_types = block.get("block_types", {})
    meta_args, meta_blocks = meta
    counts: Counter[str] = Counter()
    dynamic: set[str] = set()
    given: set[str] = set()
    for name, value in body.items():
        if name.startswith("__") or name in meta_args or name in meta_blocks:
            continue
        if name == "dynamic":
            for item in value:
                for label, dyn in item.items():
                    if label not in block_types:
                        problems.append(f"{where}: unsupported dynamic block {label!r}")
                        continue
                    contents = dyn.get("content") or []
                    if len(contents) != 1:
                        problems.append(f"{where}: dynamic {label!r} needs exactly one content block")
                        continue
                    dynamic.add(label)
                    problems += check_body(contents[0], block_types[label]["block"], f"{where}.dynamic.{label}")
            continue
        # `name {}` and `name = {}` read alike; the schema says which an empty body is.
        empty_block = name in block_types and all(v == {} for v in value)
        if hcl.is_block_list(value) or empty_block:
            if name not in block_types:
                hint = " (it is an argument: write `name = ...`)" if name in attributes else ""
                problems.append(f"{where}: unsupported block {name!r}{hint}")
                continue
            counts[name] += len(value)
            for nested in value:
                problems += check_body(nested, block_types[name]["block"], f"{where}.{name}")
            continue
        given.add(name)
        if name not in attributes:
            hint = " (it is a nested block)" if name in block_types else ""
            problems.append(f"{where}: unsupported argument {name!r}{hint}")
        elif not (attributes[name].get("required") or attributes[name].get("optional")):
            problems.append(f"{where}: {name!r} is computed by the provider and cannot be set")
    for name, attr in attributes.items():
        if attr.get("required") and name not in given:
            problems.append(f"{where}: missing required argument {name!r}")
    for name, nested_type in block_types.items():
        if name in dynamic:
            continue  # how many a dynamic block makes is known only at plan time
        if counts[name] < nested_type.get("min_items", 0):
            problems.append(f"{where}: missing required block {name!r}")
        if nested_type.get("max_items") and counts[name] > nested_type["max_items"]:
            problems.append(f"{where}: at most {nested_type['max_items']} {name!r} block(s)")
    return problems


def check_module(module: hcl.Module, schema: dict) -> tuple[int, list[str]]:
    """(number of blocks checked, problems) for every aws_* resource and data block."""
    checked, problems = 0, []
    for res in module.resources:
        rtype, name = res.labels
        if not rtype.startswith("aws_"):
            continue
        managed = res.kind == "resource"
        kind = "resource_schemas" if managed else "data_source_schemas"
        where = f"{module.path.name}: {'' if managed else 'data.'}{rtype}.{name}"
        if rtype not in schema[kind]:
            problems.append(f"{where}: no such {'resource' if managed else 'data source'}")
            continue
        checked += 1
        problems += check_body(res.body, schema[kind][rtype]["block"], where, (META_ARGUMENTS, META_BLOCKS))
    return checked, problems


@pytest.mark.parametrize("directory", DIRS, ids=IDS)
def test_aws_blocks_match_the_provider_schema(directory, schema):
    checked, problems = check_module(hcl.load_module(directory), schema)
    assert not problems, "\n".join(problems)


def test_the_tree_has_aws_blocks_to_check(schema):
    total = sum(check_module(hcl.load_module(directory), schema)[0] for directory in DIRS)
    # Every module declares its resources; a loader that silently returned nothing would pass above.
    assert total >= 50, f"only {total} aws blocks found"


BROKEN = textwrap.dedent('''\
    resource "aws_s3_bucket" "a" {
      bukcet = "x"
    }

    resource "aws_codebuild_project" "b" {
      name         = "b"
      service_role = "arn"
      arn          = "set by hand"

      artifacts {
        type = "NO_ARTIFACTS"
      }

      source {
        type = "NO_SOURCE"
      }

      source {
        type = "NO_SOURCE"
      }

      dynamic "enviroment" {
        for_each = [1]
        content {
          image = "x"
        }
      }
    }

    resource "aws_codepipeline" "c" {
      name     = "c"
      role_arn = "arn"

      artifact_store {
        location = "bucket"
        type     = "S3"
      }

      stage {
        name = "Source"

        dynamic "action" {
          for_each = [1]
          content {
            name     = "Source"
            category = "Source"
            owner    = "AWS"
            provider = "CodeStarSourceConnection"
            version  = "1"
            configuraton = {}
          }
        }
      }

      trigger {
        provider_type = "CodeStarSourceConnection"
      }
    }

    data "aws_iam_policy_document" "d" {
      statement {
        actions = ["s3:GetObject"]
        principal {
          type        = "AWS"
          identifiers = ["*"]
        }
      }
    }

    resource "aws_not_a_thing" "e" {}
    ''')


def test_schema_check_catches_misspellings_and_missing_arguments(tmp_path, schema):
    (tmp_path / "main.tf").write_text(BROKEN)
    checked, problems = check_module(hcl.load_module(tmp_path), schema)
    text = "\n".join(problems)
    expected = [
        "aws_s3_bucket.a: unsupported argument 'bukcet'",
        "aws_codebuild_project.b: 'arn' is computed by the provider and cannot be set",
        "aws_codebuild_project.b: at most 1 'source' block(s)",
        "aws_codebuild_project.b: unsupported dynamic block 'enviroment'",
        "aws_codebuild_project.b: missing required block 'environment'",
        "aws_codepipeline.c.stage.dynamic.action: unsupported argument 'configuraton'",
        "aws_codepipeline.c.trigger: missing required block 'git_configuration'",
        "data.aws_iam_policy_document.d.statement: unsupported block 'principal'",
        "aws_not_a_thing.e: no such resource",
    ]
    for problem in expected:
        assert problem in text, f"not reported: {problem}\n--- reported:\n{text}"
    assert len(problems) == len(expected), text
    assert checked == 4  # aws_not_a_thing has no schema to check against
