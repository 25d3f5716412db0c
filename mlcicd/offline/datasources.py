"""What the stand-in answers when Terraform reads a data source.

Data sources the environments depend on get believable values: the caller identity is the
configured account, region and partition are the configured ones, a KMS key looked up by ARN
lives in the account that ARN names, and
`aws_iam_policy_document` builds the real policy JSON from its statements, so an offline plan
shows the actual IAM policies. Any other data source echoes its configuration and fills the
computed attributes with known placeholders (a data source may not return unknowns).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlcicd.offline.values import placeholder


@dataclass(frozen=True)
class Identity:
    account: str
    region: str
    partition: str = "aws"

    @property
    def dns_suffix(self) -> str:
        return "amazonaws.com.cn" if self.partition == "aws-cn" else "amazonaws.com"


def read(type_name: str, block: dict, config: dict, who: Identity) -> dict:
    state = dict(config)
    known = _READERS.get(type_name, _nothing)(state, who)
    for name, attr in block.get("attributes", {}).items():
        if attr.get("computed") and state.get(name) is None:
            state[name] = known[name] if name in known else _guess(name, attr["type"], type_name, state, who)
    return state


def _nothing(state: dict, who: Identity) -> dict:
    return {}


def _guess(name: str, cty_type: Any, type_name: str, state: dict, who: Identity) -> Any:
    if cty_type == "string" and name == "arn":
        service = type_name.removeprefix("aws_").split("_")[0]
        label = state.get("name") or state.get("id") or "offline-preview"
        return f"arn:{who.partition}:{service}:{who.region}:{who.account}:{label}"
    if cty_type == "string" and name == "id":
        return str(state.get("name") or "offline-preview")
    if name == "region" and cty_type == "string":
        return who.region
    return placeholder(cty_type)


def _caller_identity(state: dict, who: Identity) -> dict:
    return {"account_id": who.account, "id": who.account, "user_id": "AIDAOFFLINEPREVIEW",
            "arn": f"arn:{who.partition}:iam::{who.account}:user/mlcicd-offline-preview"}


def _region(state: dict, who: Identity) -> dict:
    region = state.get("region") or state.get("name") or who.region
    return {"region": region, "name": region, "id": region, "endpoint": f"ec2.{region}.{who.dns_suffix}",
            "description": region}


def _partition(state: dict, who: Identity) -> dict:
    prefix = ".".join(reversed(who.dns_suffix.split(".")))
    return {"partition": who.partition, "id": who.partition, "dns_suffix": who.dns_suffix,
            "reverse_dns_prefix": prefix}


# The accounts that publish SageMaker's scikit-learn/XGBoost images, for the regions we see most.
_SAGEMAKER_REGISTRIES = {
    "us-east-1": "683313688378", "us-east-2": "257758044811", "us-west-1": "746614075791",
    "us-west-2": "246618743249", "eu-west-1": "141502667606", "eu-central-1": "492215442770",
}


def _prebuilt_ecr_image(state: dict, who: Identity) -> dict:
    region = state.get("region") or who.region
    registry = _SAGEMAKER_REGISTRIES.get(region, who.account)
    suffix = state.get("dns_suffix") or who.dns_suffix
    tag = state.get("image_tag") or "1"
    return {"region": region, "registry_id": registry, "id": registry,
            "registry_path": f"{registry}.dkr.ecr.{region}.{suffix}/{state.get('repository_name')}:{tag}"}


def _kms_key(state: dict, who: Identity) -> dict:
    # A key looked up by an alias or key ARN lives in the account (and region) the ARN names.
    key_id = str(state.get("key_id") or "")
    parts = key_id.split(":")
    partition, region, account = (parts[1], parts[3], parts[4]) if key_id.startswith("arn:") and len(parts) > 5 \
        else (who.partition, who.region, who.account)
    key = "00000000-0000-0000-0000-" + hashlib.sha256(key_id.encode()).hexdigest()[:12]
    return {"arn": f"arn:{partition}:kms:{region}:{account}:key/{key}", "id": key}


def _policy_document(state: dict, who: Identity) -> dict:
    document = policy_document(state)
    text = json.dumps(document, indent=2)
    return {"json": text, "minified_json": json.dumps(document, separators=(",", ":")),
            "id": str(int(hashlib.sha256(text.encode()).hexdigest()[:8], 16))}


_READERS: dict[str, Callable[[dict, Identity], dict]] = {
    "aws_caller_identity": _caller_identity,
    "aws_region": _region,
    "aws_partition": _partition,
    "aws_sagemaker_prebuilt_ecr_image": _prebuilt_ecr_image,
    "aws_iam_policy_document": _policy_document,
    "aws_kms_key": _kms_key,
}


# -- aws_iam_policy_document -------------------------------------------------------------------

def policy_document(config: dict) -> dict:
    """The policy aws_iam_policy_document renders: source documents first, then this
    document's statements (replacing source statements with the same Sid), then override
    documents (replacing statements with the same Sid, or appended)."""
    statements: list[dict] = []
    for text in config.get("source_policy_documents") or ():
        _merge(statements, json.loads(text).get("Statement", []))
    _merge(statements, [_statement(s) for s in config.get("statement") or ()])
    for text in config.get("override_policy_documents") or ():
        _merge(statements, json.loads(text).get("Statement", []))
    document: dict[str, Any] = {"Version": config.get("version") or "2012-10-17"}
    if config.get("policy_id"):
        document["Id"] = config["policy_id"]
    document["Statement"] = statements
    return document


def _merge(statements: list[dict], new: list[dict]) -> None:
    for statement in new:
        sid = statement.get("Sid")
        index = next((i for i, s in enumerate(statements) if sid and s.get("Sid") == sid), None)
        if index is None:
            statements.append(statement)
        else:
            statements[index] = statement


def _one_or_many(values: list[str]) -> str | list[str]:
    # The provider writes a single value as a string, and set members in reverse order.
    ordered = sorted(values, reverse=True)
    return ordered[0] if len(ordered) == 1 else ordered


def _statement(block: dict) -> dict:
    out: dict[str, Any] = {}
    if block.get("sid"):
        out["Sid"] = block["sid"]
    out["Effect"] = block.get("effect") or "Allow"
    for key, name in (("Action", "actions"), ("NotAction", "not_actions"),
                      ("Resource", "resources"), ("NotResource", "not_resources")):
        if block.get(name):
            out[key] = _one_or_many(block[name])
    for key, name in (("Principal", "principals"), ("NotPrincipal", "not_principals")):
        if block.get(name):
            out[key] = _principals(block[name])
    if block.get("condition"):
        conditions: dict[str, dict] = {}
        for c in block["condition"]:
            values = c["values"]
            conditions.setdefault(c["test"], {})[c["variable"]] = values[0] if len(values) == 1 else values
        out["Condition"] = conditions
    return out


def _principals(blocks: list[dict]) -> Any:
    if len(blocks) == 1 and blocks[0]["type"] == "*" and list(blocks[0]["identifiers"]) == ["*"]:
        return "*"
    merged: dict[str, list[str]] = {}
    for b in blocks:
        merged.setdefault(b["type"], []).extend(b["identifiers"])
    return {kind: _one_or_many(ids) for kind, ids in merged.items()}
