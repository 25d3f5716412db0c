"""The JSON review is written by orjson, for speed; machines reading it must get the bytes
json.dumps would have written, whatever text the plan holds. And the program, which leaves a
review without freeing the plan, must still print all of it with the right exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from mlcicd import review
from mlcicd.cli import main
from mlcicd.masking import Masker
from mlcicd.plandir import PlanJSON
from mlcicd.printable import escape
from mlcicd.review_format import _dump, to_dict
from tests.conftest import write_config

ROOT = Path(__file__).resolve().parent.parent


def _stdlib(data) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n"


# What a review holds: escaped text (any code point, lone surrogates included, before escaping),
# counts, flags, and tuples and lists of them.
_text = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF)).map(escape)
_leaf = st.one_of(_text, st.integers(-(2**63), 2**63 - 1), st.booleans(), st.none())
_tree = st.recursive(_leaf, lambda inner: st.one_of(st.lists(inner), st.lists(inner).map(tuple),
                                                    st.dictionaries(_text, inner)), max_leaves=30)


@given(st.dictionaries(_text, _tree))
def test_the_json_review_is_what_json_dumps_writes(data):
    assert _dump(data) == _stdlib(data)


@given(st.lists(st.tuples(st.text(min_size=1), st.dictionaries(st.text(), st.one_of(st.text(), st.integers(),
                                                                                    st.floats(allow_nan=False))),
                          st.sampled_from([["create"], ["update"], ["delete"], ["delete", "create"]])),
                max_size=8))
def test_a_review_of_any_values_dumps_as_json_dumps_would(changes):
    # The whole path: values from a plan, through the review, into both encoders.
    plan = PlanJSON({"format_version": "1.2", "resource_changes": [
        {"address": f"aws_s3_object.o[{i}]{address}", "type": "aws_s3_object",
         "change": {"actions": actions, "before": None if actions == ["create"] else values,
                    "after": None if actions == ["delete"] else {**values, "changed": i}}}
        for i, (address, values, actions) in enumerate(changes)]})
    data = to_dict(review.build("prod", plan, Masker()))
    assert _dump(data) == _stdlib(data)


def _program(*args: str, cwd) -> subprocess.CompletedProcess:
    # The program as CodeBuild runs it (`python -m mlcicd`, the console script's `run`), which
    # ends a review with os._exit instead of freeing the plan: what it printed must all be there.
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "mlcicd", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, check=False)


def test_the_program_prints_the_whole_review_and_its_exit_code_when_it_leaves_without_teardown(tmp_path):
    config = write_config(tmp_path)
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"format_version": "1.2", "resource_changes": [
        {"address": f"aws_s3_object.o[{i}]", "type": "aws_s3_object",
         "change": {"actions": ["delete"] if i == 3 else ["create"], "before": {"key": "k"} if i == 3 else None,
                    "after": None if i == 3 else {"key": f"k{i}"}}} for i in range(5)]}))
    expected = CliRunner().invoke(main, ["--config", str(config), "review", str(plan), "--format", "json",
                                         "--no-checkov"]).stdout
    ran = _program("--config", str(config), "review", str(plan), "--format", "json", "--no-checkov", cwd=tmp_path)
    assert (ran.returncode, ran.stdout) == (0, expected)
    assert "unverified:" in ran.stderr
    gated = _program("--config", str(config), "review", str(plan), "--format", "json", "--no-checkov",
                     "--fail-on", "destroy", cwd=tmp_path)
    assert (gated.returncode, gated.stdout) == (3, expected)
    assert "blocked 1 change(s): aws_s3_object.o[3] (destroy)" in gated.stderr
    wrong = _program("--config", str(config), "review", str(plan), "--format", "yaml", cwd=tmp_path)
    assert wrong.returncode == 2 and "Invalid value for '--format'" in wrong.stderr
