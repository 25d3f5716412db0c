"""The `mlcicd` command line.

Each command parses its arguments, builds typed objects and calls one function of the module
that owns the concern. Errors from the library (MlcicdError) become a message on stderr and
the error's exit code here, and only here. Heavy modules are imported inside commands so that
`mlcicd --help` stays fast.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from functools import cached_property, wraps
from pathlib import Path
from typing import TYPE_CHECKING

import click

from mlcicd import __version__

if TYPE_CHECKING:
    from mlcicd.config import Config, Environment
    from mlcicd.deploy import PlanOutcome, Workspace
    from mlcicd.runtime import Runtime


@dataclass
class State:
    """Per-invocation state: the config path, loaded lazily, once."""

    config_option: str | None

    @cached_property
    def runtime(self) -> Runtime:
        from mlcicd.runtime import Runtime

        return Runtime.from_environ()

    @cached_property
    def config(self) -> Config:
        from mlcicd import config

        return config.load(config.resolve_path(self.config_option, self.runtime.environ))

    def env(self, name: str) -> Environment:
        return self.config.env(name)

    def workspace(self, name: str) -> Workspace:
        from mlcicd.deploy import Workspace

        return Workspace(self.config, self.env(name), self.runtime, color=_color())


def _color() -> bool:
    return sys.stdout.isatty()


def handle_errors(func):
    """Turn MlcicdError into a message and its exit code; never a traceback for user mistakes."""

    @wraps(func)
    def wrapper(*args, **kwargs):
        from mlcicd.errors import MlcicdError

        try:
            return func(*args, **kwargs)
        except MlcicdError as exc:
            click.secho(f"Error: {exc}", err=True, fg="red")
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.secho("Interrupted.", err=True, fg="red")
            sys.exit(130)

    return wrapper


pass_state = click.make_pass_decorator(State)
env_argument = click.argument("env", metavar="ENV")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--config", "config_option", metavar="PATH", envvar="MLCICD_CONFIG",
              help="Config file (default: ./mlcicd.yaml, or $MLCICD_CONFIG).")
@click.version_option(__version__, prog_name="mlcicd")
@click.pass_context
def main(ctx: click.Context, config_option: str | None) -> None:
    """CI/CD for machine-learning pipelines on AWS, declared in Terraform.

    \b
    First deployment, in order:
      mlcicd bootstrap          state bucket (and lock) in the devops account
      mlcicd connect --wait     GitHub connection; finish the handshake in the console
      mlcicd apply roles-...    account roles, with an administrator's credentials
      mlcicd apply devops       the pipeline; later changes arrive by `git push`

    \b
    Everyday:
      mlcicd plan staging --out plan/   plan into a reviewable plan directory
      mlcicd apply staging --plan plan/ apply exactly that plan

    Exit codes: 0 ok, 1 operation failed, 2 bad usage or config, 3 blocked by a review gate.
    """
    ctx.obj = State(config_option)


@main.command()
@click.argument("envs", nargs=-1, metavar="[ENV]...")
@click.option("--all", "all_", is_flag=True, help="Render every environment in the config.")
@pass_state
@handle_errors
def render(state: State, envs: tuple[str, ...], all_: bool) -> None:
    """Write each environment's tfvars and backend config under .mlcicd/ENV/."""
    from mlcicd import render as renderer
    from mlcicd.errors import UsageError

    if not envs and not all_:
        raise UsageError("name an environment or pass --all")
    names = list(state.config.environments) if all_ else list(envs)
    for name in names:
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
@env_argument
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="Plan directory to write (default .mlcicd/ENV/plan).")
@click.option("--detailed-exitcode", is_flag=True,
              help="Exit 0 when there are no changes, 2 when there are, 1 on error.")
@click.option("--destroy", is_flag=True, help="Plan to destroy everything in ENV.")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
@pass_state
@handle_errors
def plan(state: State, env: str, out: Path | None, detailed_exitcode: bool, destroy: bool,
         as_json: bool) -> None:
    """Plan ENV into a plan directory: binary plan, plan.json, summary and manifest.

    The directory is what `apply ENV --plan DIR` applies, exactly, after checking it.
    plan.json holds sensitive values in clear and is written readable by the owner only.
    """
    outcome = state.workspace(env).plan(out, destroy=destroy)
    _print_outcome(outcome, as_json)
    if detailed_exitcode and outcome.has_changes:
        sys.exit(2)


@main.command()
@env_argument
@click.option("--plan", "plan_dir", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="Apply exactly this reviewed plan directory.")
@click.option("--auto-approve", is_flag=True, help="Plan and apply without asking.")
@pass_state
@handle_errors
def apply(state: State, env: str, plan_dir: Path | None, auto_approve: bool) -> None:
    """Apply a reviewed plan (--plan DIR), or plan, confirm and apply.

    Without --plan, the plan summary is shown and you are asked to confirm; a
    non-interactive session must pass --auto-approve or --plan instead.
    """
    from mlcicd.errors import UsageError

    workspace = state.workspace(env)
    if plan_dir is not None:
        if auto_approve:
            raise UsageError("--plan applies a reviewed plan; --auto-approve does not apply to it")
        manifest = workspace.apply_plan(plan_dir)
        click.echo(f"{env}: applied plan {manifest.plan_sha256[:12]}")
        return
    _require_interactive(state, auto_approve, "apply")
    outcome = workspace.apply(auto_approve=auto_approve, confirm=_confirm("Apply"))
    _report_apply(env, outcome)


@main.command()
@env_argument
@click.option("--auto-approve", is_flag=True, help="Destroy without asking.")
@pass_state
@handle_errors
def destroy(state: State, env: str, auto_approve: bool) -> None:
    """Destroy everything Terraform manages in ENV (plans first, shows what goes)."""
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
    workspace = state.workspace(env)
    if not yes:
        _require_interactive(state, False, "force-unlock", flag="--yes")
        click.confirm(f"Release lock {lock_id} on '{env}'? Make sure no other run is using it.",
                      abort=True)
    workspace.force_unlock(lock_id)
    click.echo(f"{env}: lock {lock_id} released")


def _print_outcome(outcome: PlanOutcome, as_json: bool) -> None:
    if as_json:
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
        click.echo(f"applied: {outcome.summary.splitlines()[0]}")


# --- state backend and GitHub connection (bootstrap, connect) ---


# --- plan review and pipeline stage commands (review, run-pipeline, release, status, approve, reject) ---


# --- offline preview (validate) ---


# --- many environments (plan/apply --all, drift) ---


def _run_many(state: State, names: tuple[str, ...], all_: bool, parallelism: int, grouped: bool,
              make_task, reverse: bool = False):
    """Run a per-environment task over the chosen environments and print the collected report."""
    from mlcicd import orchestrate
    from mlcicd.terraform import forwarding_interrupts

    chosen = orchestrate.select(state.config, names, all_)

    def write(text: str, is_err: bool) -> None:
        click.echo(text, err=is_err)

    with forwarding_interrupts(write):
        report = orchestrate.run_all(state.config.environments, chosen, make_task(state.config, state.runtime),
                                     parallelism=parallelism, write=write, grouped=grouped, reverse=reverse)
    click.echo("")
    for result in report.results:
        click.echo(result.line())
    return report


many_options = [
    click.argument("envs", nargs=-1, metavar="[ENV]..."),
    click.option("--all", "all_", is_flag=True, help="Every environment in the config."),
    click.option("-j", "--parallelism", type=click.IntRange(min=1), default=4, show_default=True,
                 help="Environments run at once (dependencies are always respected)."),
    click.option("--group", "grouped", is_flag=True,
                 help="Print each environment's output as one block when it ends, not prefixed lines."),
]


def with_many_options(func):
    for option in reversed(many_options):
        func = option(func)
    return func


@main.command()
@with_many_options
@pass_state
@handle_errors
def drift(state: State, envs: tuple[str, ...], all_: bool, parallelism: int, grouped: bool) -> None:
    """Detect drift: a refresh-only plan per environment.

    Exits 2 when any environment drifted (listing the drifted resources), 1 when any failed,
    0 otherwise. Suited to a scheduled CodeBuild run.
    """
    from mlcicd.orchestrate import drift_task

    report = _run_many(state, envs, all_, parallelism, grouped, drift_task)
    if report.failed:
        sys.exit(1)
    if any(r.status == "drifted" for r in report.results):
        sys.exit(2)


# --- module documentation (docs) ---
