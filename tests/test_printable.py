"""Outside text is printed with its control and bidi characters escaped, never raw."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from mlcicd.cli import main
from mlcicd.printable import escape

HOSTILE = "\x1b[2J\u202eevil\x07\x9b"


@pytest.mark.parametrize("char", ["\x00", "\x1b", "\x7f", "\x85", "\x9b", "\u061c", "\u200e", "\u202e",
                                  "\u2066", "\u2069", "\ufeff", "\u200b", "\ud800", "\udfff"])
def test_every_control_and_bidi_character_is_shown_as_an_escape(char):
    shown = escape(f"a{char}b")
    assert char not in shown
    assert shown == f"a\\{'x' if ord(char) < 0x100 else 'u'}{ord(char):0{2 if ord(char) < 0x100 else 4}x}b"


def test_ordinary_text_is_kept_and_newlines_only_in_one_line_mode():
    text = "naïve café 日本 — ok\tcol\nnext"
    assert escape(text) == text
    assert escape(text, one_line=True) == "naïve café 日本 — ok\\x09col\\x0anext"


@pytest.mark.usefixtures("state_bucket")
def test_force_unlock_prints_neither_escape_codes_nor_the_raw_lock_id(project):
    result = CliRunner().invoke(main, ["--config", str(project / "mlcicd.yaml"),
                                       "force-unlock", "app", HOSTILE, "--yes"])
    assert result.exit_code == 1
    text = result.output + result.stderr
    assert "\x1b" not in text and "\u202e" not in text and "\x07" not in text
    assert "Failed to unlock state" in text  # Terraform's own (coloured) message, shown plainly


def test_an_unknown_environment_name_is_echoed_escaped(project):
    result = CliRunner().invoke(main, ["--config", str(project / "mlcicd.yaml"), "plan", HOSTILE])
    assert result.exit_code == 2
    text = result.output + result.stderr
    assert "\x1b" not in text and "\u202e" not in text
    assert "\\x1b[2J\\u202eevil" in text
