"""The plan review on a pull request: ONE comment for every environment planned, updated in
place on each push (found again by a hidden marker), and a commit status.

The comment is the markdown review of each plan. Past GitHub's size limit it is summarised by
module and resource type (fewer rows per table, whole tables only), then down to one line per
environment, and links to the full review. The commit status is `success` when every plan
succeeded — with changes or not, the description says which — and `failure` when a plan failed
or a review gate (--fail-on) blocked. Changes are not `pending`: GitHub shows pending as "still
running", and a required check would then block the merge forever; the plan itself is the news.

Posting is best effort: a failure is reported, never turned into the review's own result.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mlcicd import changes, github, plandir, review_format
from mlcicd import review as reviewer
from mlcicd.config import Config
from mlcicd.errors import MlcicdError, ReviewBlocked, UsageError
from mlcicd.masking import Masker
from mlcicd.printable import escape
from mlcicd.runtime import Runtime

STATUS_CONTEXT = "mlcicd/plan"
_ROWS = (20, 10, 5, 2, 1)  # rows per table tried, in turn, when the comment is too long
_REASON_WIDTH = 200


def marker(project: str) -> str:
    return f"<!-- mlcicd:plan-review:{project} -->"


@dataclass(frozen=True)
class EnvPlan:
    env: str
    review: reviewer.Review | None  # None: no plan came out (it failed or was interrupted)
    reasons: tuple[str, ...] = ()
    blocked: str = ""  # what the review gate said, when it blocked

    @property
    def verdict(self) -> str:
        if self.review is None:
            return "failed"
        if self.blocked:
            return "blocked"
        return "changes" if self.review.has_changes else "no changes"

    @property
    def summary(self) -> str:
        if self.review is None:
            return "no plan: the plan failed or was interrupted"
        return self.review.headline.split(": ", 1)[-1]


# -- what to post ------------------------------------------------------------------------------


def collect(paths: Sequence[Path], masker: Masker, gates: frozenset[str],
            policy: Callable[[Path], object] | None = None) -> list[EnvPlan]:
    """The plans in `paths`: plan directories, or directories of them as `plan --out DIR`
    writes for several environments (with `changes.json`, whose environments without a plan
    count as failed)."""
    found: list[EnvPlan] = []
    for path in paths:
        if path.is_file() or (path / plandir.MANIFEST).is_file():
            found.append(_plan(path, (), masker, gates, policy))
            continue
        if not path.is_dir():
            raise UsageError(f"{path}: no such plan directory")
        recorded = changes.read(path)
        planned = {d.name: d for d in sorted(path.iterdir()) if (d / plandir.MANIFEST).is_file()}
        if recorded is not None:
            # Only this run's plans: one older than the record was left by an earlier run.
            since = (path / changes.CHANGES_FILE).stat().st_mtime_ns
            planned = {e: d for e, d in planned.items() if (d / plandir.MANIFEST).stat().st_mtime_ns >= since}
        elif not planned:
            raise UsageError(f"{path} is neither a plan directory nor a directory of them",
                             hint="pass what `mlcicd plan ... --out DIR` wrote")
        for env in planned if recorded is None else recorded:
            reasons = (recorded or {}).get(env, ())
            found.append(_plan(planned[env], reasons, masker, gates, policy) if env in planned
                         else EnvPlan(env, None, reasons))
    return found


def _plan(path: Path, reasons: tuple[str, ...], masker: Masker, gates: frozenset[str],
          policy: Callable[[Path], object] | None) -> EnvPlan:
    loaded = plandir.load_for_review(path)
    result = reviewer.build(loaded.env, loaded.plan, masker, loaded.plan_sha256, offline=loaded.offline)
    if policy is not None:
        result = result.with_policy(policy(path / plandir.PLAN_JSON if path.is_dir() else path))
    try:
        reviewer.gate(result, gates)
    except ReviewBlocked as exc:
        return EnvPlan(loaded.env, result, reasons, str(exc))
    return EnvPlan(loaded.env, result, reasons)


def status(plans: Sequence[EnvPlan]) -> tuple[str, str]:
    """(state, description) of the commit status."""
    failed = [p.env for p in plans if p.verdict == "failed"]
    blocked = [p.env for p in plans if p.verdict == "blocked"]
    if failed:
        return "failure", f"plan failed: {', '.join(failed)}"
    if blocked:
        return "failure", f"blocked by the review gate: {', '.join(blocked)}"
    changed = [f"{p.env}: {p.summary}" for p in plans if p.verdict == "changes"]
    if changed:
        return "success", "; ".join(changed)
    return "success", "no changes" if plans else "no environment changed"


def comment(project: str, plans: Sequence[EnvPlan], *, sha: str = "", review_url: str = "",
            max_rows: int = review_format.DEFAULT_MAX_ROWS, limit: int = github.COMMENT_LIMIT) -> str:
    """The comment body: whole tables only, fewer rows until it fits in `limit` characters."""
    head = _head(project, plans, sha, review_url)
    tries = [max_rows] + [r for r in _ROWS if 0 < r < max_rows or max_rows == 0]
    for rows in tries:
        note = "" if rows == max_rows else _note(review_url, "summarised by module and resource type")
        body = head + note + "".join(_details(p, rows) for p in plans)
        if len(body) <= limit:
            return body
    body = head + _note(review_url, "cut to one line per environment")
    shown = len(plans)
    while len(body) > limit:  # thousands of environments: fewer table rows, never half of one
        shown = shown * 3 // 4
        body = _head(project, plans, sha, review_url, shown) + _note(review_url, "cut short")
    return body


def _head(project: str, plans: Sequence[EnvPlan], sha: str, review_url: str, shown: int | None = None) -> str:
    """The marker, the verdicts of all `plans`, and a table of the first `shown` of them."""
    counts: dict[str, int] = {}
    for p in plans:
        counts[p.verdict] = counts.get(p.verdict, 0) + 1
    words = {"failed": "failed", "blocked": "blocked", "changes": "with changes", "no changes": "without changes"}
    verdicts = ", ".join(f"{n} {word}" for v, word in words.items() if (n := counts.get(v)))
    lines = [marker(project), f"### mlcicd plan review: {verdicts or 'no environment changed'}", ""]
    about = [f"commit `{_cell(sha[:12])}`"] if sha else []
    if review_url:
        about.append(f"[full review]({_url(review_url)})")
    if about:
        lines += [" · ".join(about), ""]
    if plans:
        lines += ["| Environment | Plan | Why planned |", "|---|---|---|"]
        icons = {"failed": "❌ ", "blocked": "⛔ "}
        lines += [f"| `{_cell(p.env)}` | {icons.get(p.verdict, '')}{_cell(p.summary)} | "
                  f"{_cell('; '.join(p.reasons)[:_REASON_WIDTH]) or '—'} |" for p in plans[:shown]]
        if shown is not None and shown < len(plans):
            lines.append(f"\n… and {len(plans) - shown} more environments: see the full review")
    return "\n".join(lines) + "\n"


def _details(plan: EnvPlan, rows: int) -> str:
    if plan.review is None:
        return ""
    opened = " open" if plan.review.destructive() or plan.blocked else ""
    gate = f"> ⛔ {_cell(plan.blocked)}\n\n" if plan.blocked else ""
    text = review_format.render(plan.review, "markdown", rows)
    return (f"\n<details{opened}><summary>{html.escape(plan.review.headline)}</summary>\n\n"
            f"{gate}{text}\n</details>\n")


def _note(review_url: str, how: str) -> str:
    where = f"[the full review]({_url(review_url)})" if review_url else "`mlcicd review` of the plan directories"
    return f"\n> Too long for a GitHub comment, so {how}: see {where}.\n"


def _cell(text: str) -> str:
    """Outside text in a table cell: one line, no pipe or backtick breaking out, no HTML."""
    text = escape(text, one_line=True).replace("|", "\\|").replace("`", "'")
    return html.escape(text, quote=False)


def _url(url: str) -> str:
    return url.replace(" ", "%20").replace(")", "%29").replace("(", "%28")


# -- posting -----------------------------------------------------------------------------------


def token(config: Config, runtime: Runtime) -> str:
    """GITHUB_TOKEN, else the secret named by GITHUB_TOKEN_SECRET_ARN (its string, or the
    "token" key of a JSON secret)."""
    if runtime.github_token:
        return runtime.github_token
    arn = runtime.github_token_secret_arn
    if not arn:
        raise github.GitHubTokenMissing()
    import json

    from mlcicd import aws

    client = aws.client(config, runtime, "secretsmanager")
    with aws.errors("reading the GitHub token secret", resource=arn):
        secret = str(client.get_secret_value(SecretId=arn).get("SecretString") or "").strip()
    try:
        parsed = json.loads(secret)
        secret = str(parsed.get("token", "")) if isinstance(parsed, dict) else secret
    except ValueError:
        pass
    if not secret:
        raise github.GitHubError(f"the secret {arn} holds no token",
                                 hint='store the token as the secret string, or as {"token": "..."}')
    return secret


@dataclass(frozen=True)
class Posted:
    body: str
    comment_url: str = ""
    created: bool = False
    state: str = ""
    problems: tuple[str, ...] = ()


def post(client: github.Client, repo: str, number: int, project: str, plans: Sequence[EnvPlan], *,
         sha: str = "", review_url: str = "", max_rows: int = review_format.DEFAULT_MAX_ROWS) -> Posted:
    """Comment, then status; each failure is collected, none is raised."""
    try:
        pr = github.pull_request(client, repo, number)
    except github.GitHubError as exc:
        body = comment(project, plans, sha=sha, review_url=review_url, max_rows=max_rows)
        return Posted(body, problems=(f"nothing posted: {exc}",))
    sha = sha or str((pr.get("head") or {}).get("sha") or "")
    body = comment(project, plans, sha=sha, review_url=review_url, max_rows=max_rows)
    problems: list[str] = []
    url, created = "", False
    try:
        url, created = github.upsert_comment(client, repo, number, marker(project), body)
    except github.GitHubError as exc:
        problems.append(f"review comment not posted: {exc}")
    state, description = status(plans)
    try:
        if not sha:
            raise github.GitHubError("no commit sha: pass --sha or set CODEBUILD_RESOLVED_SOURCE_VERSION")
        github.set_status(client, repo, sha, state, description, STATUS_CONTEXT, review_url or url)
    except github.GitHubError as exc:
        problems.append(f"commit status not set: {exc}")
        state = ""
    return Posted(body, url, created, state, tuple(problems))


def review_pull_request(config: Config, runtime: Runtime, paths: Sequence[Path], number: int, *,
                        sha: str = "", review_url: str = "", gates: frozenset[str] = frozenset(),
                        max_rows: int = review_format.DEFAULT_MAX_ROWS,
                        checkov: bool | None = None) -> tuple[list[EnvPlan], Posted]:
    """Review every plan in `paths` and post the reviews to pull request `number`. The token
    is masked in everything, the comment included; what went wrong posting is in `problems`."""
    from mlcicd import policy

    masker = Masker.from_settings(config.masks, runtime.environ)
    secret, problem = "", ""
    try:
        secret = token(config, runtime)
        client = github.Client(github.api_url(runtime.github_api_url), secret)
    except MlcicdError as exc:
        problem = f"nothing posted: {exc}"
    masker = masker.with_values([secret]) if secret else masker
    run_policy = checkov or (checkov is None and policy.checkov_available())
    plans = collect(paths, masker, gates, (lambda p: policy.run_checkov(p, masker)) if run_policy else None)
    sha = sha or runtime.source_version
    review_url = review_url or runtime.review_url
    if problem:
        posted = Posted(comment(config.project, plans, sha=sha, review_url=review_url, max_rows=max_rows),
                        problems=(problem,))
    else:
        posted = post(client, config.repository.name, number, config.project, plans, sha=sha,
                      review_url=review_url, max_rows=max_rows)
    return plans, Posted(posted.body, posted.comment_url, posted.created, posted.state,
                         tuple(masker(p) for p in posted.problems))


def outcome(plans: Iterable[EnvPlan]) -> None:
    """What the review said, as the error its exit code comes from: a failed plan (1), else
    a blocked gate (3)."""
    plans = list(plans)
    failed = [p.env for p in plans if p.verdict == "failed"]
    if failed:
        raise MlcicdError(f"no plan for {', '.join(failed)}: the plan failed or was interrupted")
    blocked = [p for p in plans if p.verdict == "blocked"]
    if blocked:
        raise ReviewBlocked("; ".join(p.blocked for p in blocked))
