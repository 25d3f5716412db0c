"""How a plan review is printed: text for a terminal, markdown for the approval, JSON for machines.

Text and markdown cut each section at `max_rows`; markdown past that summarises a section by
module and resource type, so a 5,000-change plan still reads on one screen or two. JSON is
never cut.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from mlcicd import plandir
from mlcicd.policy import Policy
from mlcicd.review import DESTRUCTIVE, SECTIONS, Entry, Review

FORMATS = ("text", "markdown", "json")
DEFAULT_MAX_ROWS = 50
_GROUP_EXAMPLES = 3


def render(review: Review, fmt: str, max_rows: int = DEFAULT_MAX_ROWS) -> str:
    if fmt == "json":
        return json.dumps(to_dict(review), indent=2, ensure_ascii=False) + "\n"
    if fmt == "markdown":
        return render_markdown(review, max_rows)
    return render_text(review, max_rows)


def to_dict(review: Review) -> dict[str, Any]:
    """Everything, untruncated, for machines."""
    def entry(e: Entry) -> dict[str, Any]:
        return {"address": e.address, "action": e.action, "destructive": e.destructive, "reason": e.reason,
                "replace_paths": list(e.replace_paths), "moved_from": e.moved_from or None,
                "import_id": e.import_id or None,
                "attributes": [{"name": a.name, "before": a.before, "after": a.after} for a in e.attributes]}

    policy = None
    if review.policy is not None:
        p = review.policy
        policy = {"passed": p.passed, "skipped": p.skipped, "error": p.error or None,
                  "failed": [{"check_id": f.check_id, "name": f.name, "address": f.address} for f in p.failed]}
    return {
        "env": review.env,
        "headline": review.headline,
        "plan_sha256": review.plan_sha256 or None,
        "counts": review.counts,
        "destructive": [e.address for e in review.destructive()],
        "changes": [entry(e) for a in SECTIONS for e in review.sections.get(a, ())],
        "drift": [entry(e) for e in review.drift],
        "outputs": [{"name": o.name, "action": o.action, "before": o.before, "after": o.after}
                    for o in review.outputs],
        "policy": policy,
    }


def render_text(review: Review, max_rows: int = DEFAULT_MAX_ROWS) -> str:
    lines = [review.headline]
    for action, title in SECTIONS.items():
        entries = review.sections.get(action, ())
        if entries:
            lines += ["", f"{'! ' if action in DESTRUCTIVE else ''}{title} ({len(entries)}):"]
            lines += _text_rows(entries, max_rows, "! " if action in DESTRUCTIVE else "  ")
    if review.drift:
        lines += ["", f"Changed outside Terraform ({len(review.drift)}):"]
        lines += _text_rows(review.drift, max_rows, "~ ")
    if review.outputs:
        lines += ["", f"Outputs ({len(review.outputs)}):"]
        lines += [f"  {o.action:<8} {o.name}: {o.before} → {o.after}" for o in review.outputs[:_limit(max_rows)]]
        lines += _more(len(review.outputs), max_rows, "  ")
    lines += _policy_text(review.policy)
    return "\n".join(lines) + "\n"


def _text_rows(entries: tuple[Entry, ...], max_rows: int, mark: str) -> list[str]:
    rows = []
    for e in entries[:_limit(max_rows)]:
        rows.append(f"{mark}{e.address}" + (f"  ({e.detail})" if e.detail else ""))
        rows += [f"      {a.name}: {a.before} → {a.after}" for a in e.attributes]
    return rows + _more(len(entries), max_rows, "  ")


def _policy_text(policy: Policy | None) -> list[str]:
    if policy is None:
        return []
    if policy.error:
        return ["", f"Policy (checkov): could not run: {policy.error}"]
    lines = ["", f"Policy (checkov): {policy.passed} passed, {len(policy.failed)} failed, {policy.skipped} skipped"]
    return lines + [f"  ✗ {f.check_id} {f.address}: {f.name}" for f in policy.failed]


def render_markdown(review: Review, max_rows: int = DEFAULT_MAX_ROWS) -> str:
    out = [f"**{_md(review.headline)}**"]
    if review.plan_sha256:
        out.append(f"\nPlan sha256 `{review.plan_sha256}`")
    for action, title in SECTIONS.items():
        entries = review.sections.get(action, ())
        if entries:
            marker = "⚠️ " if action in DESTRUCTIVE else ""
            out += ["", f"### {marker}{title} ({len(entries)})", ""] + _md_table(entries, max_rows)
    if review.drift:
        out += ["", f"### Changed outside Terraform ({len(review.drift)})", ""] + _md_table(review.drift, max_rows)
    if review.outputs:
        out += ["", f"### Outputs ({len(review.outputs)})", "", "| Output | Action | Before | After |",
                "|---|---|---|---|"]
        out += [f"| `{_md(o.name)}` | {o.action} | {_code(o.before)} | {_code(o.after)} |"
                for o in review.outputs[:_limit(max_rows)]]
        out += _more(len(review.outputs), max_rows, "")
    if review.policy is not None:
        out += ["", "### Policy (checkov)", ""] + [line.strip() for line in _policy_text(review.policy)[1:]]
    return "\n".join(out) + "\n"


def _md_table(entries: tuple[Entry, ...], max_rows: int) -> list[str]:
    """One row per resource; past max_rows, one row per module+type with examples."""
    if len(entries) <= _limit(max_rows):
        rows = ["| Address | Details |", "|---|---|"]
        for e in entries:
            attrs = "; ".join(f"`{_md(a.name)}`: {_code(a.before)} → {_code(a.after)}" for a in e.attributes)
            rows.append(f"| `{_md(e.address)}` | {'; '.join(p for p in (_md(e.detail), attrs) if p)} |")
        return rows
    groups = Counter(e.group for e in entries)
    examples: dict[str, list[str]] = {}
    for e in entries:
        bucket = examples.setdefault(e.group, [])
        if len(bucket) < _GROUP_EXAMPLES:
            bucket.append(e.address)
    rows = [f"{len(entries)} changes in {len(groups)} group(s) of module and resource type.", "",
            "| Resource type | Count | For example |", "|---|---:|---|"]
    ranked = sorted(groups.items(), key=lambda kv: (-kv[1], kv[0]))
    for group, n in ranked[:_limit(max_rows)]:
        shown = ", ".join(f"`{_md(a)}`" for a in examples[group])
        more = f" … and {n - len(examples[group])} more" if n > len(examples[group]) else ""
        rows.append(f"| `{_md(group)}` | {n} | {shown}{more} |")
    if len(ranked) > _limit(max_rows):
        cut = ranked[_limit(max_rows):]
        rows.append(f"\n… and {len(cut)} more groups ({sum(n for _, n in cut)} changes)")
    return rows


def _limit(max_rows: int) -> int:
    return max_rows if max_rows > 0 else 1 << 62


def _more(total: int, max_rows: int, indent: str) -> list[str]:
    return [f"{indent}… and {total - max_rows} more"] if 0 < max_rows < total else []


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("`", "'").replace("\n", " ")


def _code(text: str) -> str:
    return f"`{_md(text)}`"


# -- plan directory ----------------------------------------------------------------------------


def write(plan_dir: Path, review: Review) -> str:
    """Write a plan directory's readable review (summary.txt, review.md); returns the text."""
    text = render_text(review)
    plandir.write_file(plan_dir, plandir.SUMMARY, text.encode())
    plandir.write_file(plan_dir, plandir.REVIEW_MARKDOWN, render_markdown(review).encode())
    return text
