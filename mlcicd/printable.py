"""Text from outside (plan values, names, AWS and Terraform messages) made safe to print.

A terminal obeys escape sequences, and a review shown to an approver must not be reordered by
bidirectional-override characters. Every control character (C0, DEL, C1) and every bidi or
zero-width formatting character, and a lone surrogate, is shown as a visible escape: `\\x1b`,
`\\u202e`, `\\ud800`.
"""

from __future__ import annotations

import re
from functools import cache

# C0 and C1 controls, DEL, the Unicode formatting characters that change the order or
# visibility of text (bidi embeddings/overrides/isolates, marks, zero-width, BOM), and lone
# surrogates: JSON may spell one (`"\\ud800"`), and no UTF-8 output can hold it.
_UNSAFE_CLASS = "\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\ud800-\udfff"


@cache
def _unsafe(one_line: bool) -> re.Pattern[str]:
    # Compiled on first use, not at import: a class this wide takes about a millisecond to
    # compile, and most runs (a review of printable ASCII) never escape anything.
    return re.compile("[" + _UNSAFE_CLASS + ("\n\t" if one_line else "") + "]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match[0])
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape(text: str, *, one_line: bool = False) -> str:
    """`text` with unsafe characters shown as escapes; newlines and tabs kept unless `one_line`."""
    return _unsafe(one_line).sub(_escaped, text)
