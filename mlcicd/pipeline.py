"""The CodePipeline in the devops account: release it, show its state, decide its approval.

Also the CodeBuild side of the pipeline contract: the variables a stage exports (written as a
shell file the buildspec sources, because a child process cannot set its parent's environment)
and the console link the Approval action shows.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from mlcicd.config import Config
from mlcicd.errors import MlcicdError
from mlcicd.fsutil import atomic_write

_BUILD_ARN = re.compile(r"^arn:aws[a-z-]*:codebuild:([a-z0-9-]+):(\d{12}):build/([^:]+):(.+)$")
_EXPORT_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


def pipeline_name(config: Config) -> str:
    """The CodePipeline's name, as the pipeline module names it."""
    return f"{config.project}-pipeline"


class NoPendingApproval(MlcicdError):
    """approve/reject found no approval waiting for a decision."""

    def __init__(self, pipeline: str) -> None:
        self.pipeline = pipeline
        super().__init__(f"pipeline {pipeline} has no approval waiting for a decision",
                         hint=f"`mlcicd status` shows where {pipeline} is")


class AmbiguousApproval(MlcicdError):
    """More than one approval is pending and none was named."""

    def __init__(self, pipeline: str, actions: tuple[str, ...]) -> None:
        self.pipeline = pipeline
        self.actions = actions
        super().__init__(f"pipeline {pipeline} has {len(actions)} approvals pending: {', '.join(actions)}",
                         hint="name one with --action STAGE/ACTION")


@dataclass(frozen=True)
class ActionState:
    stage: str
    name: str
    status: str  # InProgress, Succeeded, Failed, Abandoned, or "" when it never ran
    summary: str = ""
    updated: str = ""
    url: str = ""
    error: str = ""
    token: str = ""  # set only on an approval waiting for a decision; never printed

    @property
    def pending_approval(self) -> bool:
        return self.status == "InProgress" and bool(self.token)


@dataclass(frozen=True)
class StageState:
    name: str
    status: str
    execution_id: str
    actions: tuple[ActionState, ...]


@dataclass(frozen=True)
class PipelineState:
    name: str
    stages: tuple[StageState, ...]

    def pending_approvals(self) -> list[ActionState]:
        return [a for s in self.stages for a in s.actions if a.pending_approval]

    def to_dict(self) -> dict[str, Any]:
        return {"pipeline": self.name, "stages": [
            {"name": s.name, "status": s.status or None, "execution_id": s.execution_id or None,
             "actions": [{"name": a.name, "status": a.status or None, "summary": a.summary or None,
                          "updated": a.updated or None, "url": a.url or None, "error": a.error or None,
                          "pending_approval": a.pending_approval} for a in s.actions]}
            for s in self.stages]}

    def table(self) -> str:
        rows = [("STAGE", "ACTION", "STATUS", "UPDATED", "SUMMARY")]
        for s in self.stages:
            for a in s.actions:
                status = a.status or "-"
                if a.pending_approval:
                    status = "WaitingForApproval"
                note = a.error or a.summary
                rows.append((s.name, a.name, status, a.updated, note.replace("\n", " ")[:80]))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = [f"Pipeline {self.name}"]
        lines += ["  ".join(r[i].ljust(widths[i]) for i in range(4)) + "  " + r[4] for r in rows]
        return "\n".join(line.rstrip() for line in lines) + "\n"


def release(client: Any, name: str) -> str:
    """Start the pipeline on the latest source revision (the console's "Release change")."""
    from mlcicd.aws import errors

    with errors(f"starting pipeline {name}", resource=name):
        return client.start_pipeline_execution(name=name)["pipelineExecutionId"]


def state(client: Any, name: str) -> PipelineState:
    from mlcicd.aws import errors

    with errors(f"reading the state of pipeline {name}", resource=name):
        raw = client.get_pipeline_state(name=name)
    stages = []
    for s in raw.get("stageStates", ()):
        actions = []
        for a in s.get("actionStates", ()):
            ex = a.get("latestExecution") or {}
            updated = ex.get("lastStatusChange")
            actions.append(ActionState(
                stage=s["stageName"], name=a["actionName"], status=ex.get("status", ""),
                summary=ex.get("summary", ""),
                updated=updated.strftime("%Y-%m-%d %H:%M:%S") if updated else "",
                url=ex.get("externalExecutionUrl") or a.get("entityUrl", ""),
                error=(ex.get("errorDetails") or {}).get("message", ""), token=ex.get("token", ""),
            ))
        latest = s.get("latestExecution") or {}
        stages.append(StageState(s["stageName"], latest.get("status", ""), latest.get("pipelineExecutionId", ""),
                                 tuple(actions)))
    return PipelineState(raw.get("pipelineName", name), tuple(stages))


def decide(client: Any, name: str, *, approve: bool, comment: str, action: str | None = None) -> ActionState:
    """Approve or reject the pending approval (the one named STAGE/ACTION if several wait)."""
    from mlcicd.aws import errors

    pending = state(client, name).pending_approvals()
    if action is not None:
        pending = [a for a in pending if f"{a.stage}/{a.name}" == action or a.name == action]
    if not pending:
        raise NoPendingApproval(name)
    if len(pending) > 1:
        raise AmbiguousApproval(name, tuple(f"{a.stage}/{a.name}" for a in pending))
    target = pending[0]
    verdict = "Approved" if approve else "Rejected"
    with errors(f"recording {verdict} on {name}/{target.stage}/{target.name}", resource=name):
        client.put_approval_result(
            pipelineName=name, stageName=target.stage, actionName=target.name,
            result={"summary": comment or f"{verdict} with mlcicd", "status": verdict}, token=target.token,
        )
    return target


# -- CodeBuild --------------------------------------------------------------------------------


def build_console_url(build_arn: str) -> str:
    """The CodeBuild console page of a build, from $CODEBUILD_BUILD_ARN ("" if not in CodeBuild)."""
    match = _BUILD_ARN.match(build_arn or "")
    if not match:
        return ""
    region, account, project, build_id = match.groups()
    full_id = quote(f"{project}:{build_id}", safe="")
    return (f"https://{region}.console.aws.amazon.com/codesuite/codebuild/{account}/projects/"
            f"{quote(project, safe='')}/build/{full_id}/?region={region}")


def write_exports(path: Path, values: Mapping[str, str]) -> Path:
    """`export NAME='value'` lines for the buildspec to source; CodeBuild exports them after the build."""
    lines = ["# Generated by mlcicd: variables for CodeBuild's exported-variables."]
    for name, value in values.items():
        if not _EXPORT_NAME.match(name):
            raise ValueError(f"not an environment variable name: {name!r}")
        lines.append(f"export {name}={shlex.quote(str(value).replace(chr(10), ' '))}")
    atomic_write(path, ("\n".join(lines) + "\n").encode())
    return path
