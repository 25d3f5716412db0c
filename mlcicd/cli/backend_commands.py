"""The state backend and the GitHub connection: bootstrap, connect, and the connection gate
that plan/apply use."""

from __future__ import annotations

import click

from mlcicd.cli.base import (
    State,
    handle_errors,
    main,
    pass_state,
)


@main.command()
@click.option("--check", is_flag=True,
              help="Report every item that is missing or wrong, change nothing; exit 1 if any is.")
@click.option("--yes", is_flag=True, help="Do not ask before creating or repairing (never asked in CI).")
@pass_state
@handle_errors
def bootstrap(state: State, check: bool, yes: bool) -> None:
    """Create or repair the Terraform state bucket (and lock table) in the devops account.

    Idempotent: every hardening item is read back and reported as created, repaired or unchanged.
    What needs a person (a disabled KMS key, a bucket policy letting another account in) is
    reported, never changed.
    """
    from mlcicd.backend import UNCHANGED, BackendNotReady, StateBackend

    backend = StateBackend.open(state.config, state.runtime, read_only=check)
    if check or (state.runtime.interactive and not yes):
        status = backend.inspect()
        for finding in status.findings:
            detail = f": {finding.detail}" if finding.detail else ""
            click.echo(f"  {_label(finding.state):8} {finding.item}{detail}")
        if status.ready:
            click.echo(f"state backend s3://{backend.bucket}: ready" + ("" if check else ", nothing to change"))
            return
        if check or not status.to_repair:
            raise BackendNotReady(status.findings)
        click.confirm(f"Create or repair {len(status.to_repair)} item(s) in account {backend.account_id}?",
                      abort=True)
    steps = backend.bootstrap(on_step=_show_step)
    changed = [s for s in steps if s.outcome != UNCHANGED]
    done = f"{len(changed)} item(s) created or repaired" if changed else "already bootstrapped, nothing changed"
    click.echo(f"state backend s3://{backend.bucket}: {done}")


def _label(state: str) -> str:
    from mlcicd.backend_items import ERROR, MISSING, NOT_CHECKED, OK

    return {OK: "ok", MISSING: "MISSING", ERROR: "ERROR", NOT_CHECKED: "SKIPPED"}[state]


def _show_step(step) -> None:
    from mlcicd.backend import FAILED, SKIPPED

    if step.outcome in (FAILED, SKIPPED):
        click.echo(f"  {step.outcome:9} {step.item}: {step.detail}")
    else:
        click.echo(f"  {step.outcome:9} {step.item}" + (f" (was: {step.detail})" if step.detail else ""))


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
