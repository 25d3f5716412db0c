"""A small IAM policy evaluator: would AWS allow this request under these policies?

Written here because no maintained Python package decides a request: policyuniverse parses
and expands policies, parliament and cloudsplaining lint them, moto's access control has no
NotResource and turns an unmet Allow condition into an explicit Deny, and aws-why asks AWS's
own simulator (an account and network). It follows AWS's documented evaluation logic
(docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html) for what
the pipeline's policies use — identity policies and one resource policy (bucket, key, model
package group, role trust), no SCPs, boundaries or session policies — and answers "unknown"
with a reason wherever it cannot decide (a condition key the request does not state, an
operator it does not implement, a value an offline plan does not know), never "allow".
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

# A value an offline plan shows as "known after apply".
UNKNOWN_VALUE = "(known after apply)"
# A condition key the request is known NOT to carry (a key missing from the context is unknown).
ABSENT = object()

Tri = bool | None  # True, False, or None for "cannot tell"


def _and(*values: Tri) -> Tri:
    return False if False in values else (None if None in values else True)


def _or(*values: Tri) -> Tri:
    return True if True in values else (None if None in values else False)


@dataclass(frozen=True)
class Request:
    action: str  # service:Operation, e.g. s3:GetObject
    resource: str  # the ARN, or "*" for an action without a resource type
    principal: str  # the role the caller acts as: arn:aws:iam::ACCOUNT:role/NAME
    context: Mapping[str, Any] = field(default_factory=dict)  # condition key -> value(s) or ABSENT

    @property
    def account(self) -> str:
        return self.principal.split(":")[4]

    def key(self, name: str) -> Any:
        lowered = {k.lower(): v for k, v in self.context.items()}
        if name.lower() == "aws:principalarn":
            return lowered.get(name.lower(), self.principal)
        if name.lower() == "aws:principalaccount":
            return lowered.get(name.lower(), self.account)
        return lowered.get(name.lower())


@dataclass(frozen=True)
class Verdict:
    decision: str  # allow, explicit-deny, implicit-deny, unknown
    reasons: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.decision == "allow"


@lru_cache(maxsize=4096)
def _glob(pattern: str, ignore_case: bool) -> re.Pattern:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{body}$", re.S | (re.I if ignore_case else 0))


def _listed(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _match_any(patterns: list, value: str, *, ignore_case: bool) -> Tri:
    """True if a pattern matches; None if none does but one is unknown (a plan value, a policy variable)."""
    unknown = False
    for pattern in patterns:
        if pattern is None or pattern == UNKNOWN_VALUE or "${" in str(pattern):
            unknown = True
        elif _glob(str(pattern), ignore_case).match(value):
            return True
    return None if unknown else False


def _arn_like(pattern: str, value: str) -> bool:
    """ArnLike/ArnEquals: each of the six colon-separated parts matched on its own."""
    parts, values = pattern.split(":", 5), value.split(":", 5)
    return len(parts) == len(values) == 6 and all(_glob(p, False).match(v) for p, v in zip(parts, values, strict=True))


_OPERATORS = {
    "StringEquals": (lambda p, v: p == v, False),
    "StringNotEquals": (lambda p, v: p == v, True),
    "StringEqualsIgnoreCase": (lambda p, v: p.lower() == v.lower(), False),
    "StringNotEqualsIgnoreCase": (lambda p, v: p.lower() == v.lower(), True),
    "StringLike": (lambda p, v: bool(_glob(p, False).match(v)), False),
    "StringNotLike": (lambda p, v: bool(_glob(p, False).match(v)), True),
    "ArnEquals": (_arn_like, False),
    "ArnLike": (_arn_like, False),
    "ArnNotEquals": (_arn_like, True),
    "ArnNotLike": (_arn_like, True),
    "Bool": (lambda p, v: p.lower() == v.lower(), False),
}


def _condition(operator: str, key: str, expected: list, request: Request) -> tuple[Tri, str]:
    qualifier, _, base = operator.rpartition(":")
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    value = request.key(key)
    if value is None:
        return None, f"condition {operator} {key}: the request states no value for {key}"
    if base == "Null":
        absent = value is ABSENT
        return any(str(e).lower() == str(absent).lower() for e in expected), ""
    if base not in _OPERATORS:
        return None, f"condition operator {operator} is not implemented"
    if any(e is None or e == UNKNOWN_VALUE for e in expected):
        return None, f"condition {operator} {key}: a value is {UNKNOWN_VALUE}"
    test, negated = _OPERATORS[base]
    if value is ABSENT:
        return if_exists or negated, ""
    values = [str(v) for v in _listed(value)] if not isinstance(value, bool) else [str(value).lower()]
    expected = [str(e).lower() if isinstance(e, bool) else str(e) for e in expected]

    def one(v: str) -> bool:
        hit = any(test(e, v) for e in expected)
        return not hit if negated else hit

    if qualifier == "ForAnyValue":
        return any(one(v) for v in values), ""
    if qualifier == "ForAllValues":
        return all(one(v) for v in values), ""
    if qualifier or len(values) != 1:
        return None, f"condition {operator} {key}: a multi-valued key needs ForAnyValue/ForAllValues"
    return one(values[0]), ""


def _principal(statement: Mapping, request: Request) -> str:
    """How a resource-policy statement names the caller: "direct" (its role), "account"
    (its account, which then delegates to the account's own policies), or "" (not at all)."""
    if "NotPrincipal" in statement:
        return "unknown"  # not implemented: neither a grant nor a denial is assumed
    principal = statement.get("Principal")
    if principal == "*":
        return "direct"  # everyone, this caller included
    found = ""
    for arn in _listed((principal or {}).get("AWS")):
        if arn in ("*", request.principal):
            return "direct"
        elif arn in (request.account, f"arn:aws:iam::{request.account}:root"):
            found = "account"
    return found


def _statement(statement: Mapping, request: Request, resource_policy: bool) -> tuple[Tri, str, list[str]]:
    """Does the statement apply to the request? With how the principal matched, and why unknown."""
    why: list[str] = []
    if "NotAction" in statement:
        hit = _match_any(_listed(statement["NotAction"]), request.action, ignore_case=True)
        action = None if hit is None else not hit
    else:
        action = _match_any(_listed(statement.get("Action")), request.action, ignore_case=True)
    if action is False:
        return False, "", why
    if "NotResource" in statement:
        hit = _match_any(_listed(statement["NotResource"]), request.resource, ignore_case=False)
        resource = None if hit is None else not hit
    elif "Resource" in statement:
        resource = _match_any(_listed(statement["Resource"]), request.resource, ignore_case=False)
    else:
        resource = resource_policy  # a trust policy has no Resource: the role itself
    if resource is None:
        why.append(f"a resource of statement {statement.get('Sid', '-')} is {UNKNOWN_VALUE}")
    how = _principal(statement, request) if resource_policy else "identity"
    principal_known: Tri = True
    if how == "unknown":
        how, principal_known = "account", None
        why.append(f"statement {statement.get('Sid', '-')}: NotPrincipal is not implemented")
    elif not how and resource_policy and UNKNOWN_VALUE in repr(statement.get("Principal")):
        how, principal_known = "account", None
        why.append(f"a principal of statement {statement.get('Sid', '-')} is {UNKNOWN_VALUE}")
    if not how:
        return False, "", why
    conditions: list[Tri] = []
    for operator, keys in (statement.get("Condition") or {}).items():
        for key, expected in keys.items():
            result, reason = _condition(operator, key, _listed(expected), request)
            conditions.append(result)
            if reason:
                why.append(f"statement {statement.get('Sid', '-')}: {reason}")
    return _and(action, resource, principal_known, *conditions), how, why


@dataclass(frozen=True)
class PolicyResult:
    deny: Tri
    allow: Tri  # by any matching Allow
    direct: Tri  # by an Allow naming the caller itself (resource policies)
    reasons: tuple[str, ...]


def evaluate(document: Mapping, request: Request, *, resource_policy: bool = False) -> PolicyResult:
    deny: list[Tri] = [False]
    allow: list[Tri] = [False]
    direct: list[Tri] = [False]
    reasons: list[str] = []
    for statement in _listed(document.get("Statement")):
        applies, how, why = _statement(statement, request, resource_policy)
        if applies is False:
            continue
        reasons += why
        if statement.get("Effect") == "Deny":
            deny.append(applies)
            reasons.append(f"Deny {statement.get('Sid', '-')}")
        else:
            allow.append(applies)
            direct.append(applies if how in ("direct", "identity") else False)
            if applies:
                reasons.append(f"Allow {statement.get('Sid', '-')}")
    return PolicyResult(_or(*deny), _or(*allow), _or(*direct), tuple(reasons))


def decide(request: Request, identity: Sequence[Mapping], resource: Mapping | None = None, *,
           resource_account: str | None = None, resource_required: bool = False) -> Verdict:
    """AWS's decision for one request. `resource` is the resource's policy (bucket, key, model
    package group, or a role's trust policy); `resource_required` when that policy must allow
    even within one account (role trust policies, KMS key policies)."""
    results = [evaluate(d, request) for d in identity]
    mine = PolicyResult(_or(*(r.deny for r in results)), _or(*(r.allow for r in results)), None,
                        tuple(x for r in results for x in r.reasons))
    theirs = evaluate(resource, request, resource_policy=True) if resource is not None else None
    reasons = tuple(f"identity: {r}" for r in mine.reasons or ("no statement allows it",))
    if theirs is not None:
        reasons += tuple(f"resource policy: {r}" for r in theirs.reasons or ("no statement allows it",))
    deny = _or(mine.deny, theirs.deny if theirs else False)
    if deny is True:
        return Verdict("explicit-deny", reasons)
    res_any = theirs.allow if theirs else False
    res_direct = theirs.direct if theirs else False
    same_account = (resource_account or request.account) == request.account
    if not same_account:
        allow = _and(mine.allow, res_any)
    elif resource_required:
        allow = _or(res_direct, _and(res_any, mine.allow))
    else:
        allow = _or(mine.allow, res_direct)
    if deny is None or allow is None:
        if allow is False:
            return Verdict("implicit-deny", reasons)
        return Verdict("unknown", reasons)
    return Verdict("allow" if allow else "implicit-deny", reasons)
