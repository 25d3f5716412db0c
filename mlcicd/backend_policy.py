"""The state bucket's policy document: the EnforcedTLS deny statement mlcicd writes, and the
statements written by others that let someone outside the devops account in.

Pure functions on the policy JSON; the items that read and write it are in backend_bucket.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from mlcicd import aws

TLS_SID = "EnforcedTLS"
_ACCOUNT_ARN = re.compile(r"arn:[a-z-]+:(?:iam|sts)::(\d{12}):")


def statements(policy: dict[str, Any] | None) -> list[dict[str, Any]]:
    found = (policy or {}).get("Statement") or []
    return [found] if isinstance(found, dict) else list(found)


def tls_statement(bucket: str, region: str) -> dict[str, Any]:
    """Deny every request to the bucket and its objects that does not use TLS."""
    arn = f"arn:{aws.partition(region)}:s3:::{bucket}"
    return {
        "Sid": TLS_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [arn, f"{arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def merge_tls_statement(policy: dict[str, Any] | None, bucket: str, region: str) -> dict[str, Any]:
    """`policy` with its EnforcedTLS statement replaced by ours (added when absent); every
    other statement is kept as it is."""
    merged = dict(policy or {"Version": "2012-10-17"})
    merged["Statement"] = [s for s in statements(policy) if s.get("Sid") != TLS_SID] + [tls_statement(bucket, region)]
    return merged


def _as_list(value: Any) -> list[Any]:
    return [value] if isinstance(value, str | dict) else list(value or [])


def _normal(statement: dict[str, Any]) -> dict[str, Any]:
    principal = statement.get("Principal")
    if isinstance(principal, dict) and principal.get("AWS") == "*":
        principal = "*"
    return {"Effect": statement.get("Effect"), "Principal": principal,
            "Action": sorted(_as_list(statement.get("Action"))),
            "Resource": sorted(_as_list(statement.get("Resource"))),
            "Condition": statement.get("Condition")}


def has_tls_statement(policy: dict[str, Any] | None, bucket: str, region: str) -> bool:
    want = _normal(tls_statement(bucket, region))
    return any(s.get("Sid") == TLS_SID and _normal(s) == want for s in statements(policy))


@dataclass(frozen=True)
class Grant:
    """One Allow statement that lets in someone other than the devops account."""

    number: int  # 1-based position in the policy, for statements without a Sid
    sid: str
    who: tuple[str, ...]
    actions: str

    def describe(self) -> str:
        from mlcicd.printable import escape

        name = f"statement '{self.sid}'" if self.sid else f"statement #{self.number}"
        return escape(f"{name} allows {', '.join(self.who)}: {self.actions}", one_line=True)


def _outsider(kind: str, value: str, account: str) -> str | None:
    """How to name a principal when it is not the devops account (None when it is)."""
    if kind == "Service":
        return None  # an AWS service acting for this account, e.g. logging.s3.amazonaws.com
    if kind != "AWS":
        return f"{kind} principal {value}"
    if value == "*":
        return "everyone (*)"
    if value == account:
        return None
    match = _ACCOUNT_ARN.match(value)
    if match:
        return None if match[1] == account else f"account {match[1]} ({value})"
    if re.fullmatch(r"\d{12}", value):
        return f"account {value}"
    return f"principal {value} (not recognisably in account {account})"


def foreign_grants(policy: dict[str, Any] | None, account: str) -> tuple[Grant, ...]:
    """The Allow statements whose principal is anyone but `account` (or an AWS service).
    A NotPrincipal allow lets in everyone but the ones named, so it always counts."""
    grants = []
    for number, statement in enumerate(statements(policy), 1):
        if statement.get("Effect") != "Allow":
            continue
        if "NotPrincipal" in statement:
            who = ["everyone except the NotPrincipal list"]
        else:
            principal = statement.get("Principal")
            pairs = [("AWS", "*")] if principal == "*" else [
                (kind, str(value)) for kind, values in (principal or {}).items() for value in _as_list(values)]
            who = [w for w in (_outsider(kind, value, account) for kind, value in pairs) if w]
        if who:
            actions = ", ".join(str(a) for a in _as_list(statement.get("Action")))
            if "NotAction" in statement:
                actions = "every action except " + ", ".join(str(a) for a in _as_list(statement["NotAction"]))
            grants.append(Grant(number, str(statement.get("Sid") or ""), tuple(who), actions or "no action"))
    return tuple(grants)
