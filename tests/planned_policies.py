"""The IAM policies an offline plan would create, read from Terraform's plan JSON.

A policy whose JSON is known is taken as planned. One that is "known after apply" (its
aws_iam_policy_document reads an ARN created in the same plan) is rebuilt from the document's
planned statements, with each unknown value kept as iam_eval.UNKNOWN_VALUE, so a decision that
depends on it comes out "unknown" instead of being guessed. Who a policy belongs to (the role of
an aws_iam_role_policy, the bucket of an aws_s3_bucket_policy) comes from the plan's
configuration references, resolved to the planned names.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.iam_eval import UNKNOWN_VALUE

_INDEX = re.compile(r"\[[^\]]*\]")


@dataclass
class Policies:
    """Every planned policy of a system, by what it protects. Roles are keyed by ARN."""

    identity: dict[str, list[dict]] = field(default_factory=dict)  # role -> its policies
    trust: dict[str, dict] = field(default_factory=dict)  # role -> its trust policy
    buckets: dict[str, dict | None] = field(default_factory=dict)  # bucket -> its policy (None: none)
    bucket_accounts: dict[str, str] = field(default_factory=dict)  # bucket -> the account it is planned in
    keys: dict[str, dict] = field(default_factory=dict)  # key -> {"account", "policy", "aliases", "buckets"}
    package_groups: dict[str, dict | None] = field(default_factory=dict)  # group ARN -> resource policy
    codebuild_roles: set[str] = field(default_factory=set)  # roles the CodeBuild projects run as


def _statement_json(planned: dict, unknown: dict) -> dict:
    def values(name: str) -> list:
        known = planned.get(name) or []
        flags = (unknown or {}).get(name) or []
        return [UNKNOWN_VALUE if (i < len(flags) and flags[i] is True) else v for i, v in enumerate(known)]

    out: dict[str, Any] = {"Effect": planned.get("effect") or "Allow"}
    if planned.get("sid"):
        out["Sid"] = planned["sid"]
    for name, key in (("actions", "Action"), ("not_actions", "NotAction"), ("resources", "Resource"),
                      ("not_resources", "NotResource")):
        if planned.get(name) or (unknown or {}).get(name) is True:
            out[key] = values(name) if (unknown or {}).get(name) is not True else [UNKNOWN_VALUE]
    principals: dict[str, list] = {}
    for block in planned.get("principals") or []:
        principals.setdefault(block.get("type") or UNKNOWN_VALUE, []).extend(block.get("identifiers") or
                                                                            [UNKNOWN_VALUE])
    if principals:
        out["Principal"] = "*" if principals.get("*") == ["*"] else principals
    conditions: dict[str, dict] = {}
    for i, block in enumerate(planned.get("condition") or []):
        flags = ((unknown or {}).get("condition") or [{}] * (i + 1))[i] or {}
        vals = [UNKNOWN_VALUE if (j < len(flags.get("values") or []) and flags["values"][j] is True) else v
                for j, v in enumerate(block.get("values") or [])]
        conditions.setdefault(block.get("test") or UNKNOWN_VALUE, {})[block.get("variable") or UNKNOWN_VALUE] = vals
    if conditions:
        out["Condition"] = conditions
    return out


_BUCKET_ARN = re.compile(r"\$\{aws_s3_bucket\.(\w+)\.arn\}")


def _source_statements(module_dir: Path, name: str, count: int) -> list[dict] | None:
    """The `count` planned statements of `data "aws_iam_policy_document" NAME` as written: static
    ones, then the content of one dynamic block for the rest (None when the source has another shape)."""
    from mlcicd import hcl

    block = next((b for b in hcl.blocks(module_dir, "data") if b.labels == ("aws_iam_policy_document", name)), None)
    if block is None:
        return None
    static = list(block.attr("statement") or [])
    dynamic = [d["statement"] for d in block.attr("dynamic") or [] if "statement" in d]
    if len(dynamic) > 1:
        return None
    content = hcl.attr(dynamic[0], "content") if dynamic else None
    content = content[0] if isinstance(content, list) else content
    rest = count - len(static)
    if rest < 0 or (rest and not content):
        return None
    return static + [content] * rest


def unknown_document(why: str) -> dict:
    """A policy the plan does not show: any request it could govern is decided "unknown"."""
    return {"Statement": [{"Sid": why, "Effect": effect, "Action": "*", "Resource": UNKNOWN_VALUE}
                          for effect in ("Allow", "Deny")]}


def document_from_data_source(change: dict) -> dict:
    """An aws_iam_policy_document's JSON, from its planned statements."""
    after, unknown = change["after"], change.get("after_unknown") or {}
    if after.get("json"):
        return json.loads(after["json"])
    if unknown.get("statement") is True:
        return unknown_document("statements known after apply")
    statements = after.get("statement") or []
    flags = unknown.get("statement") or [{}] * len(statements)
    return {"Version": "2012-10-17",
            "Statement": [_statement_json(s, f if isinstance(f, dict) else {}) for s, f in zip(statements, flags,
                                                                                                strict=False)]}


class Plan:
    def __init__(self, plan: dict, root: Path | None = None) -> None:
        self.plan = plan
        self.root = root  # the root module's directory, to read what the plan leaves unknown
        self.changes = {rc["address"]: rc for rc in plan["resource_changes"]}
        # Data sources Terraform could read while planning are in the prior state, not the changes.
        modules = [plan.get("prior_state", {}).get("values", {}).get("root_module", {})]
        while modules:
            module = modules.pop()
            modules += module.get("child_modules", [])
            for resource in module.get("resources", []):
                if resource["mode"] == "data":
                    self.changes.setdefault(resource["address"], {
                        "address": resource["address"], "mode": "data", "type": resource["type"],
                        "change": {"after": resource["values"], "after_unknown": {}}})

    def config(self, address: str) -> dict:
        """The configuration block of a (possibly indexed) resource address."""
        parts = _INDEX.sub("", address).split(".")
        module = self.plan["configuration"]["root_module"]
        while parts[0] == "module":
            module = module["module_calls"][parts[1]]["module"]
            parts = parts[2:]
        local = ".".join(parts)
        return next(r for r in module.get("resources", []) if r["address"] == local)

    def referenced(self, address: str, attribute: str, kind: str) -> str | None:
        """The address (same module instance) of the `kind` resource an attribute refers to."""
        prefix = address[: address.rindex(self._local(address))]
        for ref in self.config(address).get("expressions", {}).get(attribute, {}).get("references", []):
            target = ref.rsplit(".", 1)[0] if ref.count(".") >= (2 if not ref.startswith("data.") else 3) else ref
            if target.removeprefix("data.").startswith(kind + "."):
                return self._instance(prefix + target, address)
        return None

    def all_referenced(self, address: str, attribute: str, kind: str) -> list[str]:
        """Every planned `kind` resource an attribute may refer to (a conditional names several)."""
        prefix = address[: address.rindex(self._local(address))]
        found = []
        for ref in self.config(address).get("expressions", {}).get(attribute, {}).get("references", []):
            if ref.removeprefix("data.").startswith(kind + ".") and ref.count(".") == 1:
                target = self._instance(prefix + ref, address)
                if target in self.changes and target not in found:
                    found.append(target)
        return found

    def _instance(self, target: str, referrer: str) -> str:
        """`aws_iam_role.this[each.key]` from `aws_iam_role_policy.this["runner"]`: the target's
        instance of the same key (the references in a plan carry no instance keys)."""
        key = re.search(r"(\[[^\]]*\])$", referrer)
        if target not in self.changes and key and target + key.group(1) in self.changes:
            return target + key.group(1)
        return target

    def data_document(self, address: str) -> dict:
        """An aws_iam_policy_document's JSON from its planned statements and the documents it
        merges (source_policy_documents, resolved through the plan's references when unknown)."""
        change = self.changes[address]["change"]
        after, unknown = change["after"], change.get("after_unknown") or {}
        if after.get("json"):
            return json.loads(after["json"])
        if after.get("override_policy_documents") or unknown.get("override_policy_documents"):
            return unknown_document("override_policy_documents are not merged here")
        own = self._bucket_arns(address, document_from_data_source(change))
        sources = after.get("source_policy_documents") or []
        if not sources and not unknown.get("source_policy_documents"):
            return own
        prefix = address[: address.rindex(self._local(address))]
        merged = list(own["Statement"])
        if sources and all(isinstance(d, str) for d in sources) and not unknown.get("source_policy_documents"):
            documents = [json.loads(d) for d in sources]
        else:
            found = self.documents(prefix, self.config(address).get("expressions", {}).get(
                "source_policy_documents", {}))
            if not found or any(f not in self.changes for f in found):
                return unknown_document("source_policy_documents not found")
            documents = [self.data_document(f) for f in found]
        for document in documents:
            statements = document["Statement"]
            merged += statements if isinstance(statements, list) else [statements]
        return {"Version": "2012-10-17", "Statement": merged}

    def _module(self, prefix: str) -> dict:
        module = self.plan["configuration"]["root_module"]
        for name in _INDEX.sub("", prefix).split(".")[1::2] if prefix else []:
            module = module["module_calls"][name]["module"]
        return module

    def documents(self, prefix: str, expression: dict, depth: int = 0) -> list[str]:
        """The aws_iam_policy_document data sources an expression's value comes from, following
        module outputs down and input variables up."""
        found: list[str] = []
        for ref in expression.get("references", []):
            parts = ref.split(".")
            if ref.startswith("data.aws_iam_policy_document.") and len(parts) == 4:
                found.append(prefix + ".".join(parts[:3]))
            elif parts[0] == "module" and len(parts) == 3 and depth < 8:
                child = self._module(prefix)["module_calls"][parts[1]]
                output = child["module"].get("outputs", {}).get(parts[2], {}).get("expression", {})
                found += self.documents(f"{prefix}module.{parts[1]}.", output, depth + 1)
            elif parts[0] == "var" and len(parts) == 2 and prefix and depth < 8:
                call = prefix.rstrip(".").rsplit(".", 2)
                parent = (call[0] + ".") if len(call) == 3 else ""
                passed = self._module(parent)["module_calls"][_INDEX.sub("", call[-1])]
                found += self.documents(parent, passed.get("expressions", {}).get(parts[1], {}), depth + 1)
        return list(dict.fromkeys(found))

    def through_variables(self, address: str, expression: dict, kind: str) -> str | None:
        """The `kind` resource an expression refers to, following `var.X` up through the module
        calls that pass it and `module.X.OUTPUT` down into the module that outputs it (one
        reference deep at each level): a bucket's key is usually a kms-key module's `arn`."""
        prefix = address[: address.rindex(self._local(address))]
        for _ in range(16):
            refs = expression.get("references", [])
            target = next((r.rsplit(".", 1)[0] for r in refs if r.startswith(kind + ".") and r.count(".") >= 2), None)
            if target:
                return prefix + target
            output = next((r.split(".") for r in refs if r.startswith("module.") and r.count(".") == 2), None)
            if output is not None:
                child = self._module(prefix)["module_calls"][output[1]]["module"]
                expression = child.get("outputs", {}).get(output[2], {}).get("expression", {})
                prefix = f"{prefix}module.{output[1]}."
                continue
            variable = next((r.split(".")[1] for r in refs if r.startswith("var.")), None)
            if variable is None or not prefix:
                return None
            # the module call that set the variable, in the parent module
            call = prefix.rstrip(".").rsplit(".", 2)
            parent_prefix = (call[0] + ".") if len(call) == 3 else ""
            name = _INDEX.sub("", call[-1])
            parent = self.plan["configuration"]["root_module"]
            for part in _INDEX.sub("", parent_prefix).split(".")[1::2] if parent_prefix else []:
                parent = parent["module_calls"][part]["module"]
            expression = parent["module_calls"][name].get("expressions", {}).get(variable, {})
            prefix = parent_prefix
        return None

    @staticmethod
    def _local(address: str) -> str:
        parts = address.split(".")
        i = 0
        while i < len(parts) and parts[i] == "module":
            i += 2
        return ".".join(parts[i:])

    def value(self, address: str, attribute: str) -> Any:
        rc = self.changes.get(address)
        if rc is None:
            return None
        if (rc["change"].get("after_unknown") or {}).get(attribute) is True:
            return None
        return (rc["change"]["after"] or {}).get(attribute)

    def policy(self, address: str, attribute: str) -> dict:
        known = self.value(address, attribute)
        if known:
            return json.loads(known)
        prefix = address[: address.rindex(self._local(address))]
        sources = self.documents(prefix, self.config(address).get("expressions", {}).get(attribute, {}))
        if len(sources) != 1 or sources[0] not in self.changes:
            return unknown_document(f"{address} known after apply")
        return self.data_document(sources[0])

    def module_dir(self, address: str) -> Path | None:
        if self.root is None:
            return None
        directory, module = self.root, self.plan["configuration"]["root_module"]
        parts = _INDEX.sub("", address).split(".")
        while parts[0] == "module":
            call = module["module_calls"][parts[1]]
            directory, module = (directory / call["source"]).resolve(), call["module"]
            parts = parts[2:]
        return directory

    def _bucket_arns(self, source: str, document: dict) -> dict:
        """Fill in the ARN of a bucket planned by name: arn:aws:s3:::NAME (the Service
        Authorization Reference's bucket ARN), wherever the source writes `aws_s3_bucket.X.arn`
        and the plan shows "known after apply" only because the stand-in computes no ARNs."""
        directory = self.module_dir(source)
        name, count = source.rsplit(".", 1)[-1], len(document["Statement"])
        written = _source_statements(directory, name, count) if directory else None
        if not written or len(written) != len(document["Statement"]):
            return document
        prefix = source[: source.rindex(self._local(source))]

        def bucket_arn(match: re.Match) -> str:
            name = self.value(f"{prefix}aws_s3_bucket.{match.group(1)}", "bucket")
            return f"arn:aws:s3:::{name}" if name else match.group(0)

        for statement, block in zip(document["Statement"], written, strict=True):
            templates = [str(t) for t in (block.get("resources") or [[]])[0]] if block.get("resources") else []
            resources = statement.get("Resource") or []
            if len(templates) != len(resources):
                continue
            statement["Resource"] = [_BUCKET_ARN.sub(bucket_arn, t) if r == UNKNOWN_VALUE and "${" not in
                                     _BUCKET_ARN.sub(bucket_arn, t) else r for r, t in zip(resources, templates,
                                                                                           strict=True)]
        return document

    def of_type(self, kind: str) -> list[str]:
        return [a for a, rc in self.changes.items() if rc["type"] == kind and rc["mode"] == "managed"]


def _own_bucket(document: dict, bucket: str) -> dict:
    """A bucket policy may name only its own bucket and objects (S3 refuses any other resource),
    so a resource the plan does not know yet is read as the bucket and all its objects. Where
    the source names them in the usual `[arn, "${arn}/*"]` way, `Plan._bucket_arns` has already
    put the exact values."""
    for statement in document["Statement"]:
        resources = statement.get("Resource")
        if isinstance(resources, list) and UNKNOWN_VALUE in resources:
            widened = [r for r in resources if r != UNKNOWN_VALUE] + [f"arn:aws:s3:::{bucket}",
                                                                      f"arn:aws:s3:::{bucket}/*"]
            statement["Resource"] = list(dict.fromkeys(widened))
    return document


def read(plan: dict, account: str, region: str, root: Path | None = None, into: Policies | None = None) -> Policies:
    """Add one plan's policies (planned in `account`) to `into`."""
    found = into or Policies()
    p = Plan(plan, root)

    def role(address: str | None) -> str:
        return f"arn:aws:iam::{account}:role/{p.value(address, 'name')}"

    for address in p.of_type("aws_iam_role"):
        found.trust[role(address)] = p.policy(address, "assume_role_policy")
        found.identity.setdefault(role(address), [])
    for address in p.of_type("aws_iam_role_policy"):
        found.identity.setdefault(role(p.referenced(address, "role", "aws_iam_role")), []).append(
            p.policy(address, "policy"))
    for address in p.of_type("aws_s3_bucket"):
        found.buckets.setdefault(p.value(address, "bucket"), None)
        found.bucket_accounts[p.value(address, "bucket")] = account
    for address in p.of_type("aws_s3_bucket_policy"):
        name = p.value(p.referenced(address, "bucket", "aws_s3_bucket"), "bucket")
        found.buckets[name] = _own_bucket(p.policy(address, "policy"), name)
    keys = {}
    for address in p.of_type("aws_kms_key"):
        keys[address] = found.keys[f"{account}/{address}"] = {
            "account": account, "policy": p.policy(address, "policy"), "aliases": [], "buckets": []}
    for address in p.of_type("aws_kms_alias"):
        key = p.referenced(address, "target_key_id", "aws_kms_key")
        if key in keys:
            keys[key]["aliases"].append(p.value(address, "name"))
    for address in p.of_type("aws_s3_bucket_server_side_encryption_configuration"):
        bucket = p.referenced(address, "bucket", "aws_s3_bucket")
        rule = (p.config(address)["expressions"].get("rule") or [{}])[0]
        default = (rule.get("apply_server_side_encryption_by_default") or [{}])[0]
        key = p.through_variables(address, default.get("kms_master_key_id", {}), "aws_kms_key")
        if key in keys:
            keys[key]["buckets"].append(p.value(bucket, "bucket"))
    groups = {}
    for address in p.of_type("aws_sagemaker_model_package_group"):
        name = p.value(address, "model_package_group_name")
        groups[address] = f"arn:aws:sagemaker:{region}:{account}:model-package-group/{name}"
        found.package_groups.setdefault(groups[address], None)
    for address in p.of_type("aws_sagemaker_model_package_group_policy"):
        group = p.referenced(address, "model_package_group_name", "aws_sagemaker_model_package_group")
        found.package_groups[groups[group]] = p.policy(address, "resource_policy")
    for address in p.of_type("aws_codebuild_project"):
        for service_role in p.all_referenced(address, "service_role", "aws_iam_role"):
            found.codebuild_roles.add(role(service_role))
    return found
