"""The plan review: what a plan will do, told from plan.json, for people and for gates.

Counts and lists come from `resource_changes[].change.actions` (never from Terraform's text
output). Destructive changes come first and are marked, addresses in natural order. Each
resource carries the attributes that matter for its action (review_values). Every string that
leaves this module passes the masker (a secret that appears elsewhere in the plan is hidden
too) and then `printable.escape`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from mlcicd import masking, plandir
from mlcicd.errors import ReviewBlocked, UsageError
from mlcicd.masking import Masker
from mlcicd.review_values import Attribute, attributes, clean, natural_key, show

if TYPE_CHECKING:  # a Policy exists only when checkov ran, and its module is loaded to run checkov
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
# How mlcicd/offline/preview.py marks the Terraform version in an offline plan's manifest
# (not imported: the offline package loads the plugin protocol, too slow for every review).
OFFLINE = "offline preview"
OFFLINE_NOTE = ("Offline preview: planned against mlcicd's stand-in for hashicorp/aws on an empty state; "
                "it shows what the configuration declares and cannot be applied.")

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
        return attributes(self.raw.get("change") or {}, self.action, self.masker)

    @_lazy
    def group(self) -> str:
        """Module + resource type: how big sections are summarised."""
        module, kind = self.raw.get("module_address", ""), self.raw.get("type", "")
        return clean(f"{module} {kind}" if module and kind else (module or kind), self.masker) or self.address

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
        where = f"{self.env} ({OFFLINE}, cannot be applied)" if self.offline else self.env
        return f"{where}: {self.changes}"

    @property
    def changes(self) -> str:
        """What the plan does, in counts: "2 to create, 1 to destroy", or "no changes"."""
        parts = [f"{n} to {a}" for a, n in self.counts.items()]
        if self.outputs:
            parts.append(f"{len(self.outputs)} output change{'s' if len(self.outputs) != 1 else ''}")
        if self.drift:
            parts.append(f"{len(self.drift)} drifted")
        if self.policy and self.policy.failed:
            parts.append(f"{len(self.policy.failed)} policy failure{'s' if len(self.policy.failed) != 1 else ''}")
        return ", ".join(parts) if parts else "no changes"

    def destructive(self) -> list[Entry]:
        return [e for a in SECTIONS if a in DESTRUCTIVE for e in self.sections.get(a, ())]

    def with_policy(self, policy: Policy | None) -> Review:
        return Review(self.env, self.sections, self.drift, self.outputs, policy, self.plan_sha256, self.offline)


# -- building ----------------------------------------------------------------------------------


def sensitive_strings(plan: plandir.PlanJSON) -> list[str]:
    """Every string the plan marks sensitive: variables, resource attributes (before and after,
    drift included), outputs, and the prior state."""
    data = plan.data
    found = plan.sensitive_values()
    for rc in (*data.get("resource_changes", ()), *data.get("resource_drift", ())):
        change = rc.get("change") or {}
        # Most changes mark nothing: their marks are checked here, not in a call per side.
        marks = change.get("before_sensitive")
        if marks:
            masking.collect_marked(change.get("before"), marks, found)
        marks = change.get("after_sensitive")
        if marks:
            masking.collect_marked(change.get("after"), marks, found)
    for oc in data.get("output_changes", {}).values():
        for side in ("before", "after"):
            masking.collect_marked(oc.get(side), bool(oc.get(f"{side}_sensitive")), found)
    # Once each: a big plan repeats the same few secrets, and each becomes several regex forms.
    return list(dict.fromkeys([*found, *masking.sensitive_state_values(data.get("prior_state") or {})]))


def build(env: str, plan: plandir.PlanJSON, masker: Masker, plan_sha256: str = "",
          offline: bool = False) -> Review:
    """The review of `plan`. `masker` should already know the configured masks."""
    masker = masker.with_values(sensitive_strings(plan))
    sections: dict[str, list[tuple[str, Entry]]] = {a: [] for a in SECTIONS}
    # The raw entries: wrapping ten thousand of them in ResourceChange first costs more than this loop.
    for raw in plan.data.get("resource_changes") or ():
        change = raw.get("change") or {}
        actions = _review_actions(raw, change)
        if not actions:
            continue
        # Cleaned and keyed for sorting once, whatever the number of sections it is in.
        address = clean(raw["address"], masker)
        key = natural_key(address)
        for action in actions:
            sections[action].append((key, _entry(raw, change, address, action, masker)))
    drift = tuple(_entry(rc.raw, rc.raw.get("change") or {}, clean(rc.address, masker),
                         "destroy" if rc.actions == ("delete",) else "update", masker)
                  for rc in plan.resource_drift.values())
    outputs = tuple(_output(name, oc, masker) for name, oc in sorted(plan.output_changes.items()))
    ordered = {a: tuple(e for _, e in sorted(es, key=_first)) for a, es in sections.items()}
    return Review(clean(env, masker), ordered, drift, outputs, None, plan_sha256, offline)


_first = itemgetter(0)
# The main section of the usual action lists, looked up before working it out.
_MAIN_SECTION = {("create",): "create", ("update",): "update", ("delete",): "destroy",
                 ("delete", "create"): "replace", ("create", "delete"): "create-before-destroy",
                 ("no-op",): None, ("read",): None}


def _review_actions(raw: Mapping[str, Any], change: Mapping[str, Any]) -> tuple[str, ...]:
    """The sections a resource change belongs in: its main action, plus import/move when those
    also happen."""
    actions = tuple(change.get("actions") or ())
    if actions in _MAIN_SECTION:
        main = _MAIN_SECTION[actions]
    elif "forget" in actions:
        main = "forget"
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


def _entry(raw: Mapping[str, Any], change: Mapping[str, Any], address: str, action: str, masker: Masker) -> Entry:
    importing = change.get("importing")
    reason = raw.get("action_reason")
    paths = change.get("replace_paths")
    previous = raw.get("previous_address")
    # Positional, in field order: matching eight keywords per entry was 1% of a big review.
    return Entry(
        address,
        action,
        clean(_REASONS.get(reason, reason.replace("_", " ")), masker) if reason else "",  # reason
        tuple(clean(_path(p), masker) for p in paths) if paths else (),  # replace_paths
        clean(previous, masker) if previous else "",  # moved_from
        clean(str(importing["id"]), masker) if importing and importing.get("id") else "",  # import_id
        raw,
        masker,
    )


def _path(steps: Any) -> str:
    if not isinstance(steps, list):
        return str(steps)
    return "".join(f"[{s}]" if isinstance(s, int) else (f".{s}" if i else str(s)) for i, s in enumerate(steps))


def _output(name: str, oc: Mapping[str, Any], masker: Masker) -> OutputChange:
    action = _output_action(oc.get("actions", ()))
    return OutputChange(
        clean(name, masker), action,
        "" if action == "create" else show(oc.get("before"), oc.get("before_sensitive"), False, masker),
        "" if action == "destroy" else show(oc.get("after"), oc.get("after_sensitive"), oc.get("after_unknown"),
                                            masker))


def _output_action(actions: Iterable[str]) -> str:
    actions = tuple(actions)
    if actions in (("delete", "create"), ("create", "delete")):
        return "update"
    return {"delete": "destroy"}.get(actions[0], actions[0]) if actions else "update"


# -- gates -------------------------------------------------------------------------------------


def parse_gates(text: str) -> frozenset[str]:
    """The --fail-on kinds; `none` (what the pipeline's REVIEW_FAIL_ON offers for no gate) is none."""
    names = frozenset(p.strip() for p in text.split(",") if p.strip())
    if names == {"none"}:
        return frozenset()
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
