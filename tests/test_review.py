"""The plan review: a real plan from the bundled Terraform, and plan.json shapes Terraform
produces that built-in resources cannot (drift, import, forget)."""

from __future__ import annotations

import json
import re
import shutil
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from mlcicd import policy, review
from mlcicd.cli import main
from mlcicd.masking import Masker
from mlcicd.plandir import PlanJSON
from mlcicd.review_format import FORMATS, render, render_markdown, render_text
from mlcicd.review_values import natural_key
from tests.conftest import write_config

SECRET = "db-pass-Zq81xk-not-shown"
NEW_SECRET = "db-pass-Rt55pw-not-shown"
TOKEN = "tok-7f3a9c2e11"

ROOT_MODULE = textwrap.dedent("""\
    terraform {
      backend "s3" {}
    }

    variable "project" { type = string }
    variable "environment" { type = string }
    variable "region" { type = string }
    variable "accounts" { type = map(string) }
    variable "account_id" { type = string }
    variable "assume_role_arn" { type = string }
    variable "repository" { type = string }
    variable "branch" { type = string }
    variable "size" { type = number }
    variable "model_version" { type = string }
    variable "label" { type = string }
    variable "db_password" {
      type      = string
      sensitive = true
    }

    resource "terraform_data" "item" {
      count = var.size
      input = "item-${count.index}"
    }

    resource "terraform_data" "model" {
      triggers_replace = var.model_version
      input            = var.model_version
    }

    resource "terraform_data" "endpoint" {
      triggers_replace = var.model_version
      lifecycle {
        create_before_destroy = true
      }
    }

    resource "terraform_data" "db" {
      input = var.db_password
    }

    resource "terraform_data" "label" {
      input = var.label
    }

    # An object, not a map: the versions' statements differ in shape.
    locals {
      statements = {
        v1 = [
          { Sid = "ReadModels", Effect = "Allow", Action = ["s3:GetObject"], Resource = "arn:aws:s3:::models/*" },
          { Sid = "LegacyWrite", Effect = "Allow", Action = "s3:PutObject", Resource = "arn:aws:s3:::legacy/*" },
        ]
        v2 = [
          { Sid = "ReadModels", Effect = "Allow", Action = ["s3:GetObject", "s3:ListBucket"],
            Resource = "arn:aws:s3:::models/*" },
          { Sid = "DenyInsecure", Effect = "Deny", Action = "s3:*", Resource = "*",
            Condition = { StringEquals = { "aws:UserAgent" = var.label } } },
        ]
      }
    }

    resource "terraform_data" "policy" {
      input = jsonencode({ Version = "2012-10-17", Statement = local.statements[var.model_version] })
    }

    output "password" {
      value     = var.db_password
      sensitive = true
    }

    output "model_version" {
      value = var.model_version
    }
    """)

MOVED = textwrap.dedent("""\
    resource "terraform_data" "fresh" {
      input = { name = "fresh", size = 2 }
    }

    resource "terraform_data" "renamed" {
      input = "stays"
    }

    moved {
      from = terraform_data.original
      to   = terraform_data.renamed
    }
    """)


def _configure(root: Path, *, size: int, version: str, password: str, label: str) -> None:
    write_config(root, extra=textwrap.dedent(f"""\
        masks:
          patterns: ["tok-[0-9a-f]{{10}}"]
        environments:
          app:
            account: staging
            dir: terraform/app
            assume_role: false
            vars:
              size: {size}
              model_version: "{version}"
              db_password: "{password}"
              label: "{label}"
        """))


@pytest.fixture(scope="module")
def real_plan(tmp_path_factory, emulator):
    """Apply v1, then plan v2: a destroy, a replace, a create-before-destroy, a sensitive update,
    a move, an update and output changes. Module-scoped: Terraform runs once for all formats."""
    import os

    import boto3

    root = tmp_path_factory.mktemp("review") / "proj"
    module_dir = root / "terraform" / "app"
    module_dir.mkdir(parents=True)
    (module_dir / "main.tf").write_text(ROOT_MODULE + 'resource "terraform_data" "original" {\n  input = "stays"\n}\n')
    _configure(root, size=3, version="v1", password=SECRET, label="plain")
    saved = dict(os.environ)
    emulator.reset()
    os.environ.update({
        "AWS_ENDPOINT_URL": emulator.url, "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing-secret-key-value", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true", "MLCICD_TERRAFORM": "bundled", "CI": "true",
        "XDG_CACHE_HOME": str(root.parent / "cache"),
    })
    try:
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="tfstate-test")
        runner = CliRunner()
        cfg = ["--config", str(root / "mlcicd.yaml")]
        first = runner.invoke(main, [*cfg, "apply", "app", "--auto-approve"])
        assert first.exit_code == 0, first.output
        (module_dir / "main.tf").write_text(ROOT_MODULE + MOVED)
        # A right-to-left override in a value: shown escaped, never raw.
        _configure(root, size=2, version="v2", password=NEW_SECRET, label=f"uses {TOKEN} \\u202e")
        out = root / "plan-out"
        second = runner.invoke(main, [*cfg, "plan", "app", "--out", str(out)])
        assert second.exit_code == 0, second.output
        yield root, out, second.output
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _review(root: Path, out: Path, *args: str):
    return CliRunner().invoke(main, ["--config", str(root / "mlcicd.yaml"), "review", str(out), *args])


def _no_secrets(text: str) -> None:
    for secret in (SECRET, NEW_SECRET, TOKEN):
        assert secret not in text


def _attrs(change: dict) -> dict[str, dict]:
    return {a["name"]: a for a in change["attributes"]}


def test_real_plan_json_format_counts_every_kind_of_change(real_plan):
    root, out, _ = real_plan
    result = _review(root, out, "--format", "json", "--no-checkov")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["counts"] == {"destroy": 1, "replace": 1, "create-before-destroy": 1, "create": 1, "update": 3,
                              "move": 1}
    assert data["offline"] is False
    by_action = {(c["action"], c["address"]) for c in data["changes"]}
    assert ("destroy", "terraform_data.item[2]") in by_action
    assert ("replace", "terraform_data.model") in by_action
    assert ("create-before-destroy", "terraform_data.endpoint") in by_action
    assert ("create", "terraform_data.fresh") in by_action
    assert ("move", "terraform_data.renamed") in by_action
    assert data["destructive"] == ["terraform_data.item[2]", "terraform_data.model", "terraform_data.endpoint"]
    destroy = next(c for c in data["changes"] if c["action"] == "destroy")
    assert destroy["reason"] == "count index out of range"
    model = next(c for c in data["changes"] if c["address"] == "terraform_data.model")
    assert model["replace_paths"] == ["triggers_replace"]
    db = next(c for c in data["changes"] if c["address"] == "terraform_data.db")
    assert db["action"] == "update"
    # The sensitive input changed (plan.json holds both values in clear): listed, never shown;
    # its derived output is not known until applied.
    attributes = _attrs(db)
    assert attributes["input"]["before"] == attributes["input"]["after"] == "(sensitive)"
    assert attributes["output"]["after"] == "(known after apply)"
    outputs = {o["name"]: o for o in data["outputs"]}
    assert outputs["model_version"]["before"] == '"v1"' and outputs["model_version"]["after"] == '"v2"'
    assert outputs["password"]["after"] == "(sensitive)"
    assert data["headline"].startswith("app: 1 to destroy, 1 to replace, 1 to create-before-destroy")
    _no_secrets(result.output)


def test_real_plan_attribute_details_for_each_kind_of_action(real_plan):
    root, out, _ = real_plan
    data = json.loads(_review(root, out, "--format", "json", "--no-checkov").output)
    changes = {(c["action"], c["address"]): c for c in data["changes"]}
    # create: the planned values, computed ones marked
    fresh = _attrs(changes[("create", "terraform_data.fresh")])
    assert fresh["input"]["before"] == "" and json.loads(fresh["input"]["after"]) == {"name": "fresh", "size": 2}
    assert fresh["id"]["after"] == fresh["output"]["after"] == "(known after apply)"
    # update: only what changes, masked, the bidi override shown as an escape
    label = _attrs(changes[("update", "terraform_data.label")])
    assert label["input"]["before"] == '"plain"' and label["input"]["after"] == '"uses *** \\u202e"'
    assert set(label) == {"input", "output"}
    # replace: the attribute forcing it is marked
    model = _attrs(changes[("replace", "terraform_data.model")])
    assert model["triggers_replace"]["forces_replacement"] is True
    assert (model["triggers_replace"]["before"], model["triggers_replace"]["after"]) == ('"v1"', '"v2"')
    assert model["input"]["forces_replacement"] is False
    # destroy: the values that go
    item = _attrs(changes[("destroy", "terraform_data.item[2]")])
    assert item["input"]["before"] == '"item-2"' and item["input"]["after"] == ""
    # move without changes: none
    assert changes[("move", "terraform_data.renamed")]["attributes"] == []


def test_real_plan_policy_change_is_a_statement_diff(real_plan):
    root, out, _ = real_plan
    data = json.loads(_review(root, out, "--format", "json", "--no-checkov").output)
    policy = next(c for c in data["changes"] if c["address"] == "terraform_data.policy")
    document = _attrs(policy)["input"]["document"]
    lines = [(d["kind"], d["path"], d["before"] or d["after"]) for d in document]
    assert ("added", "Statement ReadModels Action", "s3:ListBucket") in lines
    assert ("removed", "Statement LegacyWrite", "Allow s3:PutObject on arn:aws:s3:::legacy/*") in lines
    added = next(text for kind, path, text in lines if path == "Statement DenyInsecure")
    # The condition holds the label: masked, and its bidi override escaped, inside the document too.
    assert added.startswith("Deny s3:* on * when ") and "uses *** \\u202e" in added
    assert len(lines) == 3
    # The whole document is there too, not cut.
    assert '\\"Sid\\":\\"DenyInsecure\\"' in _attrs(policy)["input"]["after"]
    text = _review(root, out, "--no-checkov").output
    assert "      ~ input: JSON document" in text
    assert "          + Statement ReadModels Action: s3:ListBucket" in text
    assert "          - Statement LegacyWrite: Allow s3:PutObject on arn:aws:s3:::legacy/*" in text


def test_real_plan_text_lists_destructive_first_and_masks(real_plan):
    root, out, _ = real_plan
    result = _review(root, out, "--no-checkov")
    assert result.exit_code == 0, result.output
    text = result.output
    assert text.index("terraform_data.item[2]") < text.index("terraform_data.label")
    assert "! terraform_data.model  (cannot be updated in place; forced by triggers_replace)" in text
    assert '      ~ triggers_replace: "v1" → "v2"  (forces replacement)' in text
    assert '      ~ input: "plain" → "uses *** \\u202e"' in text
    assert '      - input = "item-2"' in text
    assert "\u202e" not in text
    _no_secrets(text)


def test_text_shortens_long_values_with_a_marker_json_keeps_them_whole():
    long = "s3://bucket/" + "k" * 200
    plan = _plan([_rc("aws_s3_object.o", ["update"], before={"source": "a"}, after={"source": long})])
    r = review.build("prod", plan, Masker())
    text = render(r, "text")
    assert '"s3://bucket/kkk' in text and "…[+" in text and "whole in --format json/html]" in text
    assert long not in text
    assert json.loads(json.loads(render(r, "json"))["changes"][0]["attributes"][0]["after"]) == long
    assert long in render(r, "html")


def test_real_plan_markdown_has_headline_and_a_section_per_action(real_plan):
    root, out, _ = real_plan
    result = _review(root, out, "--format", "markdown", "--no-checkov")
    assert result.exit_code == 0, result.output
    md = result.output
    assert md.splitlines()[0] == ("**app: 1 to destroy, 1 to replace, 1 to create-before-destroy, "
                                  "1 to create, 3 to update, 1 to move, 2 output changes**")
    headings = [line for line in md.splitlines() if line.startswith("### ")]
    assert headings == ["### ⚠️ Destroy (1)", "### ⚠️ Replace (destroy, then create) (1)",
                        "### ⚠️ Replace (create before destroy) (1)", "### Create (1)", "### Update in place (3)",
                        "### Move (1)", "### Outputs (2)"]
    assert "- `terraform_data.renamed` — from terraform_data.original" in md
    assert "<details><summary><code>terraform_data.item[2]</code> — count index out of range</summary>" in md
    assert "| `triggers_replace` (forces replacement) | `\"v1\"` | `\"v2\"` |" in md
    assert "`+ Statement ReadModels Action: s3:ListBucket`" in md
    _no_secrets(md)


def test_plan_directory_review_files_are_masked(real_plan):
    root, out, _ = real_plan
    for name in ("summary.txt", "review.md"):
        text = (out / name).read_text()
        assert "terraform_data.item[2]" in text
        _no_secrets(text)


def test_gate_blocks_with_exit_3_naming_addresses(real_plan):
    root, out, _ = real_plan
    result = _review(root, out, "--fail-on", "destroy,replace", "--no-checkov")
    assert result.exit_code == 3
    assert "terraform_data.item[2] (destroy)" in result.output
    assert "terraform_data.model (replace)" in result.output
    assert "terraform_data.endpoint (create-before-destroy)" in result.output
    assert "terraform_data.label" not in result.output.split("Error:")[1]
    # The review itself is still printed before the verdict.
    assert result.output.index("app: 1 to destroy") < result.output.index("Error:")


def test_gate_passes_when_nothing_matches(real_plan):
    root, out, _ = real_plan
    assert _review(root, out, "--fail-on", "import,drift,policy", "--no-checkov").exit_code == 0


def test_unknown_gate_is_a_usage_error(real_plan):
    root, out, _ = real_plan
    result = _review(root, out, "--fail-on", "destroy,explode", "--no-checkov")
    assert result.exit_code == 2
    assert "explode" in result.output and "Traceback" not in result.output


def test_review_of_a_missing_directory_is_a_usage_error(project):
    result = CliRunner().invoke(main, ["--config", str(project / "mlcicd.yaml"), "review",
                                       str(project / "nowhere")])
    assert result.exit_code == 2
    assert "neither a plan directory nor a plan.json" in result.output


# -- plan.json shapes the built-in resources cannot produce ------------------------------------


def _rc(address: str, actions: list[str], **extra) -> dict:
    type_ = address.split(".")[-2]
    change = {"actions": actions, "before": extra.pop("before", None), "after": extra.pop("after", None),
              "after_unknown": extra.pop("after_unknown", {}), "before_sensitive": extra.pop("before_sensitive", {}),
              "after_sensitive": extra.pop("after_sensitive", {})}
    if "importing" in extra:
        change["importing"] = extra.pop("importing")
    return {"address": address, "type": type_, "name": "x", "mode": "managed", "change": change, **extra}


def _plan(changes: list[dict], **extra) -> PlanJSON:
    return PlanJSON({"format_version": "1.2", "resource_changes": changes, **extra})


def test_import_forget_drift_and_nested_sensitive_values():
    plan = _plan([
        _rc("aws_s3_bucket.logs", ["no-op"], importing={"id": "acme-logs"}),
        _rc("aws_iam_role.ci", ["update"], importing={"id": "ci"},
            before={"name": "ci", "tags": {"a": "1"}}, after={"name": "ci", "tags": {"a": "2"}}),
        _rc("aws_sqs_queue.old", ["forget"]),
        _rc("aws_db_instance.main", ["update"],
            before={"config": {"password": "hunter2-secret", "size": 1}},
            after={"config": {"password": "hunter3-secret", "size": 2}},
            before_sensitive={"config": {"password": True}}, after_sensitive={"config": {"password": True}}),
        _rc("aws_kms_key.k", ["update"], before={"policy": "a"}, after={"policy": None},
            after_unknown={"policy": True}),
    ], resource_drift=[
        _rc("aws_s3_bucket.data", ["update"], before={"acl": "private"}, after={"acl": "public-read"}),
    ], output_changes={"url": {"actions": ["create"], "before": None, "after": None,
                               "after_unknown": True, "before_sensitive": False, "after_sensitive": False}})
    r = review.build("prod", plan, Masker())
    assert r.counts == {"forget": 1, "update": 3, "import": 2}
    assert [e.import_id for e in r.sections["import"]] == ["ci", "acme-logs"]
    assert [e.address for e in r.drift] == ["aws_s3_bucket.data"]
    db = next(e for e in r.sections["update"] if e.address == "aws_db_instance.main")
    assert db.attributes[0].before == '{"password": "(sensitive)", "size": 1}'
    kms = next(e for e in r.sections["update"] if e.address == "aws_kms_key.k")
    assert kms.attributes[0].after == "(known after apply)"
    assert r.outputs[0].after == "(known after apply)"
    for fmt in FORMATS:
        text = render(r, fmt)
        assert "hunter2-secret" not in text and "hunter3-secret" not in text
        assert "aws_s3_bucket.data" in text
    assert "Changed outside Terraform (1)" in render(r, "text")
    with pytest.raises(review.ReviewBlocked) as blocked:
        review.gate(r, frozenset({"drift"}))
    assert blocked.value.addresses == ("aws_s3_bucket.data",)


def test_a_sensitive_value_is_masked_wherever_it_appears():
    # The secret is sensitive in one resource and appears in clear in another's attribute.
    plan = _plan([
        _rc("aws_ssm_parameter.p", ["update"], before={"value": "old-secret-A1"}, after={"value": "new-secret-B2"},
            before_sensitive={"value": True}, after_sensitive={"value": True}),
        _rc("aws_lambda_function.f", ["update"], before={"env": "x"}, after={"env": "new-secret-B2"}),
    ])
    text = render(review.build("prod", plan, Masker()), "json")
    assert "new-secret-B2" not in text and "old-secret-A1" not in text
    assert '"after":"\\"***\\""' in text


def test_markdown_stays_readable_for_5000_changes():
    changes = [_rc(f"module.m{i % 7}.aws_s3_object.o[{i}]", ["create"], module_address=f"module.m{i % 7}")
               for i in range(4990)]
    changes += [_rc(f"aws_iam_role.r{i}", ["delete"]) for i in range(10)]
    md = render(review.build("prod", _plan(changes), Masker()), "markdown")
    lines = md.splitlines()
    assert lines[0] == "**prod: 10 to destroy, 4990 to create**"
    assert len(lines) < 60
    assert md.index("Destroy (10)") < md.index("Create (4990)")
    assert "- `aws_iam_role.r9`" in md  # a small section keeps one row per resource
    assert "| `module.m0 aws_s3_object` | 713 |" in md
    assert "… and 710 more" in md


def test_addresses_sort_naturally():
    changes = [_rc(f"aws_s3_object.o[{i}]", ["create"]) for i in (100, 2, 1000, 10, 1)]
    changes += [_rc(f'module.m["b{i}"].aws_sqs_queue.q', ["create"]) for i in (11, 9)]
    r = review.build("prod", _plan(changes), Masker())
    assert [e.address for e in r.sections["create"]] == [
        "aws_s3_object.o[1]", "aws_s3_object.o[2]", "aws_s3_object.o[10]", "aws_s3_object.o[100]",
        "aws_s3_object.o[1000]", 'module.m["b9"].aws_sqs_queue.q', 'module.m["b11"].aws_sqs_queue.q']


def test_control_and_bidi_characters_in_names_and_values_are_escaped():
    plan = _plan([_rc("aws_s3_bucket.evil\u202e", ["update"], before={"tags\x1b[31m": "a"},
                      after={"tags\x1b[31m": "b\u2066\x85"})],
                 output_changes={"out\x07": {"actions": ["create"], "after": "x\u202ey", "before": None}})
    for fmt in FORMATS:
        text = render(review.build("prod", plan, Masker()), fmt)
        for raw in ("\u202e", "\x1b", "\u2066", "\x85", "\x07"):
            assert raw not in text, (fmt, raw)
        assert "\\u202e" in text and "\\x1b" in text


def test_a_lone_surrogate_in_plan_json_is_shown_escaped_in_every_format(tmp_path):
    # JSON can spell half of a surrogate pair ("\\ud800"); Python reads it into a str that no
    # UTF-8 output can hold, so printing it raw ended the review with a UnicodeEncodeError.
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"format_version": "1.2", "resource_changes": [
        _rc("aws_s3_object.o", ["create"], after={"key": "x\ud800y", "\udc00": "v"})]}))
    config = write_config(tmp_path)
    for fmt in FORMATS:
        result = CliRunner().invoke(main, ["--config", str(config), "review", str(plan),
                                           "--format", fmt, "--no-checkov"])
        assert result.exit_code == 0, (fmt, result.output, result.exception)
        assert "\ud800" not in result.stdout and "\udc00" not in result.stdout, fmt
        assert "\\ud800y" in result.stdout and "\\udc00" in result.stdout, fmt  # escaped (twice in json)


def test_markdown_cuts_groups_past_the_row_limit():
    changes = [_rc(f"aws_t{i}.x", ["create"]) for i in range(120)]
    md = render_markdown(review.build("prod", _plan(changes), Masker()), max_rows=50)
    assert "… and 70 more groups (70 changes)" in md


def test_checkov_failures_are_listed(tmp_path):
    # checkov reads aws resources from planned_values; an unencrypted, unversioned bucket fails checks.
    bucket = {"address": "aws_s3_bucket.data", "mode": "managed", "type": "aws_s3_bucket", "name": "data",
              "provider_name": "registry.terraform.io/hashicorp/aws", "schema_version": 0,
              "values": {"bucket": "acme-data", "force_destroy": False, "tags": None}}
    data = {"format_version": "1.2", "terraform_version": "1.15.0",
            "planned_values": {"root_module": {"resources": [bucket]}},
            "resource_changes": [_rc("aws_s3_bucket.data", ["create"], after=bucket["values"])],
            "configuration": {"root_module": {"resources": [
                {"address": "aws_s3_bucket.data", "mode": "managed", "type": "aws_s3_bucket", "name": "data",
                 "expressions": {"bucket": {"constant_value": "acme-data"}}}]}}}
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(data))
    if not policy.checkov_available():
        pytest.fail("checkov is a test dependency and must be installed")
    verdict = policy.run_checkov(path, Masker())
    assert verdict.error == ""
    assert verdict.failed, "an unencrypted bucket without versioning must fail some checkov check"
    assert {f.address for f in verdict.failed} == {"aws_s3_bucket.data"}
    text = render(review.build("prod", PlanJSON(data), Masker()).with_policy(verdict), "text")
    assert f"{verdict.failed[0].check_id} aws_s3_bucket.data" in text
    with pytest.raises(review.ReviewBlocked):
        review.gate(review.build("prod", PlanJSON(data), Masker()).with_policy(verdict), frozenset({"policy"}))


def test_a_checkov_crash_is_reported_not_raised(tmp_path):
    verdict = policy.run_checkov(tmp_path / "plan.json", Masker(["s3cr3t-value"]),
                                runner=lambda argv: (2, "", "boom: s3cr3t-value\n"))
    assert verdict.error == "boom: ***"
    assert "could not run: boom: ***" in render_text(review.Review("x", {}, policy=verdict))


def test_checkov_runs_in_the_background_with_progress_until_it_ends(tmp_path):
    import threading

    release, started = threading.Event(), threading.Event()
    seen: list[list[str]] = []

    def slow_checkov(argv: list[str]) -> tuple[int, str, str]:
        seen.append(argv)
        started.set()
        assert release.wait(60), "the review never let checkov finish"
        report = {"summary": {"passed": 3}, "results": {"failed_checks": [], "skipped_checks": [
            {"check_id": "CKV_AWS_144", "check_name": "replication", "resource_address": "aws_s3_bucket.b",
             "check_result": {"result": "SKIPPED", "suppress_comment": "a reason\u202e"}}]}}
        return 0, json.dumps(report), ""

    scan = policy.start(tmp_path / "plan.json", tmp_path / "root", runner=slow_checkov)
    assert started.wait(60)  # running while the caller goes on with its own work
    progress: list[float] = []

    def tick(seconds: float) -> None:
        progress.append(seconds)
        if len(progress) == 2:
            release.set()

    verdict = scan.wait(Masker(), progress=tick, every=0.01)
    assert len(progress) >= 2 and progress == sorted(progress)
    assert seen[0][-2:] == ["--repo-root-for-plan-enrichment", str(tmp_path / "root")]
    assert verdict.passed == 3 and verdict.failed == ()
    assert verdict.skipped == (policy.Finding("CKV_AWS_144", "replication", "aws_s3_bucket.b", "a reason\\u202e"),)
    text = render_text(review.Review("x", {}, policy=verdict))
    assert "0 failed, 1 skipped as justified in the sources" in text
    assert "CKV_AWS_144 aws_s3_bucket.b: skipped: a reason\\u202e" in text


def test_a_bare_plan_json_file_can_be_reviewed(tmp_path, project):
    path = tmp_path / "plan.json"
    path.write_text(json.dumps({"format_version": "1.2", "resource_changes": [
        _rc("terraform_data.a", ["delete"])]}))
    shutil.copy(project / "mlcicd.yaml", tmp_path / "mlcicd.yaml")
    result = CliRunner().invoke(main, ["--config", str(project / "mlcicd.yaml"), "review", str(path),
                                       "--no-checkov"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("plan: 1 to destroy")


@given(st.text(st.sampled_from("ab[]\"._0129²\u0663m"), max_size=16))
def test_the_natural_sort_key_pads_every_number_whatever_the_address(text):
    # natural_key takes a short way for the usual `…[12]`; it must agree with the definition.
    assert natural_key(text) == re.sub(r"\d+", lambda m: m[0].zfill(24), text)
