"""Ctrl-C over several environments: the ones that finished keep their result, the one that was
running stops gracefully and says so, the ones not started are skipped, and mlcicd exits 130."""

from __future__ import annotations

import shutil
import signal
import textwrap

import pytest

from tests.conftest import FIXTURES, write_config
from tests.test_interrupt import SLOW_TF, Run

pytestmark = pytest.mark.usefixtures("state_bucket")


@pytest.fixture
def many(tmp_path):
    """`quick` (built-in resources), then `slow` (depends on quick; a slow apply), then `last`."""
    root = tmp_path / "proj"
    for name in ("quick", "slow", "last"):
        shutil.copytree(FIXTURES / "builtin-root", root / "terraform" / name)
    (root / "terraform" / "slow" / "slow.tf").write_text(SLOW_TF)
    envs = "".join(textwrap.dedent(f"""\
          {name}:
            account: staging
            dir: terraform/{name}
            assume_role: false
            depends_on: [{dep}]
            vars: {{greeting: hi}}
        """) for name, dep in (("quick", ""), ("slow", "quick"), ("last", "slow")))
    write_config(root, extra="environments:\n" + textwrap.indent(envs, "  "))
    return root


def lines_starting(output: str, prefix: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(prefix)]


@pytest.mark.parametrize("command", [["apply", "--auto-approve"], ["plan"]])
def test_interrupt_keeps_finished_results_and_exits_130(many, command):
    run = Run(many, command[0], "quick", "slow", "last", *command[1:], "-j", "1")
    run.wait_for("[slow]")
    if command[0] == "apply":
        run.wait_for("terraform_data.step0[0]: Creation complete")
    run.proc.send_signal(signal.SIGINT)
    assert run.finish() == 130, run.output
    out = run.output
    done = {"apply": "applied", "plan": "changes", "validate": "valid"}[command[0]]
    assert lines_starting(out, "quick: ") == [lines_starting(out, "quick: ")[0]]
    assert lines_starting(out, "quick: ")[0].startswith(f"quick: {done}"), out
    assert lines_starting(out, "slow: ")[0].startswith("slow: interrupted"), out
    assert lines_starting(out, "last: ") == ["last: skipped: interrupted"], out
    assert "failed" not in "".join(lines_starting(out, "quick: ")), out
    assert "Traceback" not in out


def test_interrupted_validate_exits_130_and_keeps_the_finished_environment(many):
    # validate prints each environment as one block when it ends; the interrupt lands as soon
    # as the first one is reported, while the next is being checked.
    run = Run(many, "validate", "quick", "slow", "last", "-j", "1")
    run.wait_for("── quick: valid")
    run.proc.send_signal(signal.SIGINT)
    assert run.finish() == 130, run.output
    out = run.output
    assert lines_starting(out, "quick: ") == ["quick: valid"], out
    assert lines_starting(out, "last: ") == ["last: skipped: interrupted"], out
    assert "failed" not in "".join(lines_starting(out, "quick: ") + lines_starting(out, "last: "))
    assert "Traceback" not in out
