"""Terraform work per environment: render, init, plan, apply, destroy, output, force-unlock,
recover, validate, drift, and the module docs.

Longer than most modules (~420 lines): each command is short, but there are eleven of them,
with their help texts; they share the plan/apply reporting helpers at the end."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from mlcicd.cli.base import (
    Selection,
    State,
    allow_pending_option,
    chosen_envs,
    connection_gate,
    env_argument,
    handle_errors,
    main,
    pass_state,
    run_many,
    use_color,
    with_many_options,
)

if TYPE_CHECKING:
    from mlcicd.deploy import PlanOutcome


@main.command()
@click.argument("envs", nargs=-1, metavar="[ENV]...")
@click.option("--all", "all_", is_flag=True, help="Render every environment in the config.")
@pass_state
@handle_errors
def render(state: State, envs: tuple[str, ...], all_: bool) -> None:
    """Write each environment's tfvars and backend config under .mlcicd/ENV/."""
    from mlcicd import orchestrate
    from mlcicd import render as renderer

    for name in orchestrate.select(state.config, envs, all_):
        result = renderer.render(state.config, state.env(name), state.runtime)
        verb = "rendered" if result.changed else "unchanged"
        click.echo(f"{name}: {verb} {result.tfvars} {result.backend}")


@main.command()
@env_argument
@click.option("--reconfigure", is_flag=True, help="Run init even if nothing changed.")
@pass_state
@handle_errors
def init(state: State, env: str, reconfigure: bool) -> None:
    """Render ENV's files and run `terraform init` with the rendered backend."""
    ran = state.workspace(env).init(force=reconfigure)
    click.echo(f"{env}: initialised" if ran else f"{env}: already initialised (backend unchanged)")


@main.command()
@with_many_options
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="Plan directory to write (default .mlcicd/ENV/plan); with several environments, DIR/ENV.")
@click.option("--detailed-exitcode", is_flag=True,
              help="Exit 0 when there are no changes, 2 when there are, 1 on error.")
@click.option("--destroy", is_flag=True, help="Plan to destroy everything in ENV.")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
@allow_pending_option
@click.option("--offline", is_flag=True,
              help="Offline preview: no AWS credentials, network or state backend; the plan cannot be applied.")
@click.option("--changed", is_flag=True,
              help="Only the environments a change since --base touches, and those that depend on them.")
@click.option("--base", metavar="REF", help="With --changed: compare with REF (default: the merge base with "
              "the configured branch).")
@pass_state
@handle_errors
def plan(state: State, selection: Selection, out: Path | None, detailed_exitcode: bool, destroy: bool,
         as_json: bool, allow_pending: bool, offline: bool, changed: bool, base: str | None) -> None:
    """Plan ENV into a plan directory: binary plan, plan.json, summary and manifest.

    The directory is what `apply ENV --plan DIR` applies, exactly, after checking it.
    plan.json holds sensitive values in clear and is written readable by the owner only.
    With several environments (or --all) independent ones plan in parallel and a
    one-line-per-environment report ends the run.
    """
    request = PlanRequest(out, detailed_exitcode, destroy, as_json, allow_pending, offline)
    if changed or base is not None:
        chosen = _changed_envs(state, selection, changed, base, out, to_stderr=as_json)
        if chosen:
            _plan_many(state, chosen, selection, request)
        elif as_json:
            click.echo("[]")
        return
    env = selection.one
    if env is None:
        _plan_many(state, chosen_envs(state, selection), selection, request)
        return
    if offline:
        outcome = _offline_plan(state, env, out, destroy)
    else:
        if not destroy:
            connection_gate(state, env, allow_pending)
        outcome = state.workspace(env).plan(out, destroy=destroy)
    _print_outcome(outcome, as_json)
    if offline and not as_json:
        from mlcicd.offline import preview

        click.secho(preview.banner(env), fg="yellow")
    if detailed_exitcode and outcome.has_changes:
        sys.exit(2)


@main.command()
@with_many_options
@click.option("--plan", "plan_dir", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="Apply exactly this reviewed plan directory.")
@click.option("--expect-sha256", "expect_sha256", metavar="SHA",
              help="With --plan: refuse unless the plan's sha256 is SHA (the one the approver was shown).")
@click.option("--auto-approve", is_flag=True, help="Plan and apply without asking.")
@allow_pending_option
@pass_state
@handle_errors
def apply(state: State, selection: Selection, plan_dir: Path | None, expect_sha256: str | None,
          auto_approve: bool, allow_pending: bool) -> None:
    """Apply a reviewed plan (--plan DIR), or plan, confirm and apply.

    With --plan, the directory is verified (every file against its manifest, who may write
    it, the environment and backend recorded in the plan itself) and a private copy of the
    verified plan is applied. Without --plan, the plan summary is shown and you are asked to
    confirm; a non-interactive session must pass --auto-approve or --plan instead. Several
    environments (or --all) need --auto-approve and apply in dependency order.
    """
    from mlcicd.errors import UsageError

    if expect_sha256 is not None and plan_dir is None:
        raise UsageError("--expect-sha256 checks a reviewed plan: pass --plan DIR too")
    env = selection.one
    if env is None:
        if plan_dir is not None or not auto_approve:
            raise UsageError("applying several environments needs --auto-approve (and no --plan)")
        chosen = chosen_envs(state, selection)
        for name in chosen:
            connection_gate(state, name, allow_pending)
        _exit_for(run_many(state, chosen, selection, _apply_task(state, destroy=False)))
        return
    connection_gate(state, env, allow_pending)
    workspace = state.workspace(env)
    if plan_dir is not None:
        if auto_approve:
            raise UsageError("--plan applies a reviewed plan; --auto-approve does not apply to it")
        manifest = workspace.apply_plan(plan_dir, expect_sha256=expect_sha256)
        click.echo(f"{env}: applied plan {manifest.plan_sha256[:12]}")
        return
    _require_interactive(state, auto_approve, "apply")
    outcome = workspace.apply(auto_approve=auto_approve, confirm=_confirm("Apply"))
    _report_apply(env, outcome)


@main.command()
@with_many_options
@click.option("--auto-approve", is_flag=True, help="Destroy without asking.")
@pass_state
@handle_errors
def destroy(state: State, selection: Selection, auto_approve: bool) -> None:
    """Destroy everything Terraform manages in ENV (plans first, shows what goes).

    Several environments (or --all) need --auto-approve and go in reverse dependency order.
    """
    from mlcicd.errors import UsageError

    env = selection.one
    if env is None:
        if not auto_approve:
            raise UsageError("destroying several environments needs --auto-approve")
        chosen = chosen_envs(state, selection)
        _exit_for(run_many(state, chosen, selection, _apply_task(state, destroy=True), reverse=True))
        return
    _require_interactive(state, auto_approve, "destroy")
    outcome = state.workspace(env).destroy(auto_approve=auto_approve, confirm=_confirm("Destroy"))
    _report_apply(env, outcome)


@main.command()
@env_argument
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="All outputs (or NAME) as JSON.")
@pass_state
@handle_errors
def output(state: State, env: str, name: str | None, as_json: bool) -> None:
    """Show ENV's Terraform outputs."""
    click.echo(state.workspace(env).output(name, as_json=as_json))


@main.command("force-unlock")
@env_argument
@click.argument("lock_id", metavar="LOCK_ID")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_state
@handle_errors
def force_unlock(state: State, env: str, lock_id: str, yes: bool) -> None:
    """Release ENV's state lock LOCK_ID, left behind by a run that died.

    Only do this when no other run is working on ENV: two runs writing one state corrupt it.
    """
    from mlcicd.printable import escape

    workspace = state.workspace(env)
    shown = escape(lock_id, one_line=True)
    if not yes:
        _require_interactive(state, False, "force-unlock", flag="--yes")
        click.confirm(f"Release lock {shown} on '{env}'? Make sure no other run is using it.",
                      abort=True)
    workspace.force_unlock(lock_id)
    click.echo(f"{env}: lock {shown} released")


@main.command()
@env_argument
@pass_state
@handle_errors
def recover(state: State, env: str) -> None:
    """Push the state a failed apply could not upload (kept in .mlcicd/ENV/errored.tfstate)
    back to ENV's backend, then delete the file. Until then plan and apply of ENV refuse."""
    path = state.workspace(env).recover()
    click.echo(f"{env}: state from {path} pushed to the backend; the file is deleted")


@dataclass(frozen=True)
class PlanRequest:
    """How `plan` was asked to plan, whatever the environments."""

    out: Path | None
    detailed_exitcode: bool
    destroy: bool
    as_json: bool
    allow_pending: bool
    offline: bool


def _plan_many(state: State, chosen: list[str], selection: Selection, request: PlanRequest) -> None:
    from mlcicd.errors import UsageError
    from mlcicd.orchestrate import plan_task

    if request.offline:
        raise UsageError("--offline plans one environment at a time",
                         hint="`mlcicd validate --all --offline` checks every environment offline")
    if not request.destroy:
        for name in chosen:
            connection_gate(state, name, request.allow_pending)
    out = request.out.resolve() if request.out else None
    task = plan_task(state.config, state.runtime, out, destroy=request.destroy)
    report = run_many(state, chosen, selection, task, reverse=request.destroy)
    if request.as_json:
        import json
        from dataclasses import asdict

        click.echo(json.dumps([asdict(r) for r in report.results], indent=2))
    if report.failed:
        sys.exit(1)
    if request.detailed_exitcode and any(r.status == "changes" for r in report.results):
        sys.exit(2)


def _changed_envs(state: State, selection: Selection, changed: bool, base: str | None,
                  out: Path | None, to_stderr: bool) -> list[str]:
    """The environments `--changed` picks, each printed with why (on stderr when stdout is
    JSON); recorded in OUT for the pull-request review."""
    from mlcicd import changes
    from mlcicd.errors import UsageError
    from mlcicd.printable import escape

    if not changed:
        raise UsageError("--base goes with --changed")
    if selection.envs or selection.all:
        raise UsageError("--changed picks the environments itself: name none and leave out --all")
    found = changes.detect(state.config, base)
    if out is not None:
        changes.write(out, found)
    click.echo(escape(f"Changed since {found.base[:12]} ({found.base_label}): {len(found.files)} file(s), "
                      f"{len(found.chosen) or 'no'} environment(s) to plan", one_line=True), err=to_stderr)
    for name, reasons in found.chosen.items():  # file names come from the change: escaped
        click.echo(escape(f"  {name}: {'; '.join(reasons)}", one_line=True), err=to_stderr)
    return list(found.chosen)


def _apply_task(state: State, *, destroy: bool):
    from mlcicd.orchestrate import apply_task

    return apply_task(state.config, state.runtime, destroy=destroy)


def _exit_for(report) -> None:
    if report.failed:
        sys.exit(1)


def _print_outcome(outcome: PlanOutcome, as_json: bool) -> None:
    if as_json:
        import json
        from dataclasses import asdict

        click.echo(json.dumps({**asdict(outcome.manifest), "plan_dir": str(outcome.plan_dir)},
                              indent=2, sort_keys=True))
        return
    click.echo("")
    click.echo(outcome.summary.rstrip())
    click.echo(f"\nPlan directory: {outcome.plan_dir}")


def _require_interactive(state: State, approved: bool, verb: str, flag: str = "--auto-approve") -> None:
    from mlcicd.errors import UsageError

    if not approved and not state.runtime.interactive:
        raise UsageError(f"refusing to {verb} without confirmation in a non-interactive session",
                         hint=f"pass {flag}" + (" or --plan DIR" if verb == "apply" else ""))


def _confirm(verb: str):
    def ask(outcome: PlanOutcome) -> bool:
        click.echo(outcome.summary.rstrip())
        return click.confirm(f"{verb} these changes?", default=False)

    return ask


def _report_apply(env: str, outcome: PlanOutcome | None) -> None:
    if outcome is None:
        click.echo(f"{env}: nothing applied (not confirmed)")
        sys.exit(1)
    if not outcome.has_changes:
        click.echo(f"{env}: no changes")
    else:
        click.echo(f"applied: {outcome.review.headline}")


@main.command()
@with_many_options
@click.option("--offline", is_flag=True,
              help="Use mlcicd's stand-in for hashicorp/aws (the real schema; no registry, AWS or network).")
@pass_state
@handle_errors
def validate(state: State, selection: Selection, offline: bool) -> None:
    """Run `terraform validate` on each ENV: every argument, block and reference is checked
    against the hashicorp/aws schema, and errors name the file and line.

    Without a downloadable provider (no registry access), pass --offline.
    """
    from mlcicd.errors import TerraformError
    from mlcicd.validate import validate_task

    names = chosen_envs(state, selection)
    if offline:
        from mlcicd.offline import preview

        preview.require_extra()
        click.secho(preview.banner(", ".join(names)), err=True, fg="yellow")
    task = validate_task(state.config, state.runtime, offline=offline, color=use_color())
    # Each environment's messages as one block: validate errors are read as a whole.
    report = run_many(state, names, selection, task, ordered=False, grouped=True)
    if report.failed:
        failed = [r.env for r in report.failed]
        raise TerraformError(f"{len(failed)} of {len(names)} environment(s) failed validation"
                             f"{' (offline preview)' if offline else ''}: {', '.join(failed)}")


def _offline_plan(state: State, env: str, out: Path | None, destroy: bool) -> PlanOutcome:
    from mlcicd.offline import preview

    preview.require_extra()
    click.secho(preview.banner(env), err=True, fg="yellow")
    with preview.workspace(state.config, state.env(env), state.runtime, color=use_color()) as workspace:
        return workspace.plan(out, destroy=destroy)


@main.command()
@with_many_options
@click.option("--notify-topic", metavar="ARN", envvar="MLCICD_DRIFT_TOPIC_ARN", show_envvar=True,
              help="Publish one SNS message listing the drifted resources per environment (none when "
                   "nothing drifted).")
@pass_state
@handle_errors
def drift(state: State, selection: Selection, notify_topic: str | None) -> None:
    """Detect drift: a refresh-only plan per environment.

    Exits 2 when any environment drifted (listing the drifted resources), 1 when any failed
    or the notification could not be sent, 0 otherwise. Suited to a scheduled CodeBuild run.
    """
    from mlcicd import notify
    from mlcicd.orchestrate import drift_task

    topic = notify.check_topic(notify_topic) if notify_topic else None
    report = run_many(state, chosen_envs(state, selection), selection, drift_task(state.config, state.runtime))
    if topic:
        sent = notify.publish_drift(state.config, state.runtime, report, topic)
        click.echo(f"notified {topic} (message {sent})" if sent else "nothing drifted: no notification", err=True)
    if report.failed:
        sys.exit(1)
    if any(r.status == "drifted" for r in report.results):
        sys.exit(2)


@main.command()
@click.option("--dir", "root", type=click.Path(file_okay=False, path_type=Path), default=Path("terraform"),
              show_default=True, help="Directory holding the Terraform modules and environments.")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if any README's tables are out of date.")
@handle_errors
def docs(root: Path, check: bool) -> None:
    """Regenerate the Inputs/Outputs tables in every module's README.md.

    The tables come from the modules' variable and output blocks, between the
    BEGIN_MLCICD_DOCS/END_MLCICD_DOCS markers; the rest of each README is left alone.
    """
    from mlcicd import moduledoc
    from mlcicd.errors import UsageError

    if not root.is_dir():
        raise UsageError(f"{root}: no such directory", hint="pass --dir DIR")
    changed = moduledoc.document(root, check=check)
    if check:
        click.echo("module docs up to date")
        return
    for readme in changed:
        click.echo(f"updated {readme}")
    if not changed:
        click.echo("module docs up to date")
