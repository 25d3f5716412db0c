"""The plan review as one self-contained HTML page, for the approver of a deploy.

No script, no external asset (a Content-Security-Policy forbids loading any), so it reads
the same from a file, an S3 object or an artefact store. Headline and counts first, then
destructive changes (expanded), then every other change; each resource opens (<details>) to
its attribute diff, JSON documents as structural diffs with their whole values beside, then
drift, outputs and checkov's results. Everything on it comes from the Review, whose values
are already redacted, masked and escaped; this module only HTML-escapes.
"""

from __future__ import annotations

import json
from html import escape as h

from mlcicd.docdiff import parse
from mlcicd.policy import Policy
from mlcicd.printable import escape
from mlcicd.review import DESTRUCTIVE, OFFLINE_NOTE, SECTIONS, Entry, Review
from mlcicd.review_values import Attribute

# Past this many destructive changes they start closed, so the page stays quick to scan.
_OPEN_DESTRUCTIVE = 50
_MARKS = {"destroy": "−", "replace": "±", "create-before-destroy": "±", "forget": "−", "create": "+",
          "update": "~", "import": "←", "move": "→"}

_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1f2328;background:#fff}
header{padding:16px 24px;background:#f6f8fa;border-bottom:1px solid #d0d7de}
h1{font-size:20px;margin:0 0 8px}
h2{font-size:16px;margin:24px 0 8px}
main{padding:0 24px 32px}
code,pre{font:12.5px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
pre{margin:0;white-space:pre-wrap;word-break:break-all}
.offline{background:#fff8c5;border:1px solid #d4a72c;padding:8px 12px;border-radius:6px}
.counts{display:flex;flex-wrap:wrap;gap:8px;list-style:none;padding:0;margin:8px 0 0}
.counts li{border:1px solid #d0d7de;border-radius:16px;padding:2px 10px;background:#fff}
.counts b{margin-right:4px}
.destructive h2,.counts .destructive{color:#cf222e}
details.resource{border:1px solid #d0d7de;border-radius:6px;margin:6px 0;background:#fff}
details.resource>summary{cursor:pointer;padding:6px 10px}
details.resource[data-destructive]{border-color:#cf222e}
.mark{display:inline-block;width:1.2em;font-weight:bold}
.destroy .mark,.replace .mark,.create-before-destroy .mark,.forget .mark{color:#cf222e}
.create .mark{color:#1a7f37}.update .mark{color:#9a6700}
.detail{color:#59636e}
table{border-collapse:collapse;width:100%}
td,th{border-top:1px solid #eaeef2;padding:4px 10px;text-align:left;vertical-align:top}
th{background:#f6f8fa;font-weight:600}
td.name{width:18%;white-space:nowrap}
.forces{color:#cf222e;font-size:12px;margin-left:6px}
ul.doc{list-style:none;margin:0;padding:0}
ul.doc li{font:12.5px/1.4 ui-monospace,monospace;white-space:pre-wrap;word-break:break-all}
li.added{color:#1a7f37}li.removed{color:#cf222e}li.changed{color:#9a6700}
.failed{color:#cf222e}.none{color:#59636e}
"""


def render(review: Review) -> str:
    title = h(review.headline)
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{title}</title><style>{_STYLE}</style></head><body>",
        f'<header><h1 id="headline">{title}</h1>',
    ]
    if review.offline:
        parts.append(f'<p class="offline" id="offline">{h(OFFLINE_NOTE)}</p>')
    if review.plan_sha256:
        parts.append(f"<div>Plan sha256 <code>{h(review.plan_sha256)}</code></div>")
    parts += [_counts(review), "</header><main>"]
    for action, title_text in SECTIONS.items():
        entries = review.sections.get(action, ())
        if entries:
            destructive = action in DESTRUCTIVE
            heading = f"{'⚠ ' if destructive else ''}{title_text} ({len(entries)})"
            parts.append(f'<section id="{action}" class="action {action}{" destructive" if destructive else ""}">'
                         f"<h2>{h(heading)}</h2>")
            expand = destructive and len(entries) <= _OPEN_DESTRUCTIVE
            parts += [_entry(e, expand) for e in entries]
            parts.append("</section>")
    if review.drift:
        parts.append(f'<section id="drift"><h2>Changed outside Terraform ({len(review.drift)})</h2>')
        parts += [_entry(e, False) for e in review.drift]
        parts.append("</section>")
    if review.outputs:
        parts.append(f'<section id="outputs"><h2>Outputs ({len(review.outputs)})</h2><table>'
                     "<tr><th>Output</th><th>Action</th><th>Before</th><th>After</th></tr>")
        parts += [f"<tr><td><code>{h(o.name)}</code></td><td>{h(o.action)}</td><td><pre>{h(o.before)}</pre></td>"
                  f"<td><pre>{h(o.after)}</pre></td></tr>" for o in review.outputs]
        parts.append("</table></section>")
    if review.policy is not None:
        parts.append(_policy(review.policy))
    if not review.has_changes and not review.drift:
        parts.append('<p class="none">No changes.</p>')
    parts.append("</main></body></html>\n")
    return "\n".join(parts)


def _counts(review: Review) -> str:
    items = [(a, n, a in DESTRUCTIVE) for a, n in review.counts.items()]
    if review.outputs:
        items.append(("output changes", len(review.outputs), False))
    if review.drift:
        items.append(("drifted", len(review.drift), False))
    if review.policy is not None and not review.policy.error:
        items.append(("policy failures", len(review.policy.failed), bool(review.policy.failed)))
    lis = "".join(f'<li class="count{" destructive" if bad else ""}" data-kind="{h(kind)}"><b>{n}</b>{h(kind)}</li>'
                  for kind, n, bad in items)
    return f'<ul class="counts" id="counts">{lis}</ul>'


def _entry(e: Entry, expand: bool) -> str:
    flags = (" open" if expand else "") + (" data-destructive" if e.destructive else "")
    detail = f' <span class="detail">({h(e.detail)})</span>' if e.detail else ""
    head = (f'<details class="resource {e.action}" data-action="{e.action}"{flags}><summary>'
            f'<span class="mark">{_MARKS.get(e.action, "")}</span><code class="address">{h(e.address)}</code>'
            f"{detail}</summary>")
    if not e.attributes:
        return head + '<p class="none">&nbsp; No attribute changes.</p></details>'
    rows = "".join(_attribute(a) for a in e.attributes)
    return head + f"<table><tr><th>Attribute</th><th>Before</th><th>After</th></tr>{rows}</table></details>"


def _attribute(a: Attribute) -> str:
    name = f"<code>{h(a.name)}</code>" + ('<span class="forces">forces replacement</span>'
                                         if a.forces_replacement else "")
    if not a.document:
        return f'<tr class="attribute"><td class="name">{name}</td><td><pre>{h(a.before)}</pre></td>' \
               f"<td><pre>{h(a.after)}</pre></td></tr>"
    changes = "".join(f'<li class="{c.kind}">{h(c.line())}</li>' for c in a.document)
    return (f'<tr class="attribute document"><td class="name">{name}</td><td colspan="2">'
            f'<ul class="doc">{changes or "<li>no change in meaning</li>"}</ul>'
            f"<details><summary>whole document</summary><table><tr><td><pre>{h(_pretty(a.before))}</pre></td>"
            f"<td><pre>{h(_pretty(a.after))}</pre></td></tr></table></details></td></tr>")


def _pretty(shown: str) -> str:
    """A shown JSON-string value holding a document, indented; anything else as shown. Escaped
    again: loading the shown text turns its visible escapes back into the characters."""
    try:
        doc = parse(json.loads(shown))
    except ValueError:
        return shown
    return shown if doc is None else escape(json.dumps(doc, indent=2, ensure_ascii=False))


def _policy(policy: Policy) -> str:
    if policy.error:
        return f'<section id="policy"><h2>Policy (checkov)</h2><p class="failed">could not run: {h(policy.error)}</p>' \
               "</section>"
    out = [f'<section id="policy"><h2>Policy (checkov)</h2><p>{policy.passed} passed, '
           f'<span class="{"failed" if policy.failed else "none"}">{len(policy.failed)} failed</span>, '
           f"{len(policy.skipped)} skipped as justified in the sources</p>"]
    if policy.failed or policy.skipped:
        out.append("<table><tr><th>Result</th><th>Check</th><th>Resource</th><th>Why</th></tr>")
        out += [f'<tr class="failed"><td>failed</td><td><code>{h(f.check_id)}</code></td>'
                f"<td><code>{h(f.address)}</code></td><td>{h(f.name)}</td></tr>" for f in policy.failed]
        out += [f'<tr class="skipped"><td>skipped</td><td><code>{h(f.check_id)}</code></td>'
                f"<td><code>{h(f.address)}</code></td><td>{h(f.reason or '(no reason given)')}</td></tr>"
                for f in policy.skipped]
        out.append("</table>")
    out.append("</section>")
    return "".join(out)
