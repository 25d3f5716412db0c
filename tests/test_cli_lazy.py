"""The command modules are imported when one of their commands is asked for: `mlcicd review`
imports stage_commands alone, while help, errors and every command behave as if all were loaded."""

from __future__ import annotations

import importlib
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import mlcicd.cli
from mlcicd.cli import main
from mlcicd.cli.base import COMMAND_MODULES

ROOT = Path(__file__).resolve().parents[1]


def _python(code: str) -> subprocess.CompletedProcess:
    """`code` in a fresh interpreter, where no command module is imported yet."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def _defined_commands() -> dict[str, str]:
    """Every command any module of mlcicd.cli defines, with the module that defines it."""
    found: dict[str, str] = {}
    for info in pkgutil.iter_modules(mlcicd.cli.__path__, "mlcicd.cli."):
        module = importlib.import_module(info.name)
        for obj in vars(module).values():
            if isinstance(obj, click.Command) and obj is not main:
                assert found.setdefault(obj.name, info.name) == info.name, f"{obj.name} defined twice"
    return found


def test_the_command_map_names_exactly_the_commands_each_module_defines():
    assert _defined_commands() == COMMAND_MODULES
    assert set(main.commands) == set(COMMAND_MODULES), "every command defined is registered on main"


@pytest.mark.parametrize(("argv", "expected"), [
    (["review", "--help"], ["mlcicd.cli.stage_commands"]),
    (["plan", "--help"], ["mlcicd.cli.deploy_commands"]),
    (["connect", "--help"], ["mlcicd.cli.backend_commands"]),
    (["--version"], []),
])
def test_a_command_imports_only_the_module_that_defines_it(argv, expected):
    done = _python(f"""
import sys
from mlcicd.cli import main
try:
    main({argv!r}, prog_name="mlcicd")
except SystemExit as exc:
    assert exc.code == 0, exc.code
print(*sorted(m for m in sys.modules if m.endswith("_commands")), file=sys.stderr)
""")
    assert done.returncode == 0, done.stderr
    assert done.stderr.split() == expected


def test_help_lists_every_command_with_its_short_help():
    done = subprocess.run([sys.executable, "-m", "mlcicd", "--help"], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    listed = done.stdout.split("\nCommands:\n", 1)[1].splitlines()
    assert [line.split()[0] for line in listed] == sorted(COMMAND_MODULES)
    ctx = click.Context(main, info_name="mlcicd")
    for line in listed:
        name, short = line.split(maxsplit=1)
        assert main.get_command(ctx, name).get_short_help_str(200).startswith(short.removesuffix("..."))


@pytest.mark.parametrize("name", sorted(COMMAND_MODULES))
def test_every_command_has_its_help(name):
    result = CliRunner().invoke(main, [name, "--help"], prog_name="mlcicd")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Usage: mlcicd {name} [OPTIONS]")


def test_an_unknown_command_is_reported_as_with_every_command_loaded():
    """click's usage error, with the close names it suggests (`review` for `reveiw`, if it does)."""
    code = """
from mlcicd.cli import main
{load}
main(["reveiw"], prog_name="mlcicd")
"""
    lazy = _python(code.format(load=""))
    eager = _python(code.format(load="main.load_all()"))
    assert lazy.returncode == eager.returncode == 2
    assert "Error: No such command 'reveiw'." in lazy.stderr
    assert lazy.stderr == eager.stderr
