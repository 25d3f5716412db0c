"""JSON documents held in string attributes — IAM, bucket and key policies, SageMaker pipeline
definitions, container definitions — compared by structure instead of as one long string.

A policy change is told as statements added and removed, and for a statement kept (same
Sid) as the actions, resources, principals and conditions it gains or loses; any other
document as the paths whose values were added, removed or changed. Every value is whole:
a reviewer approves what is written, never the first 80 characters of it. The strings
returned are raw; the review masks and escapes them like every other plan value.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, NamedTuple

ADDED, REMOVED, CHANGED = "added", "removed", "changed"
# Statement fields whose values are sets of strings (a string or a list in IAM's grammar).
_SET_FIELDS = ("Action", "NotAction", "Resource", "NotResource")
# Keys that name the items of a list, so a reordered or inserted item is not a change of all.
_NAME_KEYS = ("Name", "name", "Sid", "Id", "id")


class Change(NamedTuple):
    kind: str  # added | removed | changed
    path: str  # "Statement ReadModels", "Statement ReadModels Action", "Steps[Train].Arguments"
    before: str = ""
    after: str = ""

    def line(self) -> str:
        if self.kind == ADDED:
            return f"+ {self.path}: {self.after}"
        if self.kind == REMOVED:
            return f"- {self.path}: {self.before}"
        return f"~ {self.path}: {self.before} → {self.after}"


def parse(value: Any) -> Any:
    """The JSON object or array `value` holds, or None when it is not a JSON document."""
    if not isinstance(value, str) or value.lstrip()[:1] not in ("{", "["):
        return None
    try:
        doc = json.loads(value)
    except ValueError:
        return None
    return doc if isinstance(doc, dict | list) else None


def diff(before: Any, after: Any) -> tuple[Change, ...]:
    """What changed from document `before` to `after` (None: the document is new or gone)."""
    if _is_policy(before) or _is_policy(after):
        return tuple(_policy(before, after))
    empty = {} if isinstance(after if after is not None else before, dict) else []
    return tuple(_generic(empty if before is None else before, empty if after is None else after, ""))


def dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(", ", ": "))


# -- policies ----------------------------------------------------------------------------------


def _is_policy(doc: Any) -> bool:
    return isinstance(doc, dict) and "Statement" in doc


def _statements(doc: Any) -> dict[str, dict[str, Any]]:
    """Statements keyed by Sid (or, without one, by their whole text), in document order."""
    if not isinstance(doc, dict):
        return {}
    raw = doc.get("Statement")
    found: dict[str, dict[str, Any]] = {}
    for st in raw if isinstance(raw, list) else [raw] if raw else []:
        if not isinstance(st, dict):
            st = {"Statement": st}
        sid = st.get("Sid")
        key = sid if isinstance(sid, str) and sid and sid not in found else dump(st)
        found[key] = st
    return found


def summary(st: dict[str, Any]) -> str:
    """A statement as an approver reads it: Allow s3:GetObject on arn:… for AWS arn:… when {…}."""
    parts = [str(st.get("Effect", "?"))]
    for field, word in (("Action", ""), ("NotAction", "everything but ")):
        if field in st:
            parts.append(word + ", ".join(_as_set(st[field])))
    for field, word in (("Resource", "on"), ("NotResource", "on everything but")):
        if field in st:
            parts.append(f"{word} " + ", ".join(_as_set(st[field])))
    for field, word in (("Principal", "for"), ("NotPrincipal", "for everyone but")):
        if field in st:
            parts.append(f"{word} {_principals(st[field])}")
    if "Condition" in st:
        parts.append(f"when {dump(st['Condition'])}")
    rest = {k: v for k, v in st.items() if k not in ("Sid", "Effect", *_SET_FIELDS, "Principal", "NotPrincipal",
                                                      "Condition")}
    if rest:
        parts.append(dump(rest))
    return " ".join(parts)


def _principals(value: Any) -> str:
    if isinstance(value, dict):
        return "; ".join(f"{kind} {', '.join(_as_set(ids))}" for kind, ids in value.items())
    return ", ".join(_as_set(value))


def _as_set(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [v if isinstance(v, str) else dump(v) for v in items]


def _policy(before: Any, after: Any) -> Iterator[Change]:
    old, new = _statements(before), _statements(after)
    for key, st in new.items():
        if key not in old:
            yield Change(ADDED, _label(key, st), after=summary(st))
        elif old[key] != st:  # only a statement with a Sid can differ under the same key
            yield from _statement(_label(key, st), old[key], st)
    for key, st in old.items():
        if key not in new:
            yield Change(REMOVED, _label(key, st), before=summary(st))
    rest_before = {k: v for k, v in (before or {}).items() if k != "Statement"} if isinstance(before, dict) else {}
    rest_after = {k: v for k, v in (after or {}).items() if k != "Statement"} if isinstance(after, dict) else {}
    if before is not None and after is not None:
        yield from _generic(rest_before, rest_after, "")


def _label(key: str, st: dict[str, Any]) -> str:
    return f"Statement {key}" if key == st.get("Sid") else "Statement"


def _statement(label: str, old: dict[str, Any], new: dict[str, Any]) -> Iterator[Change]:
    for field in [*new, *(k for k in old if k not in new)]:
        b, a = old.get(field), new.get(field)
        if b == a:
            continue
        if field in _SET_FIELDS or field in ("Principal", "NotPrincipal") and not isinstance(a, dict | None):
            yield from _set_change(f"{label} {field}", _as_set(b) if b is not None else [],
                                   _as_set(a) if a is not None else [])
        elif field in ("Principal", "NotPrincipal") and isinstance(b, dict) and isinstance(a, dict):
            for kind in [*a, *(k for k in b if k not in a)]:
                yield from _set_change(f"{label} {field}.{kind}", _as_set(b[kind]) if kind in b else [],
                                       _as_set(a[kind]) if kind in a else [])
        else:
            yield from _generic(b, a, f"{label} {field}")


def _set_change(path: str, before: list[str], after: list[str]) -> Iterator[Change]:
    for item in after:
        if item not in before:
            yield Change(ADDED, path, after=item)
    for item in before:
        if item not in after:
            yield Change(REMOVED, path, before=item)


# -- any other document ------------------------------------------------------------------------


def _generic(before: Any, after: Any, path: str) -> Iterator[Change]:
    if before == after:
        return
    if isinstance(before, dict) and isinstance(after, dict):
        for key in [*after, *(k for k in before if k not in after)]:
            sub = f"{path}.{key}" if path else str(key)
            if key not in before:
                yield Change(ADDED, sub, after=dump(after[key]))
            elif key not in after:
                yield Change(REMOVED, sub, before=dump(before[key]))
            else:
                yield from _generic(before[key], after[key], sub)
    elif isinstance(before, list) and isinstance(after, list):
        yield from _list(before, after, path)
    elif before is None:
        yield Change(ADDED, path or "(document)", after=dump(after))
    elif after is None:
        yield Change(REMOVED, path or "(document)", before=dump(before))
    else:
        yield Change(CHANGED, path or "(document)", dump(before), dump(after))


def _list(before: list[Any], after: list[Any], path: str) -> Iterator[Change]:
    key = _name_key(before, after)
    if key is None:
        for i in range(max(len(before), len(after))):
            yield from _generic(before[i] if i < len(before) else None, after[i] if i < len(after) else None,
                                f"{path}[{i}]")
        return
    old = {str(item[key]): item for item in before}
    new = {str(item[key]): item for item in after}
    for name in [*new, *(n for n in old if n not in new)]:
        yield from _generic(old.get(name), new.get(name), f"{path}[{name}]")


def _name_key(before: list[Any], after: list[Any]) -> str | None:
    """The key that names every item of two lists of objects, uniquely on each side, if any."""
    if not all(isinstance(i, dict) for i in (*before, *after)) or not (before or after):
        return None
    for key in _NAME_KEYS:
        names = [[i.get(key) for i in side] for side in (before, after)]
        if all(isinstance(n, str | int) for side in names for n in side) and all(
                len({str(n) for n in side}) == len(side) for side in names):
            return key
    return None
