"""The values of a review: one resource change's attributes as an approver reads them.

Which attributes matter depends on the action: planned values for a create, the values that
change for an update or a replace (marked where they force it), the values that go for a
destroy. Each value is whole JSON text — redacted where Terraform marks it sensitive, marked
where it is not known until apply, masked, and escaped (`printable.escape`) so no control or
bidi character reaches a terminal or a page. A JSON document held in a string (a policy, a
pipeline definition) also gets its structural diff (docdiff).

This is the hot path of a big plan's review (tens of thousands of values), hence the plain
dict checks and the shared encoder below.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from mlcicd import docdiff
from mlcicd.masking import Masker
from mlcicd.printable import escape

SENSITIVE = "(sensitive)"
UNKNOWN = "(known after apply)"
# Actions whose entries show the values that go rather than the values that come.
_GOING = frozenset({"destroy", "forget"})


class Attribute(NamedTuple):  # a tuple: a big plan makes tens of thousands
    """One attribute of a change; `before`/`after` are whole, redacted JSON text or a marker,
    "" on the side that does not exist (before a create, after a destroy)."""

    name: str
    before: str
    after: str
    forces_replacement: bool = False
    document: tuple[docdiff.Change, ...] = ()  # when the value is a JSON document


# \d\d* rather than \d+: a pattern that starts with a character class lets the engine skip ahead
# to the next digit, where \d+ tries a match at every character of ten thousand addresses.
_NUMBERS = re.compile(r"\d\d*")


def natural_key(text: str) -> str:
    """Sort key that orders numbers by value: r[2] before r[10]. Numbers are zero-padded, so
    the keys compare as plain strings (twice as fast as tuples over ten thousand addresses).
    The usual address ends in a numeric index (`module.m[3].aws_x.y[12]`): its index is padded
    here and the rest, shared by all the indexes of a resource, is padded once."""
    head, bracket, index = text.rpartition("[")
    if bracket and index[-1:] == "]" and index[:-1].isdecimal():  # isdecimal: what \d matches
        return f"{_natural_key(head)}[{index[:-1].zfill(24)}]"
    return _natural_key(text)


@functools.lru_cache(maxsize=4096)
def _natural_key(text: str) -> str:
    return _NUMBERS.sub(_padded, text)


def _padded(match: re.Match[str]) -> str:
    return match[0].zfill(24)


def clean(text: str, masker: Masker) -> str:
    """A plan-derived name on one line: secrets masked, control and bidi characters escaped."""
    return _escaped(masker.sub(text))


def _escaped(text: str) -> str:
    # Printable ASCII (the common case) needs no escaping; the check is much cheaper than the regex.
    return text if text.isascii() and text.isprintable() else escape(text, one_line=True)


# One encoder for every value: json.dumps builds a new one per call when given options.
_ENCODE = json.JSONEncoder(ensure_ascii=False, sort_keys=True).encode
_ENCODE_STRING = json.encoder.encode_basestring


def attributes(change: Mapping[str, Any], action: str, masker: Masker) -> tuple[Attribute, ...]:
    # plan.json comes from json.load: plain dicts and lists (isinstance on them is the cheap kind).
    before, after = change.get("before"), change.get("after")
    before = before if isinstance(before, dict) else {}
    after = after if isinstance(after, dict) else {}
    unknown = change.get("after_unknown")
    unknown = unknown if unknown and isinstance(unknown, dict) else {}
    paths = change.get("replace_paths")
    forced = {p[0] for p in paths if isinstance(p, list) and p} if paths else ()
    going, creating = action in _GOING, action == "create"
    if going:
        names = [n for n, v in before.items() if _present(v)]
    elif creating:
        names = [n for n, v in after.items() if _present(v) or unknown.get(n) is True]
        names += [n for n, u in unknown.items() if u and n not in after]
    else:
        names = [n for n in {**before, **after, **unknown} if before.get(n) != after.get(n) or unknown.get(n)]
    replacing = action in ("replace", "create-before-destroy")
    # Marks: True (all of it), a map of names to marks, or None (nothing marked).
    b_sens, a_sens = change.get("before_sensitive"), change.get("after_sensitive")
    b_sens = b_sens if b_sens is True or (b_sens and type(b_sens) is dict) else None
    a_sens = a_sens if a_sens is True or (a_sens and type(a_sens) is dict) else None
    out = []
    for name in sorted(names):
        b_mark = b_sens is True or (b_sens.get(name, False) if b_sens else False)
        a_mark = a_sens is True or (a_sens.get(name, False) if a_sens else False)
        is_unknown = unknown.get(name, False) if unknown else False
        b_text, b_doc = ("", None) if creating else _side(before.get(name), b_mark, False, masker)
        a_text, a_doc = ("", None) if going else _side(after.get(name), a_mark, is_unknown, masker)
        document: tuple[docdiff.Change, ...] = ()
        if (b_doc is not None or a_doc is not None) and True not in (b_mark, a_mark, is_unknown):
            document = tuple(docdiff.Change(c.kind, clean(c.path, masker), clean(c.before, masker),
                                            clean(c.after, masker)) for c in docdiff.diff(b_doc, a_doc))
        out.append(_attribute((_clean_name(name, masker), b_text, a_text, replacing and name in forced, document)))
    return tuple(out)


# Attribute's own constructor is Python code (it fills in defaults); a big plan makes tens of
# thousands, every field given.
_attribute = functools.partial(tuple.__new__, Attribute)


def _side(value: Any, sensitive: Any, unknown: Any, masker: Masker) -> tuple[str, Any]:
    """`value` shown (see `show`), and the JSON document it holds, if it is one."""
    if type(value) is not str or sensitive or unknown:
        return show(value, sensitive, unknown, masker), None
    # Masked once, before parsing too: the masker knows a secret's JSON-escaped form.
    masked = masker.sub(value)
    text = _ENCODE_STRING(masked)
    if not text.isascii() or "\x7f" in text:
        text = escape(text)
    return text, docdiff.parse(masked) if masked and (masked[0] in "{[" or masked[0].isspace()) else None


@functools.lru_cache(maxsize=4096)
def _clean_name(name: str, masker: Masker) -> str:
    """_clean for attribute names, which repeat in every resource of a type."""
    return clean(name, masker)


def _present(value: Any) -> bool:
    """Whether a planned value says something (Terraform's own diff hides nulls and empties)."""
    return bool(value) or (value is not None and not isinstance(value, str | list | dict))


def _sub(marker: Any, key: Any) -> Any:
    if marker is True:
        return True
    if type(marker) is dict:
        return marker.get(key, False)
    if type(marker) is list and type(key) is int:
        return marker[key] if key < len(marker) else False
    return False


def show(value: Any, sensitive: Any, unknown: Any, masker: Masker) -> str:
    """One value, whole, as JSON text: sensitive parts redacted, unknown parts marked, strings
    masked, control characters escaped. The formats decide how much of it to print."""
    if sensitive is True:
        return SENSITIVE
    if unknown is True:
        return UNKNOWN
    if isinstance(value, str) and not sensitive and not unknown:  # the common case, made short
        return _escaped_value(_ENCODE_STRING(masker.sub(value)))
    return _escaped_value(_ENCODE(_redact(value, sensitive, unknown, masker)))


def _escaped_value(text: str) -> str:
    # JSON text has its C0 controls escaped already; of ASCII only DEL is left (isascii is a flag).
    return text if text.isascii() and "\x7f" not in text else escape(text)


def _redact(value: Any, sensitive: Any, unknown: Any, masker: Masker) -> Any:
    if sensitive is True:
        return SENSITIVE
    if unknown is True:
        return UNKNOWN
    if isinstance(value, str):
        return masker.sub(value)
    if isinstance(value, Mapping) or isinstance(unknown, Mapping):
        value = value if isinstance(value, Mapping) else {}
        keys = [*value, *(k for k in unknown if k not in value)] if isinstance(unknown, Mapping) else list(value)
        return {masker.sub(k): _redact(value.get(k), _sub(sensitive, k), _sub(unknown, k), masker) for k in keys}
    if isinstance(value, list) or isinstance(unknown, list):
        items = value if isinstance(value, list) else [None] * len(unknown)
        return [_redact(v, _sub(sensitive, i), _sub(unknown, i), masker) for i, v in enumerate(items)]
    return value
