"""`review DIR... --github-pr N`: one comment updated in place and a commit status, against a
small GitHub REST server on 127.0.0.1 (tests/github_server.py)."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlcicd import github, pr_review
from mlcicd.cli import main
from tests.conftest import write_config
from tests.github_server import REPO, GitHubServer, GitHubState
from tests.test_changes import commit_all, git
from tests.test_changes import repo as repo  # a fixture

TOKEN = "ghp_TestToken0123456789abcdefABCDEF0123"
READ_ONLY = "ghp_ReadOnly0123456789abcdefABCDEF0123"
SHA = "a" * 40
PR = 7
MARKER = "<!-- mlcicd:plan-review:demo -->"


@pytest.fixture
def server():
    state = GitHubState(token=TOKEN, read_only_tokens={READ_ONLY}, pulls={PR: "b" * 40})
    # 150 comments by others: the review comment, once posted, is on the second page.
    state.comments[PR] = [state.comment(PR, f"looks good {i}", "") for i in range(150)]
    srv = GitHubServer(state)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def env(server, monkeypatch, tmp_path):
    for name in ("GITHUB_TOKEN", "GITHUB_TOKEN_SECRET_ARN", "CODEBUILD_RESOLVED_SOURCE_VERSION", "REVIEW_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GITHUB_API_URL", server.url)
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    write_config(tmp_path)
    return tmp_path


def resource(address: str, action: str = "create", module: str = "", before=None, after=None) -> dict:
    actions = {"create": ["create"], "update": ["update"], "delete": ["delete"]}[action]
    kind, name = address.split(".")[-2:]
    return {"address": address, "module_address": module, "mode": "managed", "type": kind, "name": name,
            "change": {"actions": actions, "before": before, "after": after if after is not None else {"input": "x"},
                       "after_unknown": {}, "before_sensitive": False, "after_sensitive": {}}}


def write_plan(root: Path, env_name: str, changes: list[dict]) -> Path:
    """A plan as `terraform show -json` writes it, saved as ENV.json (review reads a bare plan.json)."""
    path = root / f"{env_name}.json"
    path.write_text(json.dumps({"format_version": "1.2", "terraform_version": "1.15.0",
                                "resource_changes": changes}))
    return path


def review(root: Path, *args: str) -> object:
    return CliRunner().invoke(main, ["--config", str(root / "mlcicd.yaml"), "review", *args, "--no-checkov"])


def every_output(result) -> str:
    return result.output + (result.stderr if result.stderr_bytes is not None else "")


def test_two_runs_one_comment_created_then_updated_and_status_set(server, env):
    staging = write_plan(env, "staging", [
        resource("terraform_data.item", "update", before={"input": "old"}, after={"input": TOKEN}),
        resource("terraform_data.new")])
    prod = write_plan(env, "prod", [])
    first = review(env, str(staging), str(prod), "--github-pr", str(PR), "--sha", SHA,
                   "--review-url", "https://console.example/build/1")
    assert first.exit_code == 0, every_output(first)
    assert "posted the review comment" in first.stderr
    ours = server.state.marked(PR, MARKER)
    assert len(ours) == 1 and ours[0] is server.state.comments[PR][-1]
    body = ours[0]["body"]
    assert "| `staging` | 1 to create, 1 to update |" in body and "| `prod` | no changes |" in body
    assert "[full review](https://console.example/build/1)" in body
    assert "***" in body  # the token, planted in a plan value, is masked in the comment
    assert server.state.statuses[-1] == {
        **server.state.statuses[-1], "sha": SHA, "state": "success", "context": "mlcicd/plan",
        "description": "staging: 1 to create, 1 to update", "target_url": "https://console.example/build/1"}

    staging.write_text(json.dumps({"format_version": "1.2", "resource_changes": [resource("terraform_data.x")]}))
    second = review(env, str(staging), str(prod), "--github-pr", str(PR), "--sha", SHA)
    assert second.exit_code == 0, every_output(second)
    assert "updated the review comment" in second.stderr
    ours = server.state.marked(PR, MARKER)
    assert len(ours) == 1 and len(server.state.comments[PR]) == 151  # the same comment, edited
    assert "| `staging` | 1 to create |" in ours[0]["body"]
    patched = [r for r in server.state.requests if r.method == "PATCH"]
    assert [r.path for r in patched] == [f"/api/v3/repos/{REPO}/issues/comments/{ours[0]['id']}"]
    # The comment was found on page 2, through the Link header's URL.
    assert any(r.path.startswith("/api/v3/repositories/") for r in server.state.requests)
    assert len(server.state.statuses) == 2
    # The token was sent as a bearer token, and never shown or posted.
    assert {r.authorization for r in server.state.requests} == {f"Bearer {TOKEN}"}
    for text in (every_output(first), every_output(second), *(json.dumps(r.body) for r in server.state.requests)):
        assert TOKEN not in text


def test_head_sha_from_codebuild_or_the_pull_request(server, env, monkeypatch):
    plan = write_plan(env, "staging", [])
    assert review(env, str(plan), "--github-pr", str(PR)).exit_code == 0
    assert server.state.statuses[-1]["sha"] == "b" * 40  # the pull request's head
    monkeypatch.setenv("CODEBUILD_RESOLVED_SOURCE_VERSION", "c" * 40)
    assert review(env, str(plan), "--github-pr", str(PR)).exit_code == 0
    assert server.state.statuses[-1]["sha"] == "c" * 40
    assert server.state.statuses[-1]["description"] == "no changes"


def test_failed_plan_and_blocked_gate_set_failure_and_the_exit_code(server, env):
    root = env / "plans"
    (root / "staging").mkdir(parents=True)
    (root / "staging/manifest.json").write_text("{}")  # left by an earlier run: older than the record
    os.utime(root / "staging/manifest.json", (1, 1))
    (root / "changes.json").write_text(json.dumps({"base": SHA, "base_label": "main",
                                                   "environments": {"staging": ["module changed"]}}))
    result = review(env, str(root), "--github-pr", str(PR), "--sha", SHA)
    assert result.exit_code == 1, every_output(result)
    assert "no plan for staging" in result.stderr
    assert server.state.statuses[-1]["state"] == "failure"
    assert server.state.statuses[-1]["description"] == "plan failed: staging"
    assert "| `staging` | ❌ no plan: the plan failed or was interrupted | module changed |" in \
        server.state.marked(PR, MARKER)[0]["body"]

    plan = write_plan(env, "prod", [resource("terraform_data.gone", "delete", before={"input": "x"})])
    blocked = review(env, str(plan), "--github-pr", str(PR), "--sha", SHA, "--fail-on", "destroy")
    assert blocked.exit_code == 3, every_output(blocked)
    assert server.state.statuses[-1]["state"] == "failure"
    assert server.state.statuses[-1]["description"] == "blocked by the review gate: prod"
    assert len(server.state.marked(PR, MARKER)) == 1


def test_no_changed_environment_is_said_too(server, env):
    root = env / "plans"
    root.mkdir()
    (root / "changes.json").write_text(json.dumps({"base": SHA, "base_label": "main", "environments": {}}))
    result = review(env, str(root), "--github-pr", str(PR), "--sha", SHA)
    assert result.exit_code == 0, every_output(result)
    assert "no environment changed" in server.state.marked(PR, MARKER)[0]["body"]
    assert server.state.statuses[-1]["description"] == "no environment changed"


def test_a_review_past_the_size_limit_is_summarised_never_cut_mid_table(server, env):
    plans = [write_plan(env, f"env{n:02d}", [
        resource(f"module.ml_{n}.terraform_data.item_{i:03d}_{'x' * 90}", module=f"module.ml_{n}")
        for i in range(50)]) for n in range(30)]
    result = review(env, *map(str, plans), "--github-pr", str(PR), "--sha", SHA, "--review-url", "https://x.example/r")
    assert result.exit_code == 0, every_output(result)
    body = server.state.marked(PR, MARKER)[0]["body"]
    assert len(body) <= github.COMMENT_LIMIT
    assert "summarised by module and resource type: see [the full review](https://x.example/r)" in body
    assert all(f"| `env{n:02d}` | 50 to create |" in body for n in range(30))
    assert "| Resource type | Count | For example |" in body
    # Whole tables only: every table row is complete, and each table has its header.
    rows = [line for line in body.splitlines() if line.startswith("|")]
    assert all(line.endswith("|") for line in rows)
    assert body.count("| Resource type | Count | For example |") == body.count("|---|---:|---|") == 30
    # The same plans, one by one, fit unsummarised.
    alone = pr_review.comment("demo", pr_review.collect(plans[:1], pr_review.Masker(), frozenset()))
    assert "| Address | Details |" in alone and "summarised" not in alone


def test_comment_shrinks_to_one_line_per_environment_then_fewer_rows():
    plans = [pr_review.EnvPlan(f"e{n}", None, ("r" * 150,)) for n in range(2000)]
    body = pr_review.comment("demo", plans, review_url="https://x.example/r", limit=20_000)
    assert len(body) <= 20_000 and body.startswith(MARKER)
    assert "### mlcicd plan review: 2000 failed" in body  # the verdicts count every environment
    assert re.search(r"… and \d+ more environments: see the full review", body)
    assert all(line.endswith("|") for line in body.splitlines() if line.startswith("|"))


def test_no_token_is_reported_and_the_review_still_succeeds(server, env, monkeypatch):
    monkeypatch.delenv("GITHUB_TOKEN")
    result = review(env, str(write_plan(env, "staging", [])), "--github-pr", str(PR))
    assert result.exit_code == 0
    assert "no GitHub token: GITHUB_TOKEN and GITHUB_TOKEN_SECRET_ARN are both unset" in result.stderr
    assert "staging" in result.output  # the review itself is printed
    assert server.state.requests == []


@pytest.mark.parametrize(("token", "expected"), [
    ("ghp_wrong", "GitHub rejected the token when trying to read pull request #7 (401: Bad credentials)"),
    (READ_ONLY, "the token is not allowed to comment on pull request #7 (403: Resource not accessible"),
])
def test_bad_or_read_only_token(server, env, monkeypatch, token, expected):
    monkeypatch.setenv("GITHUB_TOKEN", token)
    result = review(env, str(write_plan(env, "staging", [])), "--github-pr", str(PR), "--sha", SHA)
    assert result.exit_code == 0
    assert expected in result.stderr
    assert token not in every_output(result)
    if token == READ_ONLY:
        assert "Commit statuses" in result.stderr  # says which permission is missing
        assert "commit status not set: the token is not allowed to set the commit status" in result.stderr


def test_pull_request_that_does_not_exist(server, env):
    result = review(env, str(write_plan(env, "staging", [])), "--github-pr", "99", "--sha", SHA)
    assert result.exit_code == 0
    assert f"nothing posted: pull request #99 does not exist in {REPO} (404" in result.stderr
    assert server.state.statuses == []


def test_rate_limited_past_the_bounded_wait(server, env):
    reset = int(time.time()) + 1800
    server.state.forced.append((403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)},
                                {"message": "API rate limit exceeded for user ID 1.", "documentation_url": "x"}))
    result = review(env, str(write_plan(env, "staging", [])), "--github-pr", str(PR), "--sha", SHA)
    assert result.exit_code == 0
    assert "GitHub is rate limiting this token (when trying to read pull request #7): it asks to wait until" \
        in result.stderr
    assert "run the review again later" in result.stderr


def test_rate_limited_briefly_waits_and_posts(server, env):
    server.state.forced.append((429, {"retry-after": "1"}, {"message": "You have exceeded a secondary rate limit."}))
    started = time.monotonic()
    result = review(env, str(write_plan(env, "staging", [])), "--github-pr", str(PR), "--sha", SHA)
    assert result.exit_code == 0 and "Warning" not in result.stderr, every_output(result)
    assert time.monotonic() - started >= 1.0  # retry-after was honoured
    assert len(server.state.marked(PR, MARKER)) == 1


def test_server_errors_are_retried_then_reported(server, env):
    gateway = (502, {}, {"message": "Server Error"})
    server.state.forced += [gateway] * 3
    result = review(env, str(write_plan(env, "staging", [])), "--github-pr", str(PR), "--sha", SHA)
    assert result.exit_code == 0
    assert "GitHub answered 502 when trying to read pull request #7 (3 attempt(s))" in result.stderr
    server.state.forced.append(gateway)  # one failure: retried, then it works
    again = review(env, str(write_plan(env, "staging", [])), "--github-pr", str(PR), "--sha", SHA)
    assert again.exit_code == 0 and "Warning" not in again.stderr, every_output(again)


def test_client_waits_are_bounded_and_links_stay_on_the_api_base(server):
    waits: list[float] = []
    client = github.Client(server.url, TOKEN, sleep=waits.append)
    server.state.forced += [(429, {"retry-after": "5"}, {"message": "slow down"})] * 3
    with pytest.raises(github.GitHubRateLimited):
        github.pull_request(client, REPO, PR)
    assert waits == [5.0, 5.0]  # two bounded retries, then the error
    server.state.forced.append((200, {"Link": '<https://evil.example/x?page=2>; rel="next"'}, []))
    with pytest.raises(github.GitHubRejected, match="outside"):
        list(client.pages(f"/repos/{REPO}/issues/{PR}/comments", what="to list"))


def test_unreachable_api_and_bad_base_url(env, monkeypatch):
    monkeypatch.setenv("GITHUB_API_URL", "http://127.0.0.1:9/api/v3")
    result = review(env, str(write_plan(env, "staging", [])), "--github-pr", str(PR), "--sha", SHA)
    assert result.exit_code == 0 and "cannot reach the GitHub API at http://127.0.0.1:9/api/v3" in result.stderr
    monkeypatch.setenv("GITHUB_API_URL", "ftp://x")
    result = review(env, str(write_plan(env, "staging", [])), "--github-pr", str(PR), "--sha", SHA)
    assert result.exit_code == 0 and "is not an http(s) URL" in result.stderr


def test_token_from_secrets_manager_is_masked(server, env, aws_env, monkeypatch):
    import boto3

    monkeypatch.setenv("GITHUB_API_URL", server.url)
    monkeypatch.delenv("GITHUB_TOKEN")
    secret = boto3.client("secretsmanager", region_name="us-east-1").create_secret(
        Name="github-token", SecretString=json.dumps({"token": TOKEN}))
    monkeypatch.setenv("GITHUB_TOKEN_SECRET_ARN", secret["ARN"])
    plan = write_plan(env, "staging", [resource("terraform_data.item", "update", before={"input": "a"},
                                                after={"input": f"prefix {TOKEN}"})])
    result = review(env, str(plan), "--github-pr", str(PR), "--sha", SHA)
    assert result.exit_code == 0, every_output(result)
    assert {r.authorization for r in server.state.requests} == {f"Bearer {TOKEN}"}
    body = server.state.marked(PR, MARKER)[0]["body"]
    assert TOKEN not in body and "prefix ***" in body
    assert TOKEN not in every_output(result)


def test_several_dirs_need_github_pr(env):
    a, b = write_plan(env, "a", []), write_plan(env, "b", [])
    result = review(env, str(a), str(b))
    assert result.exit_code == 2 and "--github-pr" in result.output


def test_marker_is_hidden_and_first():
    body = pr_review.comment("demo", [])
    assert body.splitlines()[0] == MARKER
    assert re.search(r"no environment changed", body)


@pytest.mark.usefixtures("state_bucket")
def test_pull_request_flow_with_real_plans(repo, server, monkeypatch, tmp_path):
    """What the pipeline's pull-request action runs: plan the changed environments, then post."""
    monkeypatch.setenv("GITHUB_API_URL", server.url)
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("CODEBUILD_RESOLVED_SOURCE_VERSION", SHA)
    (repo / "terraform/envs/a/modules.tf").unlink()
    commit_all(repo, "a standalone")
    git(repo, "checkout", "-q", "-b", "feature2")
    cfg = repo / "mlcicd.yaml"
    cfg.write_text(cfg.read_text().replace("greeting: hi-b", "greeting: ho-b"))
    out = tmp_path / "plans"
    runner = CliRunner()
    planned = runner.invoke(main, ["--config", str(cfg), "plan", "--changed", "--base", "feature", "--out", str(out)])
    assert planned.exit_code == 0, planned.output
    posted = runner.invoke(main, ["--config", str(cfg), "review", str(out), "--github-pr", str(PR), "--no-checkov"])
    assert posted.exit_code == 0, every_output(posted)
    body = server.state.marked(PR, MARKER)[0]["body"]
    assert "### mlcicd plan review: 1 with changes" in body
    assert "| `b` | 3 to create, 1 output change | mlcicd.yaml: vars.greeting changed |" in body
    assert "not-a-real-secret-0000" not in body  # the fixture's sensitive variable
    assert server.state.statuses[-1]["description"] == "b: 3 to create, 1 output change"


def test_outside_text_cannot_break_out_of_the_table_or_hide_the_comment():
    plans = [pr_review.EnvPlan("a", None, ("terraform/x/<!--|`.tf changed",))]
    body = pr_review.comment("demo", plans)
    assert "| `a` | ❌ no plan: the plan failed or was interrupted | terraform/x/&lt;!--\\|'.tf changed |" in body
