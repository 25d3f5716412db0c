"""Least privilege across every IAM policy document in terraform/.

Policies are read from the HCL (mlcicd.hcl, python-hcl2 as checkov reads it): `aws_iam_policy_document`
data sources (dynamic statements included) and policies written inline with jsonencode(...).
A statement fails when it
  - allows `*` actions on `*` resources;
  - allows iam:PassRole (also through `iam:*`, `iam:Pass*` or `*`) without an
    iam:PassedToService condition;
  - trusts a whole account (`arn:aws:iam::ACCOUNT:root`) to assume a role, unless a condition
    pins the caller with aws:PrincipalArn — when the role that should assume is known, trust
    that role, not every principal of its account.
Attaching AWS's all-powerful managed policies fails too, and so does a whole-service wildcard
(`kms:*`, `sagemaker:*`, ...) in an identity policy (a statement without principals): key
policies' documented root statement is the one place a service wildcard stands.
"""

from __future__ import annotations

import ast
import fnmatch
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mlcicd import hcl

TERRAFORM = Path(__file__).resolve().parent.parent / "terraform"
POLICY_ATTRIBUTES = ("policy", "assume_role_policy")
ALL_POWERFUL = ("AdministratorAccess", "PowerUserAccess", "IAMFullAccess")


@dataclass(frozen=True)
class Statement:
    where: str  # file:line and the block it is in
    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    principals: tuple[str, ...]
    condition_keys: tuple[str, ...]


def _flat(value) -> tuple[str, ...]:
    """hcl2 wraps attribute values in lists, and expressions in ${...}: flatten to strings."""
    if value is None:
        return ()
    if isinstance(value, list | tuple):
        return tuple(s for v in value for s in _flat(v))
    if isinstance(value, dict):
        return tuple(s for v in value.values() for s in _flat(v))
    return (str(value),)


def _one(block: dict, key: str, default: str = "") -> str:
    values = _flat(block.get(key))
    return values[0] if values else default


@functools.cache
def _module_locals(directory: Path) -> dict:
    """Every local of a module, by name (hcl2's form: values wrapped in lists)."""
    found = {}
    for path in sorted(directory.glob("*.tf")):
        for block in hcl.parse_file(path).get("locals") or []:
            found.update({name: value for name, value in block.items() if not name.startswith("__")})
    return found


def _grants(value, sid: str = "-") -> Iterator[tuple[str, dict]]:
    """The statements (objects with `actions`) in a local's value, each under the key naming it."""
    if isinstance(value, list):
        for item in value:
            yield from _grants(item, sid)
    elif isinstance(value, dict):
        if "actions" in value:
            yield sid, value
        else:
            for key, item in value.items():
                if not key.startswith("__"):
                    yield from _grants(item, key)


def _dynamic_statements(dynamic: dict, directory: Path) -> Iterator[dict]:
    """The statements a dynamic block makes: from the locals its for_each reads when the
    content takes them from statement.value (a map of grants), else the content as written."""
    for_each = " ".join(_flat(dynamic.get("for_each")))
    for content in dynamic.get("content") or []:
        names = re.findall(r"\blocal\.(\w+)", for_each)
        if "statement.value.actions" not in " ".join(_flat(content.get("actions"))) or not names:
            yield content
            continue
        for name in names:
            for sid, grant in _grants(_module_locals(directory).get(name)):
                yield {**content, "sid": sid, "actions": grant["actions"], "resources": grant.get("resources")}


def _document_statements(where: str, document: dict, directory: Path) -> Iterator[Statement]:
    blocks = list(document.get("statement") or [])
    for dynamic in document.get("dynamic") or []:
        blocks += _dynamic_statements(dynamic.get("statement") or {}, directory)
    for block in blocks:
        yield Statement(
            where=f"{where} (sid {_one(block, 'sid', '-')})",
            effect=_one(block, "effect", "Allow"),
            actions=_flat(block.get("actions")),
            resources=_flat(block.get("resources")),
            principals=_flat([p.get("identifiers") for p in block.get("principals") or []]),
            condition_keys=_flat([c.get("variable") for c in block.get("condition") or []]),
        )


def _json_statements(where: str, expression: str) -> Iterator[Statement]:
    """A policy written as jsonencode({...}), which hcl2 renders as a Python literal."""
    inner = expression.strip()
    inner = inner.removeprefix("${jsonencode(").removesuffix(")}")
    policy = ast.literal_eval(inner)  # an unreadable policy fails the test: rewrite it readably
    statements = policy["Statement"]
    for block in statements if isinstance(statements, list) else [statements]:
        conditions = block.get("Condition") or {}
        yield Statement(
            where=f"{where} (sid {block.get('Sid', '-')})",
            effect=block.get("Effect", "Allow"),
            actions=_flat(block.get("Action")),
            resources=_flat(block.get("Resource")),
            principals=_flat(block.get("Principal")),
            condition_keys=tuple(k for test in conditions.values() for k in test),
        )


def policy_statements() -> Iterator[Statement]:
    for path in sorted(TERRAFORM.rglob("*.tf")):
        if ".terraform" in path.parts:
            continue
        parsed = hcl.parse_file(path)
        rel = path.relative_to(TERRAFORM.parent)
        for data in parsed.get("data") or []:
            for name, body in (data.get("aws_iam_policy_document") or {}).items():
                yield from _document_statements(f"{rel}:{body.get('__start_line__')} data.{name}", body, path.parent)
        for resource in parsed.get("resource") or []:
            for rtype, instances in resource.items():
                for name, body in instances.items():
                    for attribute in POLICY_ATTRIBUTES:
                        for value in _flat(body.get(attribute)):
                            if value.lstrip().startswith("${jsonencode("):
                                where = f"{rel}:{body.get('__start_line__')} {rtype}.{name}.{attribute}"
                                yield from _json_statements(where, value)


def managed_policy_arns() -> Iterator[tuple[str, str]]:
    for path in sorted(TERRAFORM.rglob("*.tf")):
        text = path.read_text(encoding="utf-8")
        for lineno, line in enumerate(text.splitlines(), 1):
            if ":iam::aws:policy/" in line:
                yield f"{path.relative_to(TERRAFORM.parent)}:{lineno}", line.strip()


def _allows(statement: Statement, action: str) -> bool:
    return statement.effect == "Allow" and any(
        fnmatch.fnmatchcase(action.lower(), pattern.lower()) for pattern in statement.actions)


def violations(statements: list[Statement]) -> list[str]:
    found = []
    for s in statements:
        wildcards = [a for a in s.actions if a == "*" or a.endswith(":*")]
        if s.effect == "Allow" and not s.principals and wildcards:
            found.append(f"{s.where}: an identity policy allows {', '.join(wildcards)}: name the actions")
        if s.effect == "Allow" and {"*", "*:*"} & set(s.actions) and "*" in s.resources:
            found.append(f"{s.where}: allows every action on every resource")
        if _allows(s, "iam:PassRole") and "iam:PassedToService" not in s.condition_keys:
            found.append(f"{s.where}: allows iam:PassRole ({', '.join(s.actions)}) "
                         "without an iam:PassedToService condition")
        trusts_root = any(":root" in p for p in s.principals)  # also inside a for expression
        if (_allows(s, "sts:AssumeRole") and trusts_root
                and "aws:PrincipalArn" not in s.condition_keys):
            found.append(f"{s.where}: trusts a whole account to assume the role; "
                         "name the role (or pin it with an aws:PrincipalArn condition)")
    return found


def test_the_checker_catches_what_it_should():
    bad = [
        Statement("admin", "Allow", ("*",), ("*",), (), ()),
        Statement("pass", "Allow", ("iam:*",), ("arn:aws:iam::1:role/x",), (), ()),
        Statement("trust", "Allow", ("sts:AssumeRole",), (), ("arn:aws:iam::123456789012:root",), ()),
        Statement("service", "Allow", ("kms:*",), ("arn:aws:kms:us-east-1:1:key/*",), (), ()),
    ]
    good = [
        Statement("deny", "Deny", ("*",), ("*",), ("*",), ()),
        Statement("pass", "Allow", ("iam:PassRole",), ("arn:aws:iam::1:role/x",), (), ("iam:PassedToService",)),
        Statement("trust", "Allow", ("sts:AssumeRole",), (), ("arn:aws:iam::1:root",), ("aws:PrincipalArn",)),
        Statement("service", "Allow", ("sts:AssumeRole",), (), ("codebuild.amazonaws.com",), ()),
        Statement("key", "Allow", ("kms:*",), ("*",), ("arn:aws:iam::1:root",), ()),  # a key policy's root grant
    ]
    assert sorted({v.split(":")[0] for v in violations(bad)}) == ["admin", "pass", "service", "trust"]
    assert violations(good) == []


def test_every_iam_policy_in_terraform_is_least_privilege():
    statements = list(policy_statements())
    assert len(statements) >= 10, "found too few policy statements: is the walker still reading the modules?"
    problems = violations(statements)
    problems += [f"{where}: attaches {name}" for where, line in managed_policy_arns()
                 for name in ALL_POWERFUL if f"policy/{name}" in line]
    assert problems == [], "\n".join(problems)


def test_statements_generated_from_a_map_of_grants_are_read():
    """A dynamic statement over a local map of grants is checked entry by entry, not as one
    opaque `statement.value.actions`."""
    sids = {s.where.rpartition("(sid ")[2].rstrip(")") for s in policy_statements() if "data.sagemaker" in s.where}
    assert {"RunJobs", "PullImage", "PassOwnRoleToSageMaker"} <= sids, sids


def test_no_arn_is_written_for_one_partition():
    """ARNs take their partition from the provider (data.aws_partition), so the modules hold in
    aws-cn and aws-us-gov too; validation patterns accept every partition (arn:aws[a-z-]*:)."""
    literal = [f"{path.relative_to(TERRAFORM.parent)}:{n}" for path in sorted(TERRAFORM.rglob("*.tf"))
               for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if "arn:aws:" in line]
    assert literal == []
