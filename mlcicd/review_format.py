"""How a plan review is printed: text for a terminal, markdown for the approval, JSON for
machines, and one HTML page (review_html) for the approver.

Text and markdown cut each section at `max_rows`; markdown past that summarises a section by
module and resource type, so a 5,000-change plan still reads on one screen or two. Text
shortens long values with a marker saying where the whole value is; JSON is never cut.
Structural diffs of JSON documents (policies) are printed whole in every format.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from mlcicd import plandir
from mlcicd.review import DESTRUCTIVE, OFFLINE_NOTE, SECTIONS, Entry, Review
from mlcicd.review_values import UNKNOWN, Attribute

if TYPE_CHECKING:  # a Policy exists only when checkov ran, and its module is loaded to run checkov
    from mlcicd.policy import Policy

FORMATS = ("text", "markdown", "json", "html")
DEFAULT_MAX_ROWS = 50
_GROUP_EXAMPLES = 3
_TEXT_WIDTH = 100
_MD_WIDTH = 300


def render(review: Review, fmt: str, max_rows: int = DEFAULT_MAX_ROWS) -> str:
    if fmt == "json":
        return _dump(to_dict(review))
    if fmt == "markdown":
        return render_markdown(review, max_rows)
    if fmt == "html":
        from mlcicd import review_html  # only for pages: it is most of this module's import time

        return review_html.render(review)
    return render_text(review, max_rows)


def to_dict(review: Review) -> dict[str, Any]:
    """Everything, untruncated, for machines."""
    policy = None
    if review.policy is not None:
        p = review.policy
        policy = {"passed": p.passed, "error": p.error or None,
                  "failed": [{"check_id": f.check_id, "name": f.name, "address": f.address} for f in p.failed],
                  "skipped": [{"check_id": f.check_id, "name": f.name, "address": f.address, "reason": f.reason}
                              for f in p.skipped]}
    return {
        "env": review.env,
        "headline": review.headline,
        "offline": review.offline,
        "plan_sha256": review.plan_sha256 or None,
        "counts": review.counts,
        "destructive": [e.address for e in review.destructive()],
        "changes": [_entry_dict(e) for a in SECTIONS for e in review.sections.get(a, ())],
        "drift": [_entry_dict(e) for e in review.drift],
        "outputs": [{"name": o.name, "action": o.action, "before": o.before, "after": o.after}
                    for o in review.outputs],
        "policy": policy,
    }


def _entry_dict(e: Entry) -> dict[str, Any]:
    # Tuples are dumped as JSON arrays: replace_paths goes as it is.
    return {"address": e.address, "action": e.action, "destructive": e.action in DESTRUCTIVE, "reason": e.reason,
            "replace_paths": e.replace_paths, "moved_from": e.moved_from or None,
            "import_id": e.import_id or None,
            "attributes": [{"name": name, "before": before, "after": after, "forces_replacement": forced,
                            "document": [c._asdict() for c in document] if document else []}
                           for name, before, after, forced, document in e.attributes]}


# Compact JSON, for machines (`jq .` to read it). orjson writes it several times faster than
# json's C encoder, which was a fifth of a big review's time; the bytes are the same as
# json.dumps(ensure_ascii=False, separators=(",", ":")) writes (tests/test_review_format.py).
# Every string in a review has passed printable.escape, so none holds a lone surrogate, the one
# str orjson cannot write.


def _dump(data: dict[str, Any]) -> str:
    return orjson.dumps(data).decode() + "\n"


# -- text --------------------------------------------------------------------------------------


def render_text(review: Review, max_rows: int = DEFAULT_MAX_ROWS) -> str:
    lines = [review.headline]
    if review.offline:
        lines.append(OFFLINE_NOTE)
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
        lines += [f"  {o.action:<8} {attribute_line(Attribute(o.name, o.before, o.after), short)[2:]}"
                  for o in review.outputs[:_limit(max_rows)]]
        lines += _more(len(review.outputs), max_rows, "  ")
    lines += _policy_text(review.policy)
    return "\n".join(lines) + "\n"


def short(value: str, width: int = _TEXT_WIDTH) -> str:
    """`value`, or its start with a marker saying how much is left out and where it is whole."""
    if len(value) <= width:
        return value
    keep = width - 8
    return f"{value[:keep]}…[+{len(value) - keep} chars; whole in --format json/html]"


def _text_rows(entries: tuple[Entry, ...], max_rows: int, mark: str) -> list[str]:
    rows = []
    for e in entries[:_limit(max_rows)]:
        rows.append(f"{mark}{e.address}" + (f"  ({e.detail})" if e.detail else ""))
        # A create's computed attributes say little one by one: one line names them all.
        later = [a.name for a in e.attributes if e.action == "create" and a.after == UNKNOWN]
        for a in e.attributes:
            if a.name not in later:
                rows.append(f"      {attribute_line(a, short)}")
                rows += [f"          {c.line()}" for c in a.document]
        if later:
            rows.append(f"      + {UNKNOWN}: {', '.join(later)}")
    return rows + _more(len(entries), max_rows, "  ")


def attribute_line(a: Attribute, show) -> str:
    """One attribute: `+ name = value` (create), `- name = value` (destroy), `~ name: a → b`."""
    forced = "  (forces replacement)" if a.forces_replacement else ""
    if a.document:
        return f"{'+' if not a.before else '-' if not a.after else '~'} {a.name}: JSON document{forced}"
    if not a.before:
        return f"+ {a.name} = {show(a.after)}"
    if not a.after:
        return f"- {a.name} = {show(a.before)}"
    return f"~ {a.name}: {show(a.before)} → {show(a.after)}{forced}"


def _policy_text(policy: Policy | None) -> list[str]:
    if policy is None:
        return []
    if policy.error:
        return ["", f"Policy (checkov): could not run: {policy.error}"]
    lines = ["", f"Policy (checkov): {policy.passed} passed, {len(policy.failed)} failed, "
                 f"{len(policy.skipped)} skipped as justified in the sources"]
    lines += [f"  ✗ {f.check_id} {f.address}: {f.name}" for f in policy.failed]
    return lines + [f"  - {f.check_id} {f.address}: skipped: {f.reason or '(no reason given)'}"
                    for f in policy.skipped]


# -- markdown ----------------------------------------------------------------------------------


def render_markdown(review: Review, max_rows: int = DEFAULT_MAX_ROWS) -> str:
    out = [f"**{_md(review.headline)}**"]
    if review.offline:
        out.append(f"\n> {OFFLINE_NOTE}")
    if review.plan_sha256:
        out.append(f"\nPlan sha256 `{review.plan_sha256}`")
    for action, title in SECTIONS.items():
        entries = review.sections.get(action, ())
        if entries:
            marker = "⚠️ " if action in DESTRUCTIVE else ""
            out += ["", f"### {marker}{title} ({len(entries)})", ""] + _md_entries(entries, max_rows)
    if review.drift:
        out += ["", f"### Changed outside Terraform ({len(review.drift)})", ""] + _md_entries(review.drift, max_rows)
    if review.outputs:
        out += ["", f"### Outputs ({len(review.outputs)})", "", "| Output | Action | Before | After |",
                "|---|---|---|---|"]
        out += [f"| `{_md(o.name)}` | {o.action} | {_code(o.before)} | {_code(o.after)} |"
                for o in review.outputs[:_limit(max_rows)]]
        out += _more(len(review.outputs), max_rows, "")
    if review.policy is not None:
        out += ["", "### Policy (checkov)", ""] + [line.strip() for line in _policy_text(review.policy)[1:]]
    return "\n".join(out) + "\n"


def _md_entries(entries: tuple[Entry, ...], max_rows: int) -> list[str]:
    """One collapsible block per resource; past max_rows, one row per module+type with examples."""
    if len(entries) > _limit(max_rows):
        return _md_groups(entries, max_rows)
    import html  # here, not on every review's path: its entity tables are most of its import

    rows = []
    for e in entries:
        detail = f" — {_md(html.escape(e.detail))}" if e.detail else ""
        if not e.attributes:
            rows.append(f"- `{_md(e.address)}`{detail}")
            continue
        rows += [f"<details><summary><code>{html.escape(e.address)}</code>{detail}</summary>", "",
                 "| Attribute | Before | After |", "|---|---|---|"]
        later = [a.name for a in e.attributes if e.action == "create" and a.after == UNKNOWN]
        for a in e.attributes:
            if a.name in later:
                continue
            forced = " (forces replacement)" if a.forces_replacement else ""
            if a.document:
                changes = "<br>".join(f"`{_md(c.line())}`" for c in a.document)
                rows.append(f"| `{_md(a.name)}`{forced} | JSON document | {changes} |")
            else:
                rows.append(f"| `{_md(a.name)}`{forced} | {_code(a.before)} | {_code(a.after)} |")
        if later:
            rows.append(f"| {UNKNOWN} | | {_md(', '.join(later))} |")
        rows += ["", "</details>"]
    return rows


def _md_groups(entries: tuple[Entry, ...], max_rows: int) -> list[str]:
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
    return f"`{_md(short(text, _MD_WIDTH))}`" if text else ""


# -- plan directory ----------------------------------------------------------------------------


def write(plan_dir: Path, review: Review) -> str:
    """Write a plan directory's readable review (summary.txt, review.md); returns the text."""
    text = render_text(review)
    plandir.write_file(plan_dir, plandir.SUMMARY, text.encode())
    plandir.write_file(plan_dir, plandir.REVIEW_MARKDOWN, render_markdown(review).encode())
    return text
