"""Every aws_* resource and data block checked against the real hashicorp/aws schema (from the
cdktn-provider-aws wheel, mlcicd.awsschema): argument names, nested block names (inside
`dynamic` blocks too), computed-only attributes set by mistake, required arguments and
required/at-most-one blocks. Bodies come from Terraform's own loader (which does not return
provider blocks, so those are not checked here)."""

from __future__ import annotations

import textwrap
from collections import Counter
from pathlib import Path

import pytest

from mlcicd import moduledoc

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
    """Problems of one loader body against one schema block, recursively."""
    problems: list[str] = []
    attributes = block.get("attributes", {})
    block_types = block.get("block_types", {})
    meta_args, meta_blocks = meta
    for name in body.get("Attributes") or {}:
        if name in meta_args:
            continue
        if name not in attributes:
            hint = " (it is a nested block)" if name in block_types else ""
            problems.append(f"{where}: unsupported argument {name!r}{hint}")
        elif not (attributes[name].get("required") or attributes[name].get("optional")):
            problems.append(f"{where}: {name!r} is computed by the provider and cannot be set")
    counts: Counter[str] = Counter()
    dynamic: set[str] = set()
    for nested in body.get("Blocks") or []:
        kind = nested["Type"]
        if kind in meta_blocks:
            continue
        if kind == "dynamic":
            name = nested["Labels"][0]
            if name not in block_types:
                problems.append(f"{where}: unsupported dynamic block {name!r}")
                continue
            contents = [b for b in nested["Body"].get("Blocks") or [] if b["Type"] == "content"]
            if len(contents) != 1:
                problems.append(f"{where}: dynamic {name!r} needs exactly one content block")
                continue
            dynamic.add(name)
            problems += check_body(contents[0]["Body"], block_types[name]["block"], f"{where}.dynamic.{name}")
            continue
        if kind not in block_types:
            hint = " (it is an argument: write `name = ...`)" if kind in attributes else ""
            problems.append(f"{where}: unsupported block {kind!r}{hint}")
            continue
        counts[kind] += 1
        problems += check_body(nested["Body"], block_types[kind]["block"], f"{where}.{kind}")
    given = set(body.get("Attributes") or {})
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


def check_module(module: moduledoc.Module, schema: dict) -> tuple[int, list[str]]:
    """(number of blocks checked, problems) for every aws_* resource and data block."""
    checked, problems = 0, []
    for res in module.resources():
        if not res["Type"].startswith("aws_"):
            continue
        kind = "resource_schemas" if res["Mode"] == "managed" else "data_source_schemas"
        where = f"{module.path.name}: {'data.' if res['Mode'] == 'data' else ''}{res['Type']}.{res['Name']}"
        if res["Type"] not in schema[kind]:
            problems.append(f"{where}: no such {'resource' if res['Mode'] == 'managed' else 'data source'}")
            continue
        checked += 1
        problems += check_body(res["Config"], schema[kind][res["Type"]]["block"], where, (META_ARGUMENTS, META_BLOCKS))
    return checked, problems


@pytest.mark.parametrize("directory", DIRS, ids=IDS)
def test_aws_blocks_match_the_provider_schema(directory, schema):
    checked, problems = check_module(moduledoc.load(directory), schema)
    assert not problems, "\n".join(problems)


def test_the_tree_has_aws_blocks_to_check(schema):
    total = 0
    for directory in DIRS:
        try:
            total += check_module(moduledoc.load(directory), schema)[0]
        except moduledoc.ModuleLoadError:
            continue  # reported by test_aws_blocks_match_the_provider_schema
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
    checked, problems = check_module(moduledoc.load(tmp_path), schema)
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
