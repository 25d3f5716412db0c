"""The plan directory: what `plan --out DIR` writes and `apply --plan DIR` verifies.

    DIR/tfplan         the binary plan Terraform applies
    DIR/plan.json      `terraform show -json tfplan` (holds sensitive values in clear: mode 0600)
    DIR/summary.txt    the readable review
    DIR/manifest.json  env, sha256 of tfplan, Terraform version, config digest

A plan is applied only if the manifest matches: same environment, same plan bytes, same
Terraform version, same configuration. Terraform itself refuses a plan whose state changed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from mlcicd.errors import PlanRefused
from mlcicd.fsutil import atomic_write
from mlcicd.masking import collect_marked

PLAN_FILE = "tfplan"
PLAN_JSON = "plan.json"
SUMMARY = "summary.txt"
MANIFEST = "manifest.json"
FORMAT = 1


@dataclass(frozen=True)
class Manifest:
    format: int
    project: str
    env: str
    account_id: str
    plan_sha256: str
    terraform_version: str
    config_digest: str
    has_changes: bool
    counts: Mapping[str, int]

    def to_json(self) -> bytes:
        return (json.dumps(asdict(self), indent=2, sort_keys=True) + "\n").encode()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_manifest(plan_dir: Path) -> Manifest:
    path = plan_dir / MANIFEST
    try:
        data = json.loads(path.read_text())
        manifest = Manifest(**data)
    except FileNotFoundError:
        raise PlanRefused(
            f"{plan_dir} is not a plan directory: {MANIFEST} is missing",
            hint="create one with `mlcicd plan ENV --out DIR`",
        ) from None
    except (ValueError, TypeError) as exc:
        raise PlanRefused(f"{path} is not a valid mlcicd plan manifest ({exc})") from None
    if manifest.format != FORMAT:
        raise PlanRefused(f"{path}: manifest format {manifest.format} is not supported (expected {FORMAT})")
    return manifest


def verify(plan_dir: Path, *, env: str, terraform_version: str, config_digest: str) -> Manifest:
    """Check that `plan_dir` holds an unmodified plan for this env and configuration."""
    manifest = read_manifest(plan_dir)
    if manifest.env != env:
        raise PlanRefused(
            f"refusing to apply: {plan_dir} holds a plan for environment '{manifest.env}', not '{env}'"
        )
    plan_file = plan_dir / PLAN_FILE
    if not plan_file.is_file():
        raise PlanRefused(f"refusing to apply: {plan_file} is missing")
    actual = sha256_file(plan_file)
    if actual != manifest.plan_sha256:
        raise PlanRefused(
            f"refusing to apply: {plan_file} was modified after it was planned "
            f"(sha256 {actual[:12]}…, manifest says {manifest.plan_sha256[:12]}…)",
            hint="plan again and review the new plan",
        )
    if manifest.terraform_version != terraform_version:
        raise PlanRefused(
            f"refusing to apply: the plan was made with Terraform {manifest.terraform_version}, "
            f"this is Terraform {terraform_version}",
            hint="apply with the same Terraform, or plan again",
        )
    if manifest.config_digest != config_digest:
        raise PlanRefused(
            f"refusing to apply: the configuration of '{env}' changed after the plan was made",
            hint="plan again and review the new plan",
        )
    return manifest


def write_plan_json(plan_dir: Path, text: str) -> Path:
    path = plan_dir / PLAN_JSON
    atomic_write(path, text.encode(), mode=0o600)
    return path


def write_manifest(plan_dir: Path, manifest: Manifest) -> Path:
    path = plan_dir / MANIFEST
    atomic_write(path, manifest.to_json())
    return path


@dataclass(frozen=True)
class ResourceChange:
    """One entry of plan.json's resource_changes, read-only."""

    raw: Mapping[str, Any]

    @property
    def address(self) -> str:
        return self.raw["address"]

    @property
    def actions(self) -> tuple[str, ...]:
        return tuple(self.raw.get("change", {}).get("actions", ()))


@dataclass(frozen=True)
class PlanJSON:
    """A read-only view of `terraform show -json` output."""

    data: Mapping[str, Any]

    @classmethod
    def load(cls, path: Path) -> PlanJSON:
        with open(path, "rb") as fh:
            return cls(json.load(fh))

    @cached_property
    def resource_changes(self) -> dict[str, ResourceChange]:
        return {rc["address"]: ResourceChange(rc) for rc in self.data.get("resource_changes", ())}

    @cached_property
    def resource_drift(self) -> dict[str, ResourceChange]:
        return {rc["address"]: ResourceChange(rc) for rc in self.data.get("resource_drift", ())}

    @property
    def output_changes(self) -> dict[str, Any]:
        return {
            name: oc for name, oc in self.data.get("output_changes", {}).items()
            if tuple(oc.get("actions", ())) != ("no-op",)
        }

    def sensitive_values(self) -> list[str]:
        """String values Terraform marks sensitive (variables and outputs) — to mask in output."""
        found: list[str] = []
        config_vars = self.data.get("configuration", {}).get("root_module", {}).get("variables", {})
        for name, var in self.data.get("variables", {}).items():
            if config_vars.get(name, {}).get("sensitive"):
                collect_marked(var.get("value"), True, found)
        return found
