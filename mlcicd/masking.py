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
from collections.abc import Callable, Iterable, Mapping
from functools import partial
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
_FEW_SECRETS = 16  # up to this many, a value is searched for each before the regex runs


class Masker:
    """Replaces known secret values and configured patterns with ***."""

    def __init__(self, values: Iterable[str] = (), patterns: Iterable[str] = ()) -> None:
        forms = {form for v in values if v for form in _printed_forms(v)}
        secrets = sorted({f for f in forms if len(f) >= _MIN_SECRET_LEN}, key=len, reverse=True)
        patterns = list(patterns)
        parts = [re.escape(s) for s in secrets] + [f"(?:{p})" for p in patterns]
        self._use(re.compile("|".join(parts)) if parts else None, tuple(secrets), bool(patterns))

    def _use(self, regex: re.Pattern[str] | None, secrets: tuple[str, ...], patterns: bool) -> None:
        self._regex, self._secrets, self._patterns = regex, secrets, patterns
        # `sub` masks one string; a big review masks tens of thousands. With no pattern and a few
        # secrets, looking for each secret first (str's own search, which skips ahead by the
        # secret's length) is several times cheaper than the regex on a long value where no
        # secret is (most); otherwise the regex's own sub, with no Python frame in between.
        if regex is None:
            self.sub: Callable[[str], str] = str  # returns a str as it is
        elif patterns or len(secrets) > _FEW_SECRETS:
            self.sub = partial(regex.sub, MASK)
        else:
            self.sub = partial(_sub_if_present, partial(regex.sub, MASK), secrets)

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
        merged._use(re.compile(f"{new._regex.pattern}|{self._regex.pattern}"), new._secrets + self._secrets,
                    self._patterns)
        return merged

    def __call__(self, text: str) -> str:
        return self.sub(text) if text else text


def _sub_if_present(sub: Callable[[str], str], secrets: tuple[str, ...], text: str) -> str:
    for secret in secrets:
        if secret in text:
            return sub(text)
    return text


def __getattr__(name: str) -> Any:
    """hcl.sensitive_variables, re-exported for the callers that mask, imported when first used:
    a review masks but reads no HCL, and the HCL reader takes longer to import than this module."""
    if name == "sensitive_variables":
        from mlcicd.hcl import sensitive_variables

        return sensitive_variables
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    # Exact dicts and lists first: plan data is json.load's, and an ABC's isinstance is a Python call.
    elif type(marks) is dict or isinstance(marks, Mapping):
        if type(value) is dict or isinstance(value, Mapping):
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
    elif isinstance(value, dict | Mapping):
        for item in value.values():
            _all_strings(item, found)
    elif isinstance(value, list):
        for item in value:
            _all_strings(item, found)
