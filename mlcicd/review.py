"""The plan review: what a plan will do, told from plan.json, for people and for gates.

Counts and lists come from `resource_changes[].change.actions` (never from Terraform's text
output). Destructive changes come first and are marked. Each resource carries the attributes
that matter for its action: planned values for a create, the values that change for an update
or replace (marked where they force the replacement), the values that go for a destroy. JSON
documents in attributes (policies, pipeline definitions) are diffed by structure (docdiff).
Values Terraform marks sensitive are shown as "(sensitive)", values it cannot know yet as
"(known after apply)"; every string that leaves this module passes the masker (a secret that
appears elsewhere in the plan is hidden too) and then `printable.escape`.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from mlcicd import docdiff, masking
from mlcicd import plan as plandir
from mlcicd.errors import ReviewBlocked, UsageError
from mlcicd.masking import Masker
from mlcicd.policy import Policy
from mlcicd.printable import escape

# Section order: destructive first. Keys are the review's action names.
SECTIONS: dict[str, str] = {
    "destroy": "Destroy",
    "replace": "Replace (destroy, then create)",
    "create-before-destroy": "Replace (create before destroy)",
    "forget": "Forget (removed from state, not destroyed)",
    "create": "Create",
    "update": "Update in place",
    "import": "Import",
    "move": "Move",
}
DESTRUCTIVE = frozenset({"destroy", "replace", "create-before-destroy"})
# What --fail-on accepts beyond the section names.
GATE_GROUPS: dict[str, frozenset[str]] = {
    "destructive": DESTRUCTIVE,
    "replace": frozenset({"replace", "create-before-destroy"}),
    "delete": frozenset({"destroy"}),
}
GATES = frozenset(SECTIONS) | frozenset(GATE_GROUPS) | {"drift", "output", "policy"}
SENSITIVE = "(sensitive)"
UNKNOWN = "(known after apply)"
# How mlcicd/offline/preview.py marks the Terraform version in an offline plan's manifest
# (not imported: the offline package loads the plugin protocol, too slow for every review).
OFFLINE = "offline preview"
OFFLINE_NOTE = ("Offline preview: planned against mlcicd's stand-in for hashicorp/aws on an empty state; "
                "it shows what the configuration declares and cannot be applied.")
# Actions whose entries show the values that go rather than the values that come.
_GOING = frozenset({"destroy", "forget"})

_REASONS = {
    "replace_because_tainted": "tainted",
    "replace_because_cannot_update": "cannot be updated in place",
    "replace_by_request": "replacement requested",
    "replace_by_triggers": "replace_triggered_by",
    "delete_because_no_resource_config": "removed from the configuration",
    "delete_because_no_module": "its module was removed",
    "delete_because_wrong_repetition": "count/for_each changed form",
    "delete_because_count_index": "count index out of range",
    "delete_because_each_key": "for_each key removed",
    "delete_because_no_move_target": "moved to an address that does not exist",
}


class Attribute(NamedTuple):  # a tuple: a big plan makes tens of thousands
    """One attribute of a change; `before`/`after` are whole, redacted JSON text or a marker,
    "" on the side that does not exist (before a create, after a destroy)."""

    name: str
    before: str
    after: str
    forces_replacement: bool = False
    document: tuple[docdiff.Change, ...] = ()  # when the value is a JSON document


class _lazy:  # noqa: N801 -- functools.cached_property without the lock it takes on every first access (3.11)
    def __init__(self, compute: Any) -> None:
        self.compute, self.name, self.__doc__ = compute, compute.__name__, compute.__doc__

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            return self
        value = obj.__dict__[self.name] = self.compute(obj)
        return value


@dataclass  # not frozen: a big plan makes ten thousand, and frozen fields are slow to set
class Entry:
    """One resource in the review, its values already redacted and masked; read-only by use."""

    address: str
    action: str
    reason: str = ""
    replace_paths: tuple[str, ...] = ()
    moved_from: str = ""
    import_id: str = ""
    # The attribute diff and the group are worked out only when shown: a big plan's text and
    # markdown reviews print a few rows per section.
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    masker: Masker = field(default_factory=Masker, compare=False, repr=False)

    @_lazy
    def attributes(self) -> tuple[Attribute, ...]:
        if self.action in ("import", "move"):  # their changes show in their main section
            return ()
        return _attributes(self.raw.get("change") or {}, self.action, self.masker)

    @_lazy
    def group(self) -> str:
        """Module + resource type: how big sections are summarised."""
        module, kind = self.raw.get("module_address", ""), self.raw.get("type", "")
        return _clean(f"{module} {kind}" if module and kind else (module or kind), self.masker) or self.address

    @property
    def destructive(self) -> bool:
        return self.action in DESTRUCTIVE

    @property
    def detail(self) -> str:
        parts = []
        if self.reason:
            parts.append(self.reason)
        if self.replace_paths:
            parts.append("forced by " + ", ".join(self.replace_paths))
        if self.moved_from and self.action != "move":
            parts.append(f"moved from {self.moved_from}")
        if self.action == "move":
            parts.append(f"from {self.moved_from}")
        if self.import_id:
            parts.append(f"import id {self.import_id}")
        return "; ".join(parts)


@dataclass(frozen=True)
class OutputChange:
    name: str
    action: str
    before: str
    after: str


@dataclass(frozen=True)
class Review:
    env: str
    sections: Mapping[str, tuple[Entry, ...]]
    drift: tuple[Entry, ...] = ()
    outputs: tuple[OutputChange, ...] = ()
    policy: Policy | None = None
    plan_sha256: str = ""
    offline: bool = False

    @property
    def counts(self) -> dict[str, int]:
        return {a: len(es) for a, es in self.sections.items() if es}

    @property
    def has_changes(self) -> bool:
        """Whether applying the plan would do anything: a resource action or an output change."""
        return bool(self.counts or self.outputs)

    @property
    def headline(self) -> str:
        parts = [f"{n} to {a}" for a, n in self.counts.items()]
        if self.outputs:
            parts.append(f"{len(self.outputs)} output change{'s' if len(self.outputs) != 1 else ''}")
        if self.drift:
            parts.append(f"{len(self.drift)} drifted")
        if self.policy and self.policy.failed:
            parts.append(f"{len(self.policy.failed)} policy failure{'s' if len(self.policy.failed) != 1 else ''}")
        where = f"{self.env} ({OFFLINE}, cannot be applied)" if self.offline else self.env
        return f"{where}: " + (", ".join(parts) if parts else "no changes")

    def destructive(self) -> list[Entry]:
        return [e for a in SECTIONS if a in DESTRUCTIVE for e in self.sections.get(a, ())]

    def with_policy(self, policy: Policy | None) -> Review:
        return Review(self.env, self.sections, self.drift, self.outputs, policy, self.plan_sha256, self.offline)


# -- building ----------------------------------------------------------------------------------


def load(path: Path) -> tuple[str, str, plandir.PlanJSON]:
    """(env, plan sha256, plan) from a plan directory, or from a bare plan.json file."""
    if path.is_dir():
        manifest = plandir.read_manifest(path)
        plan_json = path / plandir.PLAN_JSON
        if not plan_json.is_file():
            raise UsageError(f"{path} has no {plandir.PLAN_JSON}", hint="plan again with `mlcicd plan ENV --out DIR`")
        return manifest.env, manifest.plan_sha256, _load_json(plan_json)
    if path.is_file():
        return path.stem, plandir.sha256_file(path), _load_json(path)
    raise UsageError(f"{path} is neither a plan directory nor a plan.json file")


def is_offline(path: Path) -> bool:
    """Whether `path` is the plan directory of an offline preview, as its manifest says."""
    return path.is_dir() and plandir.read_manifest(path).terraform_version.endswith(f"({OFFLINE})")


def _load_json(path: Path) -> plandir.PlanJSON:
    try:
        plan = plandir.PlanJSON.load(path)
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path} is not readable plan JSON ({exc})") from None
    if not isinstance(plan.data, Mapping) or "format_version" not in plan.data:
        raise UsageError(f"{path} is not `terraform show -json` output of a plan")
    return plan


def sensitive_strings(plan: plandir.PlanJSON) -> list[str]:
    """Every string the plan marks sensitive: variables, resource attributes (before and after,
    drift included), outputs, and the prior state."""
    data = plan.data
    found = plan.sensitive_values()
    for rc in (*data.get("resource_changes", ()), *data.get("resource_drift", ())):
        change = rc.get("change", {})
        for side in ("before", "after"):
            masking.collect_marked(change.get(side), change.get(f"{side}_sensitive"), found)
    for oc in data.get("output_changes", {}).values():
        for side in ("before", "after"):
            masking.collect_marked(oc.get(side), bool(oc.get(f"{side}_sensitive")), found)
    # Once each: a big plan repeats the same few secrets, and each becomes several regex forms.
    return list(dict.fromkeys([*found, *masking.sensitive_state_values(data.get("prior_state") or {})]))


def build(env: str, plan: plandir.PlanJSON, masker: Masker, plan_sha256: str = "",
          offline: bool = False) -> Review:
    """The review of `plan`. `masker` should already know the configured masks."""
    masker = masker.with_values(sensitive_strings(plan))
    sections: dict[str, list[Entry]] = {a: [] for a in SECTIONS}
    # The raw entries: wrapping ten thousand of them in ResourceChange first costs more than this loop.
    for raw in plan.data.get("resource_changes") or ():
        for action in _review_actions(raw):
            sections[action].append(_entry(raw, action, masker))
    drift = tuple(_entry(rc.raw, "destroy" if rc.actions == ("delete",) else "update", masker)
                  for rc in plan.resource_drift.values())
    outputs = tuple(
        OutputChange(_clean(name, masker), _output_action(oc.get("actions", ())),
                     _show(oc.get("before"), oc.get("before_sensitive"), False, masker),
                     _show(oc.get("after"), oc.get("after_sensitive"), oc.get("after_unknown"), masker))
        for name, oc in sorted(plan.output_changes.items())
    )
    ordered = {a: tuple(sorted(es, key=lambda e: natural_key(e.address))) for a, es in sections.items()}
    return Review(_clean(env, masker), ordered, drift, outputs, None, plan_sha256, offline)


_NUMBERS = re.compile(r"(\d+)")


def natural_key(text: str) -> tuple[Any, ...]:
    """Sort key that orders numbers by value: r[2] before r[10]."""
    parts: list[Any] = _NUMBERS.split(text)
    parts[1::2] = [int(p) for p in parts[1::2]]
    return tuple(parts)


def _clean(text: str, masker: Masker) -> str:
    """A plan-derived name on one line: secrets masked, control and bidi characters escaped."""
    return _escaped(masker(text))


def _escaped(text: str) -> str:
    # Printable ASCII (the common case) needs no escaping; the check is much cheaper than the regex.
    return text if text.isascii() and text.isprintable() else escape(text, one_line=True)


# One encoder for every value: json.dumps builds a new one per call when given options.
_ENCODE = json.JSONEncoder(ensure_ascii=False, sort_keys=True).encode
_ENCODE_STRING = json.encoder.encode_basestring


def _review_actions(raw: Mapping[str, Any]) -> tuple[str, ...]:
    """The sections a resource change belongs in: its main action, plus import/move when those
    also happen."""
    change = raw.get("change") or {}
    actions = tuple(change.get("actions") or ())
    if "forget" in actions:
        main: str | None = "forget"
    elif actions in (("delete", "create"), ("create", "delete")):
        main = "replace" if actions[0] == "delete" else "create-before-destroy"
    elif not actions or actions[0] in ("no-op", "read"):
        main = None
    else:
        main = "destroy" if actions[0] == "delete" else actions[0]
    found = (main,) if main else ()
    if change.get("importing"):
        found += ("import",)
    previous = raw.get("previous_address")
    if previous and previous != raw.get("address"):
        found += ("move",)
    return found


def _entry(raw: Mapping[str, Any], action: str, masker: Masker) -> Entry:
    change = raw.get("change", {})
    importing = change.get("importing") or {}
    reason = raw.get("action_reason", "")
    paths = change.get("replace_paths")
    previous = raw.get("previous_address")
    return Entry(
        address=_clean(raw["address"], masker),
        action=action,
        reason=_clean(_REASONS.get(reason, reason.replace("_", " ")), masker) if reason else "",
        replace_paths=tuple(_clean(_path(p), masker) for p in paths) if paths else (),
        moved_from=_clean(previous, masker) if previous else "",
        import_id=_clean(str(importing["id"]), masker) if importing.get("id") else "",
        raw=raw,
        masker=masker,
    )


def _attributes(change: Mapping[str, Any], action: str, masker: Masker) -> tuple[Attribute, ...]:
    # plan.json comes from json.load: plain dicts and lists (isinstance on them is the cheap kind).
    before, after = change.get("before"), change.get("after")
    before = before if isinstance(before, dict) else {}
    after = after if isinstance(after, dict) else {}
    b_sens, a_sens = change.get("before_sensitive") or {}, change.get("after_sensitive") or {}
    unknown = change.get("after_unknown") or {}
    unknown_names = unknown if isinstance(unknown, dict) else {}
    paths = change.get("replace_paths")
    forced = {p[0] for p in paths if isinstance(p, list) and p} if paths else ()
    if action in _GOING:
        names = [n for n, v in before.items() if _present(v)]
    elif action == "create":
        names = [n for n, v in after.items() if _present(v) or unknown_names.get(n) is True]
        names += [n for n, u in unknown_names.items() if u and n not in after]
    else:
        names = [n for n in {**before, **after, **unknown_names}
                 if before.get(n) != after.get(n) or unknown_names.get(n)]
    going, creating = action in _GOING, action == "create"
    replacing = action in ("replace", "create-before-destroy")
    b_sens = b_sens if b_sens is True or type(b_sens) is dict else {}
    a_sens = a_sens if a_sens is True or type(a_sens) is dict else {}
    out = []
    for name in sorted(names):
        b_mark = True if b_sens is True else b_sens.get(name, False)
        a_mark = True if a_sens is True else a_sens.get(name, False)
        is_unknown = unknown_names.get(name, False)
        b_value = None if creating else before.get(name)
        a_value = None if going else after.get(name)
        document: tuple[docdiff.Change, ...] = ()
        if b_mark is not True and a_mark is not True and is_unknown is not True:
            b_doc, a_doc = _document(b_value, masker), _document(a_value, masker)
            if b_doc is not None or a_doc is not None:
                document = tuple(docdiff.Change(c.kind, _clean(c.path, masker), _clean(c.before, masker),
                                                _clean(c.after, masker)) for c in docdiff.diff(b_doc, a_doc))
        out.append(Attribute(
            _clean_name(name, masker),
            "" if creating else _show(b_value, b_mark, False, masker),
            "" if going else _show(a_value, a_mark, is_unknown, masker),
            replacing and name in forced,
            document,
        ))
    return tuple(out)


@functools.lru_cache(maxsize=4096)
def _clean_name(name: str, masker: Masker) -> str:
    """_clean for attribute names, which repeat in every resource of a type."""
    return _clean(name, masker)


def _document(value: Any, masker: Masker) -> Any:
    if not isinstance(value, str) or not value or not (value[0] in "{[" or value[0].isspace()):
        return None
    # Masked before parsing: the masker knows a secret's JSON-escaped form too.
    return docdiff.parse(masker(value))


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


def _show(value: Any, sensitive: Any, unknown: Any, masker: Masker) -> str:
    """One value, whole, as JSON text: sensitive parts redacted, unknown parts marked, strings
    masked, control characters escaped. The formats decide how much of it to print."""
    if sensitive is True:
        return SENSITIVE
    if unknown is True:
        return UNKNOWN
    if isinstance(value, str) and not sensitive and not unknown:  # the common case, made short
        return _escaped_value(_ENCODE_STRING(masker(value)))
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
        return masker(value)
    if isinstance(value, Mapping) or isinstance(unknown, Mapping):
        value = value if isinstance(value, Mapping) else {}
        keys = [*value, *(k for k in unknown if k not in value)] if isinstance(unknown, Mapping) else list(value)
        return {masker(k): _redact(value.get(k), _sub(sensitive, k), _sub(unknown, k), masker) for k in keys}
    if isinstance(value, list) or isinstance(unknown, list):
        items = value if isinstance(value, list) else [None] * len(unknown)
        return [_redact(v, _sub(sensitive, i), _sub(unknown, i), masker) for i, v in enumerate(items)]
    return value


def _path(steps: Any) -> str:
    if not isinstance(steps, list):
        return str(steps)
    return "".join(f"[{s}]" if isinstance(s, int) else (f".{s}" if i else str(s)) for i, s in enumerate(steps))


def _output_action(actions: Iterable[str]) -> str:
    actions = tuple(actions)
    if actions in (("delete", "create"), ("create", "delete")):
        return "update"
    return {"delete": "destroy"}.get(actions[0], actions[0]) if actions else "update"


# -- gates -------------------------------------------------------------------------------------


def parse_gates(text: str) -> frozenset[str]:
    names = frozenset(p.strip() for p in text.split(",") if p.strip())
    unknown = sorted(names - GATES)
    if unknown:
        raise UsageError(f"--fail-on: unknown value(s) {', '.join(unknown)}",
                         hint="choose from " + ", ".join(sorted(GATES)))
    return names


def gate(review: Review, gates: frozenset[str]) -> None:
    """Raise ReviewBlocked naming every address that one of `gates` blocks."""
    actions: set[str] = set()
    for g in gates:
        actions |= GATE_GROUPS.get(g, {g})
    blocked = [(e.address, e.action) for a in SECTIONS if a in actions for e in review.sections.get(a, ())]
    if "drift" in gates:
        blocked += [(e.address, "drift") for e in review.drift]
    if "output" in gates:
        blocked += [(f"output.{o.name}", "output") for o in review.outputs]
    if "policy" in gates and review.policy:
        blocked += [(f.address, f.check_id) for f in review.policy.failed]
    if not blocked:
        return
    shown = ", ".join(f"{addr} ({why})" for addr, why in blocked[:20])
    more = f" … and {len(blocked) - 20} more" if len(blocked) > 20 else ""
    raise ReviewBlocked(
        f"review gate --fail-on {','.join(sorted(gates))} blocked {len(blocked)} change(s): {shown}{more}",
        tuple(addr for addr, _ in blocked),
    )


def exports(review: Review, review_url: str = "") -> dict[str, str]:
    """What the Approval action shows, as CodeBuild exported variables."""
    counts = review.counts
    return {
        "PLAN_ENV": review.env,
        "PLAN_HEADLINE": review.headline,
        "PLAN_SHA256": review.plan_sha256,
        "PLAN_DESTROY": str(counts.get("destroy", 0)),
        "PLAN_REPLACE": str(counts.get("replace", 0) + counts.get("create-before-destroy", 0)),
        "PLAN_CREATE": str(counts.get("create", 0)),
        "PLAN_UPDATE": str(counts.get("update", 0)),
        "PLAN_CHANGES": str(len({e.address for es in review.sections.values() for e in es})),
        "REVIEW_URL": review_url,
    }
