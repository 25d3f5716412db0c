"""The review of the repository's own environments, planned offline (the plans of
test_offline_envs): every resource's planned values, policy documents as statements, unknown
values marked, the offline mark in every format, and checkov on staging's plan (and on
roles-staging's, which holds staging's key, code bucket and execution role) with the modules'
justified skips, so that `--fail-on policy` does not block every release."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from mlcicd.cli import main
from tests.browser import rendered_dom
from tests.test_offline_envs import PLANNED, REPO, plans, repo  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow


def _run(repo, env: str, *args: str):  # noqa: F811
    result = CliRunner().invoke(main, ["--config", str(repo / "mlcicd.yaml"), "review", str(repo / "plans" / env),
                                       *args])
    assert result.exit_code == 0, result.output
    return result


def _review(repo, env: str, *args: str) -> str:  # noqa: F811
    return _run(repo, env, *args).stdout  # checkov's progress lines go to stderr


@pytest.mark.parametrize("env", PLANNED)
def test_every_environment_review_shows_planned_values_and_unknowns(repo, plans, env):  # noqa: F811
    data = json.loads(_review(repo, env, "--format", "json", "--no-checkov"))
    assert data["offline"] is True
    assert data["headline"].startswith(f"{env} (offline preview, cannot be applied): ")
    shown = {c["address"]: {a["name"]: a for a in c["attributes"]} for c in data["changes"]}
    for rc in plans[env]["resource_changes"]:
        if rc["mode"] != "managed":
            continue
        attributes = shown[rc["address"]]
        change = rc["change"]
        assert attributes, f"{rc['address']}: a create without details"
        for name, unknown in change["after_unknown"].items():
            if unknown is True:
                assert attributes[name]["after"] == "(known after apply)", (rc["address"], name)
        for name, value in change["after"].items():
            if value not in (None, [], {}, "") and not change["after_sensitive"].get(name):
                assert attributes[name]["after"] not in ("", "null", "(known after apply)"), (rc["address"], name)
            if isinstance(value, str) and value.startswith("{") and '"Statement"' in value:
                statements = json.loads(value)["Statement"]
                document = attributes[name]["document"]
                assert [d["kind"] for d in document] == ["added"] * len(statements), (rc["address"], name)
                for statement, line in zip(statements, document, strict=True):
                    actions = statement.get("Action") or statement.get("NotAction")
                    for action in actions if isinstance(actions, list) else [actions]:
                        assert action in line["after"]


@pytest.mark.parametrize("fmt", ["text", "markdown", "html"])
def test_the_offline_mark_is_in_every_format(repo, plans, fmt):  # noqa: F811
    out = _review(repo, "devops", "--format", fmt, "--no-checkov")
    assert "devops (offline preview, cannot be applied)" in out
    assert "cannot be applied" in out.split("devops (offline preview", 2)[-1]


def _justified_skips() -> set[tuple[str, str]]:
    """(check id, reason) of the skips written in the modules a reviewed plan here holds: the
    secure-bucket module's bucket, account-roles' roles."""
    found = set()
    for module in ("secure-bucket", "account-roles"):
        source = (REPO / "terraform" / "modules" / module / "main.tf").read_text()
        found |= set(re.findall(r"#checkov:skip=(CKV\w+):(.*)", source))
    return found


# staging is what the pipeline applies; roles-staging (applied by an administrator) holds its
# security baseline: the key, the code bucket and the SageMaker execution role.
@pytest.mark.parametrize("env", ["staging", "roles-staging"])
def test_staging_review_has_no_unjustified_policy_failure(repo, plans, env):  # noqa: F811
    result = _run(repo, env, "--format", "json", "--checkov", "--fail-on", "policy")
    assert result.stderr.startswith("checkov: checking plan.json in the background…\n")
    data = json.loads(result.stdout)
    policy = data["policy"]
    assert policy["error"] is None and policy["failed"] == []
    assert policy["passed"] > 0
    assert {(s["check_id"], s["reason"]) for s in policy["skipped"]} <= _justified_skips()
    assert "policy failure" not in data["headline"]
    if env == "roles-staging":
        assert policy["passed"] > 20
        bucket = "module.roles.module.ml_baseline[0].module.code_bucket.aws_s3_bucket.this"
        skipped = {(s["check_id"], s["reason"]) for s in policy["skipped"] if s["address"] == bucket}
        assert {"CKV2_AWS_62", "CKV_AWS_144"} <= {check for check, _ in skipped}


def test_roles_staging_review_page_in_chromium(repo, plans, tmp_path):  # noqa: F811
    page = tmp_path / "review.html"
    out = _review(repo, "roles-staging", "--format", "html", "--out", str(page), "--checkov")
    assert out.startswith("roles-staging (offline preview, cannot be applied): 17 to create")
    dom, _ = rendered_dom(page, tmp_path / "profile")
    assert "cannot be applied" in dom.by_id("offline").text
    assert [s.attrs["id"] for s in dom.find_all("section")] == ["create", "outputs", "policy"]
    assert len(dom.find_all("details", "resource")) == 17
    policy = dom.by_id("policy")
    assert "0 failed" in policy.text
    skipped = {tuple(td.text for td in tr.find_all("td")[1:4:2]) for tr in policy.find_all("tr", "skipped")}
    assert skipped and skipped <= _justified_skips()
    role = next(r for r in dom.find_all("details", "resource")
                if r.find_all("code", "address")[0].text == "module.roles.module.ml_baseline[0].aws_iam_role.sagemaker")
    assert any("Allow sts:AssumeRole" in li.text for li in role.find_all("li", "added"))
