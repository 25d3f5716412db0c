"""What every command shares: the group `main`, the per-invocation State, the shared options,
the one error handler (MlcicdError -> message and exit code, here and only here), and running a
task over many environments. The command modules import this; this imports none of them at
import time: `main` imports the one that defines a command when that command is asked for."""


from __future__ import annotations

import errno
import importlib
import os
import signal
import sys
from dataclasses import dataclass
from functools import cached_property, wraps
from typing import TYPE_CHECKING

import click

from mlcicd import __version__

if TYPE_CHECKING:
    from mlcicd.config import Config, Environment
    from mlcicd.deploy import Workspace
    from mlcicd.runtime import Runtime


@dataclass
class State:
    """Per-invocation state: the config path, loaded lazily, once."""

    config_option: str | None

    @cached_property
    def runtime(self) -> Runtime:
        from mlcicd import parsecache
        from mlcicd.runtime import Runtime

        runtime = Runtime.from_environ()
        parsecache.keep_parses_in(runtime.cache_dir)  # Terraform source read by this run is parsed once
        return runtime

    @cached_property
    def config(self) -> Config:
        from mlcicd import config

        return config.load(config.resolve_path(self.config_option, self.runtime.config_path))

    def env(self, name: str) -> Environment:
        return self.config.env(name)

    def workspace(self, name: str) -> Workspace:
        from mlcicd.deploy import Workspace

        return Workspace(self.config, self.env(name), self.runtime, color=use_color())


def use_color() -> bool:
    return sys.stdout.isatty()


def handle_errors(func):
    """Turn MlcicdError into a message and its exit code; never a traceback for user mistakes.
    Messages carry outside text (paths, names, AWS and Terraform messages): control and bidi
    characters are shown escaped. A file mlcicd cannot write (read-only checkout or HOME) is
    reported with what to change, wherever in the library it happened."""

    @wraps(func)
    def wrapper(*args, **kwargs):
        from mlcicd.errors import MlcicdError
        from mlcicd.printable import escape

        try:
            return func(*args, **kwargs)
        except MlcicdError as exc:
            click.secho(f"Error: {escape(str(exc))}", err=True, fg="red")
            sys.exit(exc.exit_code)
        except OSError as exc:
            if exc.filename is None:
                raise
            error = _path_error(exc)
            click.secho(f"Error: {escape(str(error))}", err=True, fg="red")
            sys.exit(error.exit_code)
        except KeyboardInterrupt:
            click.secho("Interrupted.", err=True, fg="red")
            sys.exit(130)

    return wrapper


# Errors that mean "cannot write there": permissions, read-only file systems, a full disk, and
# a file where a directory should be (e.g. XDG_CACHE_HOME naming a file).
_UNWRITABLE = frozenset({errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENOTDIR,
                         errno.EEXIST, errno.EISDIR})


# Errors that mean the path itself cannot be looked up, whatever the operation.
_UNUSABLE = frozenset({errno.ENAMETOOLONG, errno.ELOOP})


def _path_error(exc: OSError):
    """The specific error for a file-system failure on a named path: a path that cannot be used at
    all, one that could not be written (in the cache, or in the project), or another failure."""
    from pathlib import Path

    from mlcicd.errors import CacheNotWritable, PathFailed, PathUnusable, WorkdirNotWritable

    path = Path(exc.filename)
    if exc.errno in _UNUSABLE:
        return PathUnusable(path, exc.strerror or str(exc))
    if exc.errno not in _UNWRITABLE:
        return PathFailed(path, exc.strerror or str(exc))
    ctx = click.get_current_context(silent=True)
    state = ctx.find_object(State) if ctx else None
    runtime = state.runtime if state else None
    reason = exc.strerror or str(exc)
    if runtime and runtime.cache_dir and (path == runtime.cache_dir or runtime.cache_dir in path.parents
                                          or path in runtime.cache_dir.parents):
        return CacheNotWritable(path, reason)
    return WorkdirNotWritable(path, reason)


pass_state = click.make_pass_decorator(State)
env_argument = click.argument("env", metavar="ENV")
allow_pending_option = click.option(
    "--allow-pending-connection", "allow_pending", is_flag=True,
    help="Plan/apply a pipeline although its GitHub connection is not AVAILABLE (CI refuses otherwise).")


def run_many(state: State, chosen: list[str], selection: Selection, task, *, reverse: bool = False,
             ordered: bool = True, grouped: bool | None = None):
    """Run a per-environment task over the chosen environments and print the collected report."""
    from mlcicd import orchestrate
    from mlcicd.terraform import forwarding_interrupts

    def write(text: str, is_err: bool) -> None:
        click.echo(text, err=is_err)

    with forwarding_interrupts(write):
        report = orchestrate.run_all(state.config.environments, chosen, task, parallelism=selection.parallelism,
                                     write=write, grouped=selection.grouped if grouped is None else grouped,
                                     reverse=reverse, ordered=ordered)
    click.echo("")
    for result in report.results:
        click.echo(result.line())
    if report.interrupted:
        click.secho("Interrupted. The environments that finished keep their results (above); "
                    "run the command again for the others.", err=True, fg="red")
        sys.exit(130)
    return report


many_options = [
    click.argument("envs", nargs=-1, metavar="[ENV]..."),
    click.option("--all", "all_", is_flag=True, help="Every environment in the config, in dependency order."),
    click.option("-j", "--parallelism", type=click.IntRange(min=1), default=4, show_default=True,
                 help="Environments run at once (dependencies are always respected)."),
    click.option("--group", "grouped", is_flag=True,
                 help="Print each environment's output as one block when it ends, not prefixed lines."),
]


@dataclass(frozen=True)
class Selection:
    """ENV..., --all, -j and --group as given: which environments, how many at once, how printed."""

    envs: tuple[str, ...]
    all: bool
    parallelism: int
    grouped: bool

    @property
    def one(self) -> str | None:
        """The environment, when exactly one is named (and not --all)."""
        return self.envs[0] if not self.all and len(self.envs) == 1 else None


def with_many_options(func):
    """ENV..., --all, -j/--parallelism and --group, given to the command as one `selection`."""

    @wraps(func)
    def wrapper(*args, envs, all_, parallelism, grouped, **kwargs):
        return func(*args, selection=Selection(envs, all_, parallelism, grouped), **kwargs)

    for option in reversed(many_options):
        wrapper = option(wrapper)
    return wrapper


def chosen_envs(state: State, selection: Selection) -> list[str]:
    from mlcicd import orchestrate

    return orchestrate.select(state.config, selection.envs, selection.all)


# Which module defines each command, so that a command imports its own module only: `mlcicd review`
# does not define the thirteen commands of the others. tests/test_cli_lazy.py holds this map to the
# commands the modules define.
COMMAND_MODULES = {
    **dict.fromkeys(("bootstrap", "connect"), "mlcicd.cli.backend_commands"),
    **dict.fromkeys(("render", "init", "plan", "apply", "destroy", "output", "force-unlock", "recover", "validate",
                     "drift", "docs"), "mlcicd.cli.deploy_commands"),
    **dict.fromkeys(("review", "run-pipeline", "release", "status", "approve", "reject"),
                    "mlcicd.cli.stage_commands"),
}


class LazyGroup(click.Group):
    """A group whose commands are defined in modules (`lazy_commands`: command name -> module)
    imported when one of their commands is first asked for; each registers its commands on the
    group as it is imported. `--help` and shell completion ask for all of them."""

    def __init__(self, *args, lazy_commands: dict[str, str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = lazy_commands

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy_commands:
            importlib.import_module(self.lazy_commands[cmd_name])
        return super().get_command(ctx, cmd_name)

    def resolve_command(self, ctx: click.Context, args: list[str]):
        # An unknown name: click's error suggests close names from self.commands, so load them all.
        if args and args[0] not in self.commands and args[0] not in self.lazy_commands:
            self.load_all()
        return super().resolve_command(ctx, args)

    def load_all(self) -> None:
        for module in sorted(set(self.lazy_commands.values())):
            importlib.import_module(module)


@click.group(cls=LazyGroup, lazy_commands=COMMAND_MODULES,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--config", "config_option", metavar="PATH",
              help="Config file (default: $MLCICD_CONFIG, else ./mlcicd.yaml).")
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
      mlcicd review plan/ --format html --out review.html
                                        the page an approver decides from
      mlcicd apply staging --plan plan/ apply exactly that plan
      mlcicd plan --changed --out plans/
                                        only what a change touches (pull requests)

    Exit codes: 0 ok, 1 operation failed, 2 bad usage or config, 3 blocked by a review gate,
    130 interrupted.
    """
    # A SIGTERM (e.g. a CodeBuild timeout) ends mlcicd like Ctrl-C: cleanly, exit 130. While
    # Terraform runs, the runner forwards it to Terraform as an interrupt instead.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    ctx.obj = State(config_option)


# `run` sets _program; a command that asks to leave without teardown sets _leave and keeps its
# objects alive in _kept (its locals would otherwise be freed, one by one, when it returns).
_program = False
_leave = False
_kept: list[object] = []


def leave_without_teardown(*objects: object) -> None:
    """Let the program end without freeing `objects` or anything else (see `run`). Only a
    command that has closed every file it writes and has no thread or child left asks for it:
    `review`, whose plan is millions of objects that took a tenth of its time to free. Under
    `main` alone (tests), nothing changes."""
    global _leave
    if _program:
        _leave = True
        _kept.extend(objects)


def run() -> None:
    """The `mlcicd` program (console script and `python -m mlcicd`): `main`, then the exit.
    Where the command asked for it, the process ends as soon as stdout and stderr are flushed
    (os._exit), without freeing its objects first."""
    global _program
    _program = True
    try:
        main()
    except SystemExit as exc:
        if not _leave or not (exc.code is None or isinstance(exc.code, int)):
            raise
        code = exc.code or 0
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except OSError:  # a reader that went away (`| head`): the exit status Python gives it
            code = code or 120
        os._exit(code)


def connection_gate(state: State, env: str, allow_pending: bool) -> None:
    """Warn (in CI: refuse) before planning or applying a pipeline whose connection is not AVAILABLE."""
    from mlcicd.connection import pipeline_gate

    warning = pipeline_gate(state.config, state.runtime, state.env(env), allow_pending)
    if warning:
        click.secho(f"Warning: {warning}", err=True, fg="yellow")
