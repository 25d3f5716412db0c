"""Parses of Terraform source are kept in the cache directory, keyed by the file's bytes and the
installed parser: a run that finds one does not import the parser (about 0.15 s), and a kept
parse is only ever the parse of exactly those bytes."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlcicd import hcl, parsecache
from mlcicd.cli import main
from tests.conftest import write_config

ROOT = Path(__file__).resolve().parent.parent
SOURCE = 'variable "token" {\n  sensitive = true\n}\n\nvariable "size" {\n  default = 3\n}\n'


@pytest.fixture
def kept(tmp_path):
    parsecache.keep_parses_in(tmp_path / "cache")
    yield tmp_path / "cache" / "hcl"
    parsecache.keep_parses_in(None)


def test_a_kept_parse_is_used_and_other_bytes_are_parsed(tmp_path, kept, monkeypatch):
    import hcl2

    (tmp_path / "main.tf").write_text(SOURCE)
    first = hcl.parse_file(tmp_path / "main.tf")
    files = list(kept.glob("*.json"))
    assert len(files) == 1
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600 and stat.S_IMODE(kept.stat().st_mode) == 0o700

    def parser_ran(text):
        raise AssertionError("parsed again")

    monkeypatch.setattr(hcl2, "loads", parser_ran)
    assert hcl.parse_file(tmp_path / "main.tf") == first
    assert hcl.sensitive_variables(tmp_path) == {"token"}
    # Other bytes are not the kept parse: the parser runs.
    (tmp_path / "main.tf").write_text(SOURCE.replace("true", "false"))
    with pytest.raises(hcl.HclError, match="parsed again"):
        hcl.parse_file(tmp_path / "main.tf")


def test_a_run_that_finds_the_kept_parse_does_not_import_the_parser(tmp_path):
    (tmp_path / "main.tf").write_text(SOURCE)
    script = ("import sys; from pathlib import Path; from mlcicd import hcl, parsecache; "
              f"parsecache.keep_parses_in(Path({str(tmp_path / 'cache')!r})); "
              f"print(sorted(hcl.sensitive_variables(Path({str(tmp_path)!r}))), 'hcl2' in sys.modules)")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    runs = [subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True).stdout
            for _ in range(2)]
    assert runs == ["['token'] True\n", "['token'] False\n"]


def test_a_damaged_kept_parse_is_parsed_again_and_replaced(tmp_path, kept):
    (tmp_path / "main.tf").write_text(SOURCE)
    first = hcl.parse_file(tmp_path / "main.tf")
    (path,) = kept.glob("*.json")
    for damage in (b"{not json", b"[1, 2]"):
        path.write_bytes(damage)
        assert hcl.parse_file(tmp_path / "main.tf") == first
        assert path.read_bytes() not in (b"{not json", b"[1, 2]")


def test_a_cache_that_cannot_be_written_is_no_cache(tmp_path):
    (tmp_path / "cache").write_text("a file where the directory would be")
    (tmp_path / "main.tf").write_text(SOURCE)
    parsecache.keep_parses_in(tmp_path / "cache")
    try:
        assert hcl.sensitive_variables(tmp_path) == {"token"}
    finally:
        parsecache.keep_parses_in(None)


def test_a_parse_error_is_reported_and_not_kept(tmp_path, kept):
    (tmp_path / "main.tf").write_text('variable "x" {\n')
    with pytest.raises(hcl.HclError, match="main.tf: cannot parse Terraform source"):
        hcl.parse_file(tmp_path / "main.tf")
    assert not list(kept.glob("*.json")) if kept.exists() else True


def test_the_cli_keeps_parses_in_its_cache_directory(project, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(project.parent / "cache"))
    result = CliRunner().invoke(main, ["--config", str(project / "mlcicd.yaml"), "render", "app"])
    assert result.exit_code == 0, result.output
    try:
        assert list((project.parent / "cache" / "mlcicd" / "hcl").glob("*.json"))
    finally:
        parsecache.keep_parses_in(None)


def test_a_review_does_not_load_the_hcl_reader(tmp_path):
    # The CLI says where parses are kept as soon as it reads its environment; a review, which
    # reads no Terraform source, must not pay for the HCL reader's import to hear it.
    config = write_config(tmp_path)
    plan = tmp_path / "plan.json"
    plan.write_text('{"format_version": "1.2", "resource_changes": []}')
    script = ("import sys; from mlcicd.cli import main\n"
              "try:\n"
              f"    main(['--config', {str(config)!r}, 'review', {str(plan)!r}, '--no-checkov'])\n"
              "except SystemExit as exc:\n"
              "    assert exc.code == 0, exc.code\n"
              "print('mlcicd.hcl' in sys.modules, 'mlcicd.parsecache' in sys.modules, file=sys.stderr)")
    ran = subprocess.run([sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": str(ROOT)},
                         capture_output=True, text=True, check=True)
    assert ran.stderr.splitlines()[-1] == "False True"
