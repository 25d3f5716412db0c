"""What mlcicd reads from the process environment, read once into a frozen object.

Nothing else in mlcicd reads os.environ: the CLI builds one Runtime per invocation and passes
it down. `environ` is kept whole only to hand it to child processes (Terraform) and to look up
values whose names come from the config (masks.env, TF_VAR_*).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType


def _cache_dir(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_CACHE_HOME") or os.path.join(env.get("HOME") or os.path.expanduser("~"), ".cache")
    return Path(base) / "mlcicd"


@dataclass(frozen=True)
class Runtime:
    """Environment-derived settings; built once in the CLI and passed down."""

    endpoints: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    terraform: str | None = None  # MLCICD_TERRAFORM: a path, a name on PATH, or "bundled"
    profile: str | None = None
    ci: bool = False
    interactive: bool = False
    codebuild_build_arn: str = ""  # set inside CodeBuild: links a review to its build's console page
    config_path: str | None = None  # MLCICD_CONFIG
    # XDG_CACHE_HOME/mlcicd, else ~/.cache/mlcicd; None keeps no cache between runs.
    cache_dir: Path | None = None
    tf_cli_config_file: str | None = None  # TF_CLI_CONFIG_FILE: the user's own Terraform CLI config
    role: str = "deploy"  # MLCICD_ROLE: the role Terraform assumes in each account, deploy or plan (read-only)
    # Posting a review to a pull request: GITHUB_TOKEN, or the secret GITHUB_TOKEN_SECRET_ARN names;
    # GITHUB_API_URL (GitHub Enterprise); the commit CodeBuild built; REVIEW_URL, the full review.
    github_token: str = ""
    github_token_secret_arn: str = ""
    github_api_url: str = ""
    source_version: str = ""
    review_url: str = ""
    environ: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Runtime:
        env = dict(os.environ if environ is None else environ)
        ci = bool(env.get("CI") or env.get("CODEBUILD_BUILD_ID"))
        # AWS_ENDPOINT_URL_<SERVICE> and AWS_ENDPOINT_URL, kept as given; `endpoint` picks.
        endpoints = {k: v for k, v in env.items() if k.startswith("AWS_ENDPOINT_URL") and v}
        return cls(
            endpoints=MappingProxyType(endpoints),
            terraform=env.get("MLCICD_TERRAFORM") or None,
            profile=env.get("AWS_PROFILE") or None,
            ci=ci,
            interactive=not ci and sys.stdin.isatty() and sys.stdout.isatty(),
            codebuild_build_arn=env.get("CODEBUILD_BUILD_ARN", ""),
            config_path=env.get("MLCICD_CONFIG") or None,
            cache_dir=_cache_dir(env),
            tf_cli_config_file=env.get("TF_CLI_CONFIG_FILE") or None,
            role=env.get("MLCICD_ROLE") or "deploy",
            github_token=(env.get("GITHUB_TOKEN") or "").strip(),
            github_token_secret_arn=env.get("GITHUB_TOKEN_SECRET_ARN", ""),
            github_api_url=env.get("GITHUB_API_URL", ""),
            source_version=env.get("CODEBUILD_RESOLVED_SOURCE_VERSION", ""),
            review_url=env.get("REVIEW_URL", ""),
            environ=MappingProxyType(env),
        )

    def endpoint(self, variable_suffix: str) -> str | None:
        """AWS_ENDPOINT_URL_<SUFFIX>, else AWS_ENDPOINT_URL: the rule botocore and Terraform
        follow. `variable_suffix` is the service's name as those variables spell it (S3,
        CODESTAR_CONNECTIONS)."""
        return self.endpoints.get(f"AWS_ENDPOINT_URL_{variable_suffix}") or self.endpoints.get("AWS_ENDPOINT_URL")

    @property
    def s3_endpoint(self) -> str | None:
        return self.endpoint("S3")

    @property
    def custom_endpoint(self) -> bool:
        return self.s3_endpoint is not None
