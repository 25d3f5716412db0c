"""The pipeline's shape and the tree's security, read offline: the six stages in order with the
actions the buildspec expects, no IAM policy allowing "*" on "*", and checkov with no failed
check (every skip inline, with its reason)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mlcicd import moduledoc

ROOT = Path(__file__).resolve().parent.parent
TERRAFORM = ROOT / "terraform"
DIRS = moduledoc.module_dirs(TERRAFORM)
IDS = [str(d.relative_to(TERRAFORM)) for d in DIRS]
STAGES = ["Source", "Build", "Train", "Test", "Approval", "Deploy"]


def text(body: dict, name: str) -> str | None:
    attr = (body.get("Attributes") or {}).get(name)
    return moduledoc.expression_text(attr) if attr else None


def literal(body: dict, name: str):
    return json.loads(text(body, name))


def blocks(body: dict, kind: str) -> list[dict]:
    return [b["Body"] for b in body.get("Blocks") or [] if b["Type"] == kind]


@pytest.fixture(scope="module")
def pipeline() -> dict:
    module = moduledoc.load(TERRAFORM / "modules" / "pipeline")
    [resource] = [r for r in module.resources() if r["Type"] == "aws_codepipeline"]
    return resource["Config"]


def test_six_stages_in_order(pipeline):
    assert [literal(stage, "name") for stage in blocks(pipeline, "stage")] == STAGES


def test_v2_pipeline_triggered_by_a_push_on_the_branch(pipeline):
    assert literal(pipeline, "pipeline_type") == "V2"
    [trigger] = blocks(pipeline, "trigger")
    [git] = blocks(trigger, "git_configuration")
    assert literal(git, "source_action_name") == "Source"
    [push] = blocks(git, "push")
    [branches] = blocks(push, "branches")
    assert text(branches, "includes") == "[var.branch]"


def _actions(pipeline: dict) -> dict[str, list[dict]]:
    return {literal(stage, "name"): blocks(stage, "action") for stage in blocks(pipeline, "stage")}


def test_every_code_running_action_sets_its_mlcicd_action(pipeline):
    """Each CodeBuild action passes MLCICD_ACTION (via local.action_env) for the buildspec."""
    expected = {"Build": ["build"], "Train": ["train"], "Test": ["test"], "Approval": ["plan-prod"],
                "Deploy": ["deploy"]}
    for stage, actions in _actions(pipeline).items():
        found = [re.search(r'local\.action_env\["([\w-]+)"\]', text(a, "configuration")).group(1)
                 for a in actions if literal(a, "provider") == "CodeBuild"]
        assert found == expected.get(stage, []), stage


def test_source_uses_the_connection(pipeline):
    [source] = _actions(pipeline)["Source"]
    assert literal(source, "provider") == "CodeStarSourceConnection"
    assert "ConnectionArn        = var.connection_arn" in text(source, "configuration")


def test_train_exports_the_model_package_to_test(pipeline):
    actions = _actions(pipeline)
    [train] = actions["Train"]
    [test] = actions["Test"]
    assert literal(train, "namespace") == "Train"
    config = text(test, "configuration")
    assert '{ name = "MODEL_PACKAGE_ARN", value = "#{Train.MODEL_PACKAGE_ARN}"' in config


def test_approval_shows_the_prod_plan_review(pipeline):
    plan, approve = _actions(pipeline)["Approval"]
    assert literal(plan, "name") == "PlanProd" and literal(plan, "run_order") == 1
    assert literal(plan, "namespace") == "PlanProd"
    assert literal(approve, "category") == "Approval" and literal(approve, "provider") == "Manual"
    assert literal(approve, "run_order") == 2
    config = text(approve, "configuration")
    assert "NotificationArn    = aws_sns_topic.this.arn" in config
    assert "#{PlanProd.PLAN_HEADLINE}" in config
    assert 'ExternalEntityLink = "#{PlanProd.REVIEW_URL}"' in config
    [deploy] = _actions(pipeline)["Deploy"]
    assert literal(deploy, "input_artifacts") == ["source"] + literal(plan, "output_artifacts")


# -- IAM: nothing allows "*" on "*" --------------------------------------------------------------


def _expand(source: str, module: moduledoc.Module, depth: int = 0) -> str:
    """`source` followed by the source of the locals it refers to (so values built elsewhere count)."""
    local_defs = module.raw.get("Locals") or {}
    out = source
    for name in re.findall(r"\blocal\.(\w+)", source):
        if name in local_defs and depth < 3:
            out += "\n" + _expand(moduledoc.expression_text(local_defs[name]), module, depth + 1)
    return out


def _strings(source: str | None, module: moduledoc.Module) -> set[str]:
    return set(re.findall(r'"((?:[^"\\]|\\.)*)"', _expand(source or "", module)))


def _statements(body: dict) -> list[dict]:
    found = blocks(body, "statement")
    for dyn in body.get("Blocks") or []:
        if dyn["Type"] == "dynamic" and dyn["Labels"] == ["statement"]:
            found += blocks(dyn["Body"], "content")
    return found


def star_on_star(module: moduledoc.Module) -> list[str]:
    """Allow statements whose actions and resources both include "*" (or that use not_actions)."""
    problems = []
    for res in module.resources():
        where = f"{module.path.name}: {res['Type']}.{res['Name']}"
        if res["Type"] == "aws_iam_policy_document":
            for i, statement in enumerate(_statements(res["Config"])):
                if "Deny" in _strings(text(statement, "effect"), module):
                    continue
                if text(statement, "not_actions") or text(statement, "not_resources"):
                    problems.append(f"{where} statement {i}: Allow with not_actions/not_resources")
                actions = _strings(text(statement, "actions"), module)
                resources = _strings(text(statement, "resources"), module)
                if "*" in actions and "*" in resources:
                    problems.append(f"{where} statement {i}: allows * on *")
        for name in ("policy", "assume_role_policy", "resource_policy", "inline_policy"):
            source = _expand(text(res["Config"], name) or "", module)
            if re.search(r'Action"?\s*[=:]\s*(\[[^\]]*)?"\*"', source) and \
                    re.search(r'Resource"?\s*[=:]\s*(\[[^\]]*)?"\*"', source):
                problems.append(f"{where}.{name}: allows * on *")
    return problems


@pytest.mark.parametrize("directory", DIRS, ids=IDS)
def test_no_policy_allows_everything_on_everything(directory):
    assert not star_on_star(moduledoc.load(directory))


def test_star_on_star_is_caught(tmp_path):
    (tmp_path / "main.tf").write_text(textwrap.dedent('''\
        locals {
          everything = ["*"]
        }

        data "aws_iam_policy_document" "bad" {
          statement {
            sid       = "Admin"
            actions   = local.everything
            resources = ["*"]
          }

          statement {
            effect    = "Deny"
            actions   = ["*"]
            resources = ["*"]
          }

          dynamic "statement" {
            for_each = [1]
            content {
              actions   = ["*"]
              resources = ["*"]
            }
          }
        }

        data "aws_iam_policy_document" "fine" {
          statement {
            actions   = ["s3:*"]
            resources = ["*"]
          }
        }

        resource "aws_iam_role_policy" "inline" {
          role   = "r"
          policy = jsonencode({ Statement = [{ Effect = "Allow", Action = "*", Resource = "*" }] })
        }
        '''))
    problems = star_on_star(moduledoc.load(tmp_path))
    assert problems == [
        f"{tmp_path.name}: aws_iam_policy_document.bad statement 0: allows * on *",
        f"{tmp_path.name}: aws_iam_policy_document.bad statement 2: allows * on *",
        f"{tmp_path.name}: aws_iam_role_policy.inline.policy: allows * on *",
    ]


def _statements_of(module_dir: str, document: str) -> list[tuple[set[str], str]]:
    """(actions, resources source) of each statement of one aws_iam_policy_document."""
    module = moduledoc.load(TERRAFORM / "modules" / module_dir)
    [doc] = [r for r in module.resources() if r["Type"] == "aws_iam_policy_document" and r["Name"] == document]
    return [(_strings(text(st, "actions"), module), text(st, "resources")) for st in _statements(doc["Config"])]


def test_codebuild_may_assume_only_the_named_target_roles():
    assuming = [resources for actions, resources in _statements_of("pipeline", "codebuild")
                if any(a.startswith("sts:") for a in actions)]
    assert assuming == ["local.target_role_arns"]
    module = moduledoc.load(TERRAFORM / "modules" / "pipeline")
    targets = moduledoc.expression_text(module.raw["Locals"]["target_role_arns"])
    assert "module.names.deploy_role_arns[env]" in targets and "module.names.runner_role_arns[env]" in targets
    assert "*" not in targets


def test_pipeline_uses_only_its_connection_under_both_service_names():
    using = [(actions, resources) for actions, resources in _statements_of("pipeline", "codepipeline")
             if any(a.endswith(":UseConnection") for a in actions)]
    assert using == [({"codestar-connections:UseConnection", "codeconnections:UseConnection"},
                      "[var.connection_arn]")]


# -- checkov -----------------------------------------------------------------------------------


@pytest.mark.slow  # ~35 s on 2 cores: checkov builds a graph of every module instance.
def test_checkov_finds_no_failed_check_and_every_skip_has_a_reason():
    result = subprocess.run(
        [sys.executable, "-m", "checkov.main", "-d", str(TERRAFORM), "--framework", "terraform",
         "--skip-download", "-o", "json"],
        capture_output=True, text=True, timeout=600, cwd=ROOT)
    report = json.loads(result.stdout)
    report = report[0] if isinstance(report, list) else report
    summary = report["summary"]
    failed = [f"{c['check_id']} {c['resource']} ({c['file_path']})" for c in report["results"]["failed_checks"]]
    assert not failed, "checkov failed checks:\n" + "\n".join(failed)
    assert summary["parsing_errors"] == 0
    assert summary["passed"] > 100 and summary["resource_count"] >= 50
    for skipped in report["results"]["skipped_checks"]:
        reason = skipped["check_result"].get("suppress_comment", "")
        assert len(reason) > 20, f"{skipped['check_id']} on {skipped['resource']} is skipped without a reason"
    print(f"checkov: passed {summary['passed']}, failed {summary['failed']}, skipped {summary['skipped']}")
