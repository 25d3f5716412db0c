"""`terraform validate` per environment, with the real provider or the offline stand-in.

Run over many environments through the orchestrator (grouped output, one report line each).
"""

from __future__ import annotations

from mlcicd.config import Config
from mlcicd.deploy import Workspace
from mlcicd.orchestrate import EnvResult
from mlcicd.runtime import Runtime
from mlcicd.terraform import build_argv


def validate(workspace: Workspace, label: str = "") -> None:
    """Init `workspace` and run `terraform validate`; Terraform's own messages go to its sink."""
    workspace.init()
    argv = build_argv("validate", {"no_color": not workspace.tf.color})
    workspace.tf.check(argv, cwd=workspace.env.dir, what=f"validate ({workspace.env.name}{label})")


def validate_task(config: Config, runtime: Runtime, *, offline: bool, color: bool = False):
    """An orchestrator task validating one environment; an invalid one raises TerraformError."""

    def task(name: str, sink) -> EnvResult:
        env = config.env(name)
        if not offline:
            validate(Workspace(config, env, runtime, sink=sink, color=color))
            return EnvResult(name, "valid")
        from mlcicd.offline import preview

        with preview.workspace(config, env, runtime, sink=sink, color=color) as workspace:
            validate(workspace, f", {preview.OFFLINE}")
        return EnvResult(name, "valid", preview.OFFLINE)

    return task
