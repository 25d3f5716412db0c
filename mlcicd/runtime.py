"""What mlcicd reads from the process environment, read once into a frozen object."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True)
class Runtime:
    """Environment-derived settings; built once in the CLI and passed down."""

    s3_endpoint: str | None = None
    sts_endpoint: str | None = None
    dynamodb_endpoint: str | None = None
    terraform: str | None = None  # MLCICD_TERRAFORM: a path, a name on PATH, or "bundled"
    profile: str | None = None
    ci: bool = False
    interactive: bool = False
    codebuild_build_arn: str = ""  # set inside CodeBuild: links a review to its build's console page
    role: str = "deploy"  # MLCICD_ROLE: the role Terraform assumes in each account, deploy or plan (read-only)
    environ: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Runtime:
        env = dict(os.environ if environ is None else environ)
        base = env.get("AWS_ENDPOINT_URL") or None

        def endpoint(service: str) -> str | None:
            return env.get(f"AWS_ENDPOINT_URL_{service}") or base

        ci = bool(env.get("CI") or env.get("CODEBUILD_BUILD_ID"))
        return cls(
            s3_endpoint=endpoint("S3"),
            sts_endpoint=endpoint("STS"),
            dynamodb_endpoint=endpoint("DYNAMODB"),
            terraform=env.get("MLCICD_TERRAFORM") or None,
            profile=env.get("AWS_PROFILE") or None,
            ci=ci,
            interactive=not ci and sys.stdin.isatty() and sys.stdout.isatty(),
            codebuild_build_arn=env.get("CODEBUILD_BUILD_ARN", ""),
            role=env.get("MLCICD_ROLE") or "deploy",
            environ=MappingProxyType(env),
        )

    @property
    def custom_endpoint(self) -> bool:
        return self.s3_endpoint is not None
