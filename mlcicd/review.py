"""The plan review: what a plan will do, told from plan.json, for people and for gates.

Counts and lists come from `resource_changes[].change.actions` (never from Terraform's text
output). Destructive changes come first and are marked. Values Terraform marks sensitive are
shown as "(sensitive)", and every string that leaves this module passes the masker, so a
secret that appears elsewhere in the plan (an address, an output) is hidden too.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from mlcicd import masking, plandir
from mlcicd.errors import ReviewBlocked, UsageError
from mlcicd.masking import Masker
from mlcicd.policy import Policy

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
_VALUE_WIDTH = 80

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


@dataclass(frozen=True)
class Attribute:
    name: str
    before: str
    after: str


@dataclass(frozen=True)
class Entry:
    """One resource in the review, its values already redacted and masked."""

    address: str
    action: str
    group: str  # module + resource type: how big sections are summarised
    reason: str = ""
    replace_paths: tuple[str, ...] = ()
    moved_from: str = ""
    import_id: str = ""
    # The attribute diff is worked out only when shown: a big plan's review prints a few
    # rows per section, and computing every diff up front doubled its time.
    change: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    masker: Masker = field(default_factory=Masker, compare=False, repr=False)

    @cached_property
    def attributes(self) -> tuple[Attribute, ...]:
        if self.action not in ("update", "replace", "create-before-destroy"):
            return ()
        return _attributes(self.change, self.masker)

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
        return f"{self.env}: " + (", ".join(parts) if parts else "no changes")

    def destructive(self) -> list[Entry]:
        return [e for a in SECTIONS if a in DESTRUCTIVE for e in self.sections.get(a, ())]

    def with_policy(self, policy: Policy | None) -> Review:
        return Review(self.env, self.sections, self.drift, self.outputs, policy, self.plan_sha256)


# -- building ----------------------------------------------------------------------------------


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
    return [*found, *masking.sensitive_state_values(data.get("prior_state") or {})]


def build(env: str, plan: plandir.PlanJSON, masker: Masker, plan_sha256: str = "") -> Review:
    """The review of `plan`. `masker` should already know the configured masks."""
    masker = masker.with_values(sensitive_strings(plan))
    sections: dict[str, list[Entry]] = {a: [] for a in SECTIONS}
    for rc in plan.resource_changes.values():
        for action in _review_actions(rc):
            sections[action].append(_entry(rc, action, masker))
    drift = tuple(_entry(rc, "destroy" if rc.actions == ("delete",) else "update", masker)
                  for rc in plan.resource_drift.values())
    outputs = tuple(
        OutputChange(masker(name), _output_action(oc.get("actions", ())),
                     _show(oc.get("before"), oc.get("before_sensitive"), False, masker),
                     _show(oc.get("after"), oc.get("after_sensitive"), oc.get("after_unknown"), masker))
        for name, oc in sorted(plan.output_changes.items())
    )
    ordered = {a: tuple(sorted(es, key=lambda e: e.address)) for a, es in sections.items()}
    return Review(env, ordered, drift, outputs, None, plan_sha256)


def _review_actions(rc: plandir.ResourceChange) -> tuple[str, ...]:
    """The sections `rc` belongs in: its main action, plus import/move when those also happen."""
    raw = rc.raw
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


def _entry(rc: plandir.ResourceChange, action: str, masker: Masker) -> Entry:
    raw = rc.raw
    change = raw.get("change", {})
    importing = change.get("importing") or {}
    module, kind = raw.get("module_address", ""), raw.get("type", "")
    group = f"{module} {kind}" if module and kind else (module or kind or rc.address)
    reason = raw.get("action_reason", "")
    paths = change.get("replace_paths")
    return Entry(
        address=masker(rc.address),
        action=action,
        group=masker(group),
        reason=_REASONS.get(reason, reason.replace("_", " ")) if reason else "",
        replace_paths=tuple(masker(_path(p)) for p in paths) if paths else (),
        moved_from=masker(raw.get("previous_address", "")),
        import_id=masker(str(importing["id"])) if importing.get("id") else "",
        change=change,
        masker=masker,
    )


def _attributes(change: Mapping[str, Any], masker: Masker) -> tuple[Attribute, ...]:
    before = change.get("before") or {}
    after = change.get("after") or {}
    if not isinstance(before, Mapping) or not isinstance(after, Mapping):
        return ()
    b_sens, a_sens = change.get("before_sensitive") or {}, change.get("after_sensitive") or {}
    unknown = change.get("after_unknown") or {}
    out = []
    for name in sorted(set(before) | set(after) | (set(unknown) if isinstance(unknown, Mapping) else set())):
        is_unknown = _sub(unknown, name)
        if before.get(name) == after.get(name) and not is_unknown:
            continue
        out.append(Attribute(
            masker(name),
            _show(before.get(name), _sub(b_sens, name), False, masker),
            _show(after.get(name), _sub(a_sens, name), is_unknown, masker),
        ))
    return tuple(out)


def _sub(marker: Any, key: str) -> Any:
    if marker is True:
        return True
    return marker.get(key, False) if isinstance(marker, Mapping) else False


def _show(value: Any, sensitive: Any, unknown: Any, masker: Masker) -> str:
    """One value, compact: sensitive parts redacted, strings masked, long text shortened."""
    if sensitive is True:
        return SENSITIVE
    if unknown is True:
        return UNKNOWN
    text = json.dumps(_redact(value, sensitive, masker), ensure_ascii=False, sort_keys=True)
    return text if len(text) <= _VALUE_WIDTH else text[: _VALUE_WIDTH - 1] + "…"


def _redact(value: Any, marker: Any, masker: Masker) -> Any:
    if marker is True:
        return SENSITIVE
    if isinstance(value, str):
        return masker(value)
    if isinstance(value, Mapping):
        return {masker(k): _redact(v, _sub(marker, k), masker) for k, v in value.items()}
    if isinstance(value, list):
        marks = marker if isinstance(marker, list) else []
        return [_redact(v, marks[i] if i < len(marks) else False, masker) for i, v in enumerate(value)]
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
