"""The `mlcicd` command line.

Each command parses its arguments, builds typed objects and calls one function of the module
that owns the concern. Errors from the library (MlcicdError) become a message on stderr and
the error's exit code here, and only here. Heavy modules are imported inside commands so that
`mlcicd --help` stays fast.
"""

from __future__ import annotations

import json
import signal
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
allow_pending_option = click.option(
    "--allow-pending-connection", "allow_pending", is_flag=True,
    help="Plan/apply a pipeline although its GitHub connection is not AVAILABLE (CI refuses otherwise).")



def _run_many(state: State, chosen: list[str], parallelism: int, grouped: bool, task, reverse: bool = False,
              ordered: bool = True):
    """Run a per-environment task over the chosen environments and print the collected report."""
    from mlcicd import orchestrate
    from mlcicd.terraform import forwarding_interrupts

    def write(text: str, is_err: bool) -> None:
        click.echo(text, err=is_err)

    with forwarding_interrupts(write):
        report = orchestrate.run_all(state.config.environments, chosen, task, parallelism=parallelism,
                                     write=write, grouped=grouped, reverse=reverse, ordered=ordered)
    click.echo("")
    for result in report.results:
        click.echo(result.line())
    return report


many_options = [
    click.argument("envs", nargs=-1, metavar="[ENV]..."),
    click.option("--all", "all_", is_flag=True, help="Every environment in the config, in dependency order."),
    click.option("-j", "--parallelism", type=click.IntRange(min=1), default=4, show_default=True,
                 help="Environments run at once (dependencies are always respected)."),
    click.option("--group", "grouped", is_flag=True,
                 help="Print each environment's output as one block when it ends, not prefixed lines."),
]


def with_many_options(func):
    """ENV..., --all, -j/--parallelism and --group: one environment, several, or all of them."""
    for option in reversed(many_options):
        func = option(func)
    return func


def _chosen(state: State, envs: tuple[str, ...], all_: bool) -> list[str]:
    from mlcicd import orchestrate

    return orchestrate.select(state.config, envs, all_)


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
    Try first, with no AWS account (an offline preview):
      mlcicd validate --all --offline   Terraform's validate against the real aws schema
      mlcicd plan staging --offline     the plan of staging; nothing can be applied

    \b
    Everyday:
      mlcicd plan staging --out plan/   plan into a reviewable plan directory
      mlcicd apply staging --plan plan/ apply exactly that plan

    Exit codes: 0 ok, 1 operation failed, 2 bad usage or config, 3 blocked by a review gate.
    """
    # A SIGTERM (e.g. a CodeBuild timeout) ends mlcicd like Ctrl-C: cleanly, exit 130. While
    # Terraform runs, the runner forwards it to Terraform as an interrupt instead.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
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
@pass_state
@handle_errors
def plan(state: State, envs: tuple[str, ...], all_: bool, parallelism: int, grouped: bool, out: Path | None,
         detailed_exitcode: bool, destroy: bool, as_json: bool, allow_pending: bool, offline: bool) -> None:
    """Plan ENV into a plan directory: binary plan, plan.json, summary and manifest.

    The directory is what `apply ENV --plan DIR` applies, exactly, after checking it.
    plan.json holds sensitive values in clear and is written readable by the owner only.
    With several environments (or --all) independent ones plan in parallel and a
    one-line-per-environment report ends the run.
    """
    if all_ or len(envs) != 1:
        _plan_many(state, _chosen(state, envs, all_), parallelism, grouped, out, detailed_exitcode,
                   destroy, as_json, allow_pending, offline)
        return
    env = envs[0]
    if offline:
        outcome = _offline_plan(state, env, out, destroy)
        _print_outcome(outcome, as_json)
        if not as_json:
            from mlcicd.offline import preview

            click.secho(preview.banner(env), fg="yellow")
        if detailed_exitcode and outcome.has_changes:
            sys.exit(2)
        return
    if not destroy:
        _connection_gate(state, env, allow_pending)
    outcome = state.workspace(env).plan(out, destroy=destroy)
    _print_outcome(outcome, as_json)
    if detailed_exitcode and outcome.has_changes:
        sys.exit(2)


@main.command()
@with_many_options
@click.option("--plan", "plan_dir", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="Apply exactly this reviewed plan directory.")
@click.option("--auto-approve", is_flag=True, help="Plan and apply without asking.")
@allow_pending_option
@pass_state
@handle_errors
def apply(state: State, envs: tuple[str, ...], all_: bool, parallelism: int, grouped: bool,
          plan_dir: Path | None, auto_approve: bool, allow_pending: bool) -> None:
    """Apply a reviewed plan (--plan DIR), or plan, confirm and apply.

    Without --plan, the plan summary is shown and you are asked to confirm; a
    non-interactive session must pass --auto-approve or --plan instead. Several
    environments (or --all) need --auto-approve and apply in dependency order.
    """
    from mlcicd.errors import UsageError

    if all_ or len(envs) != 1:
        if plan_dir is not None or not auto_approve:
            raise UsageError("applying several environments needs --auto-approve (and no --plan)")
        chosen = _chosen(state, envs, all_)
        for name in chosen:
            _connection_gate(state, name, allow_pending)
        _exit_for(_run_many(state, chosen, parallelism, grouped, _apply_task(state, destroy=False)))
        return
    env = envs[0]
    _connection_gate(state, env, allow_pending)
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
@with_many_options
@click.option("--auto-approve", is_flag=True, help="Destroy without asking.")
@pass_state
@handle_errors
def destroy(state: State, envs: tuple[str, ...], all_: bool, parallelism: int, grouped: bool,
            auto_approve: bool) -> None:
    """Destroy everything Terraform manages in ENV (plans first, shows what goes).

    Several environments (or --all) need --auto-approve and go in reverse dependency order.
    """
    from mlcicd.errors import UsageError

    if all_ or len(envs) != 1:
        if not auto_approve:
            raise UsageError("destroying several environments needs --auto-approve")
        chosen = _chosen(state, envs, all_)
        _exit_for(_run_many(state, chosen, parallelism, grouped, _apply_task(state, destroy=True), reverse=True))
        return
    env = envs[0]
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


def _plan_many(state: State, chosen: list[str], parallelism: int, grouped: bool, out: Path | None,
               detailed_exitcode: bool, destroy: bool, as_json: bool, allow_pending: bool, offline: bool) -> None:
    from mlcicd.errors import UsageError
    from mlcicd.orchestrate import plan_task

    if offline:
        raise UsageError("--offline plans one environment at a time",
                         hint="`mlcicd validate --all --offline` checks every environment offline")
    if not destroy:
        for name in chosen:
            _connection_gate(state, name, allow_pending)
    task = plan_task(state.config, state.runtime, out.resolve() if out else None, destroy=destroy)
    report = _run_many(state, chosen, parallelism, grouped, task, reverse=destroy)
    if as_json:
        from dataclasses import asdict

        click.echo(json.dumps([asdict(r) for r in report.results], indent=2))
    if report.failed:
        sys.exit(1)
    if detailed_exitcode and any(r.status == "changes" for r in report.results):
        sys.exit(2)


def _apply_task(state: State, *, destroy: bool):
    from mlcicd.orchestrate import apply_task

    return apply_task(state.config, state.runtime, destroy=destroy)


def _exit_for(report) -> None:
    if report.failed:
        sys.exit(1)


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


@main.command()
@click.option("--check", is_flag=True, help="Report what is missing or wrong, change nothing; exit 1 if anything is.")
@click.option("--yes", is_flag=True, help="Do not ask before creating or repairing (never asked in CI).")
@pass_state
@handle_errors
def bootstrap(state: State, check: bool, yes: bool) -> None:
    """Create or repair the Terraform state bucket (and lock table) in the devops account.

    Idempotent: every hardening item is read back and reported as created, repaired or unchanged.
    """
    from mlcicd.backend import UNCHANGED, BackendNotReady, StateBackend

    backend = StateBackend.open(state.config, state.runtime)
    if check or (state.runtime.interactive and not yes):
        status = backend.inspect()
        for item in status.checks:
            detail = f": {item.detail}" if item.detail else ""
            click.echo(f"  {'ok' if item.ok else 'MISSING':8} {item.item}{detail}")
        if check:
            if status.needs_bootstrap:
                raise BackendNotReady(status.missing)
            click.echo(f"state backend s3://{backend.bucket}: ready")
            return
        if not status.needs_bootstrap:
            click.echo(f"state backend s3://{backend.bucket}: ready, nothing to change")
            return
        click.confirm(f"Create or repair {len(status.missing)} item(s) in account {backend.account_id}?",
                      abort=True)
    steps = backend.bootstrap(on_step=lambda s: click.echo(
        f"  {s.outcome:9} {s.item}" + (f" (was: {s.detail})" if s.detail else "")))
    changed = [s for s in steps if s.outcome != UNCHANGED]
    done = f"{len(changed)} item(s) created or repaired" if changed else "already bootstrapped, nothing changed"
    click.echo(f"state backend s3://{backend.bucket}: {done}")


@main.command()
@click.option("--wait", is_flag=True, help="Wait, with a countdown, until the connection is AVAILABLE.")
@click.option("--timeout", type=click.FloatRange(min=0), default=900, show_default=True, metavar="SECONDS",
              help="How long --wait waits before failing.")
@click.option("--poll-interval", type=click.FloatRange(min=0.01), default=10, show_default=True,
              metavar="SECONDS", help="How often --wait asks AWS for the status.")
@pass_state
@handle_errors
def connect(state: State, wait: bool, timeout: float, poll_interval: float) -> None:
    """Find or create the GitHub connection in the devops account and record its ARN.

    A new connection is PENDING until a person completes the GitHub handshake in the console;
    the steps are printed. The pipeline must not be applied before it is AVAILABLE.
    """
    from mlcicd import connection as conn
    from mlcicd.render import CONNECTION_RECORD

    config = state.config
    conns = conn.Connections.open(config, state.runtime)
    found = conn.ensure(config, conns)
    current = conn.raise_for_error(found.connection)
    verb = "created" if found.created else "found"
    click.echo(f"GitHub connection {current.name}: {verb}, {current.status} ({current.arn})")
    if found.recorded:
        click.echo(f"recorded in {config.workdir / CONNECTION_RECORD} "
                   f"(pin it for CI with repository.connection_arn in {config.path.name})")
    if current.status == conn.AVAILABLE:
        return
    click.echo("To complete the handshake (only a person can):")
    for number, step in enumerate(conn.handshake_steps(current, config), 1):
        click.echo(f"  {number}. {step}")
    if not wait:
        click.echo("Then run `mlcicd connect --wait` (or check again with `mlcicd connect`).")
        return
    terminal = state.runtime.interactive
    try:
        current = conn.wait_available(conns, current, timeout, conn.console_url(config.region),
                                      interval=poll_interval, on_tick=_countdown(terminal))
    finally:
        if terminal:
            click.echo("")
    click.echo(f"GitHub connection {current.name}: AVAILABLE")


def _countdown(terminal: bool):
    """A terminal gets one line rewritten every second; a CI log one line per status poll."""

    def show(connection, left: float, polled: bool) -> None:
        line = f"  {connection.status}: waiting for the handshake, {int(left) // 60}:{int(left) % 60:02d} left"
        if terminal:
            click.echo(f"\r{line} ", nl=False)
        elif polled:
            click.echo(line)

    return show


def _connection_gate(state: State, env: str, allow_pending: bool) -> None:
    """Warn (in CI: refuse) before planning or applying a pipeline whose connection is not AVAILABLE."""
    from mlcicd.connection import pipeline_gate

    warning = pipeline_gate(state.config, state.runtime, state.env(env), allow_pending)
    if warning:
        click.secho(f"Warning: {warning}", err=True, fg="yellow")


# --- plan review and pipeline stage commands (review, run-pipeline, release, status, approve, reject) ---


@main.command()
@click.argument("plan_path", metavar="DIR", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text",
              show_default=True, help="How to print the review.")
@click.option("--fail-on", "fail_on", metavar="KINDS", default="",
              help="Exit 3 if the plan has any of these (comma-separated): destroy, replace, "
                   "create-before-destroy, destructive, create, update, import, move, forget, drift, output, policy.")
@click.option("--max-rows", type=click.IntRange(min=0), default=50, show_default=True,
              help="Rows per section before grouping/cutting (0: all). JSON is never cut.")
@click.option("--checkov/--no-checkov", "checkov", default=None,
              help="Run checkov on plan.json (default: when it is installed).")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Also write the review to FILE.")
@click.option("--exports", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Write PLAN_HEADLINE, PLAN_SHA256, counts and REVIEW_URL as shell exports (CodeBuild).")
@pass_state
@handle_errors
def review(state: State, plan_path: Path, fmt: str, fail_on: str, max_rows: int, checkov: bool | None,
           out: Path | None, exports: Path | None) -> None:
    """Review a plan directory (or a plan.json): counts, destructive changes first, drift,
    output changes, optional checkov findings. Sensitive values are never shown."""
    from mlcicd import policy, review_format
    from mlcicd import review as reviewer
    from mlcicd.masking import Masker
    from mlcicd.pipeline import build_console_url, write_exports

    gates = reviewer.parse_gates(fail_on)
    env, sha, plan = reviewer.load(plan_path)
    masker = Masker.from_settings(state.config.masks, state.runtime.environ)
    result = reviewer.build(env, plan, masker, sha)
    if checkov or (checkov is None and policy.checkov_available()):
        plan_json = plan_path / "plan.json" if plan_path.is_dir() else plan_path
        result = result.with_policy(policy.run_checkov(plan_json, masker))
    text = review_format.render(result, fmt, max_rows)
    if out is not None:
        from mlcicd.fsutil import atomic_write

        atomic_write(out, text.encode())
    if exports is not None:
        url = build_console_url(state.runtime.environ.get("CODEBUILD_BUILD_ARN", ""))
        write_exports(exports, reviewer.exports(result, review_url=url))
    click.echo(text, nl=False)
    reviewer.gate(result, gates)


@main.command("run-pipeline")
@env_argument
@click.argument("kind", type=click.Choice(["training", "inference"]))
@click.option("--wait", is_flag=True, help="Follow the execution until it ends; exit 1 if it fails.")
@click.option("--timeout", type=click.FloatRange(min=1), default=3600, show_default=True, metavar="SECONDS",
              help="With --wait: give up after this long.")
@click.option("--poll-interval", type=click.FloatRange(min=0), default=5, show_default=True, metavar="SECONDS",
              help="First wait between polls; it grows to 60 s.")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", help="A pipeline parameter (repeatable).")
@click.option("--pipeline-name", metavar="NAME", help="Default: PROJECT-ENV-KIND.")
@click.option("--no-assume-role", is_flag=True, help="Use the current credentials, not ENV's pipeline-runner role.")
@click.option("--check-output", is_flag=True, help="With --wait: assert the predictions exist and have the "
              "expected shape.")
@click.option("--expect-columns", metavar="A,B,...", default="", help="Columns the predictions must have.")
@click.option("--expect-rows", type=click.IntRange(min=1), metavar="N", help="Rows the predictions must have.")
@click.option("--predictions", metavar="S3URI", help="Where the predictions are (default: from the execution).")
@click.option("--model-package", metavar="ARN", default="",
              help="Run this registered model: its artefacts are passed as the ModelDataUri parameter.")
@click.option("--output", "output_file", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Outputs as JSON (default .mlcicd/ENV/run-KIND.json).")
@click.option("--exports", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Outputs as shell exports (MODEL_PACKAGE_ARN, ...) for CodeBuild.")
@pass_state
@handle_errors
def run_pipeline(state: State, env: str, kind: str, wait: bool, timeout: float, poll_interval: float,
                 params: tuple[str, ...], pipeline_name: str | None, no_assume_role: bool, check_output: bool,
                 expect_columns: str, expect_rows: int | None, predictions: str | None, model_package: str,
                 output_file: Path | None, exports: Path | None) -> None:
    """Start ENV's SageMaker training or inference pipeline; with --wait, follow it to the end."""
    from mlcicd import aws, sagemaker
    from mlcicd.fsutil import atomic_write
    from mlcicd.pipeline import write_exports

    environment = state.env(env)
    request = sagemaker.RunRequest(
        pipeline=pipeline_name or sagemaker.pipeline_name(state.config, environment, kind), kind=kind,
        params=sagemaker.parse_params(params), wait=wait, timeout=timeout, check_output=check_output,
        expect_columns=tuple(c.strip() for c in expect_columns.split(",") if c.strip()),
        expect_rows=expect_rows, predictions=predictions or "", model_package=model_package,
    )
    role = None if no_assume_role else state.config.runner_role_arn(environment)
    session = aws.session(state.config, state.runtime, role_arn=role, session_name=f"mlcicd-{kind}")
    out = output_file or state.config.workdir / env / f"run-{kind}.json"

    def record(result: sagemaker.RunResult) -> None:
        atomic_write(out, (json.dumps(result.to_dict(), indent=2) + "\n").encode())
        if exports is not None:
            write_exports(exports, result.exports())

    result = sagemaker.run(
        request, aws.client(state.config, state.runtime, "sagemaker", boto_session=session),
        lambda: aws.client(state.config, state.runtime, "s3", boto_session=session),
        poller=sagemaker.Poller(first=poll_interval, cap=max(60.0, poll_interval)), report=click.echo, record=record,
    )
    click.echo(f"{result.pipeline}: {result.status}"
               + (f"; model package {result.model_package_arn}" if result.model_package_arn else ""))


pipeline_option = click.option("--pipeline", "pipeline", metavar="NAME", help="Default: PROJECT-pipeline.")


def _codepipeline(state: State, pipeline: str | None):
    from mlcicd import aws
    from mlcicd import pipeline as cp

    return aws.client(state.config, state.runtime, "codepipeline"), pipeline or cp.pipeline_name(state.config)


@main.command()
@pipeline_option
@pass_state
@handle_errors
def release(state: State, pipeline: str | None) -> None:
    """Start the pipeline on the latest commit (the console's "Release change")."""
    from mlcicd import pipeline as cp

    client, name = _codepipeline(state, pipeline)
    click.echo(f"{name}: started execution {cp.release(client, name)}")


@main.command()
@pipeline_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_state
@handle_errors
def status(state: State, pipeline: str | None, as_json: bool) -> None:
    """Every stage and action of the pipeline with its status."""
    from mlcicd import pipeline as cp

    client, name = _codepipeline(state, pipeline)
    current = cp.state(client, name)
    click.echo(json.dumps(current.to_dict(), indent=2) if as_json else current.table(), nl=as_json)


def _decide(state: State, pipeline: str | None, approve: bool, comment: str, action: str | None) -> None:
    from mlcicd import pipeline as cp

    client, name = _codepipeline(state, pipeline)
    target = cp.decide(client, name, approve=approve, comment=comment, action=action)
    click.echo(f"{name}: {'approved' if approve else 'rejected'} {target.stage}/{target.name}")


def decision_options(func):
    """--pipeline, --comment and --action, shared by approve and reject."""
    func = click.option("--action", "action", metavar="STAGE/ACTION",
                        help="Which approval, if several are pending.")(func)
    func = click.option("--comment", default="", help="Recorded with the decision.")(func)
    return pipeline_option(func)


@main.command()
@decision_options
@pass_state
@handle_errors
def approve(state: State, pipeline: str | None, comment: str, action: str | None) -> None:
    """Approve the pending manual approval (the prod deploy)."""
    _decide(state, pipeline, True, comment, action)


@main.command()
@decision_options
@pass_state
@handle_errors
def reject(state: State, pipeline: str | None, comment: str, action: str | None) -> None:
    """Reject the pending manual approval; the execution stops there."""
    _decide(state, pipeline, False, comment, action)


# --- offline preview (validate) ---


@main.command()
@with_many_options
@click.option("--offline", is_flag=True,
              help="Use mlcicd's stand-in for hashicorp/aws (the real schema; no registry, AWS or network).")
@pass_state
@handle_errors
def validate(state: State, envs: tuple[str, ...], all_: bool, parallelism: int, grouped: bool,
             offline: bool) -> None:
    """Run `terraform validate` on each ENV: every argument, block and reference is checked
    against the hashicorp/aws schema, and errors name the file and line.

    Without a downloadable provider (no registry access), pass --offline.
    """
    from mlcicd.errors import TerraformError
    from mlcicd.validate import validate_task

    names = _chosen(state, envs, all_)
    if offline:
        from mlcicd.offline import preview

        preview.require_extra()
        click.secho(preview.banner(", ".join(names)), err=True, fg="yellow")
    task = validate_task(state.config, state.runtime, offline=offline, color=_color())
    # Each environment's messages as one block: validate errors are read as a whole.
    report = _run_many(state, names, parallelism, True, task, ordered=False)
    if report.failed:
        failed = [r.env for r in report.failed]
        raise TerraformError(f"{len(failed)} of {len(names)} environment(s) failed validation"
                             f"{' (offline preview)' if offline else ''}: {', '.join(failed)}")


def _offline_plan(state: State, env: str, out: Path | None, destroy: bool) -> PlanOutcome:
    from mlcicd.offline import preview

    preview.require_extra()
    click.secho(preview.banner(env), err=True, fg="yellow")
    with preview.workspace(state.config, state.env(env), state.runtime, color=_color()) as workspace:
        return workspace.plan(out, destroy=destroy)


# --- many environments (drift; plan/apply/destroy take several ENVs or --all) ---


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

    report = _run_many(state, _chosen(state, envs, all_), parallelism, grouped,
                       drift_task(state.config, state.runtime))
    if report.failed:
        sys.exit(1)
    if any(r.status == "drifted" for r in report.results):
        sys.exit(2)


# --- module documentation (docs) ---


@main.command()
@click.option("--dir", "root", type=click.Path(file_okay=False, path_type=Path), default=Path("terraform"),
              show_default=True, help="Directory holding the Terraform modules and environments.")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if any README's tables are out of date.")
@handle_errors
def docs(root: Path, check: bool) -> None:
    """Regenerate the Inputs/Outputs tables in every module's README.md.

    The tables come from Terraform's own config loader, between the
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
