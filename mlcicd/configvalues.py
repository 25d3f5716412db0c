"""Checking the values of mlcicd.yaml: the helpers config.py builds its typed objects with.

Each raises ConfigError naming the file and the key. Values shown in messages are bounded
(reprlib) and escaped, whatever their size or characters.
"""

from __future__ import annotations

import re
import reprlib
from types import MappingProxyType
from typing import Any

from mlcicd import regions
from mlcicd.errors import ConfigError
from mlcicd.yamlread import Ambiguous, Int

# Patterns are text, compiled (and cached) by re when first matched, as in config.
_ACCOUNT_RE = r"[0-9]{12}"
_REGION_RE = r"[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]{1,2}"
_MAX_VALUE_LEN = 4096
_MAX_DEPTH = 8
# Values in all `vars` together: YAML aliases let a few lines expand to millions of values.
_MAX_VALUES = 10_000


# Keys whose plain (unquoted) digits are taken as written: `012345670123` is an id, not octal.
_DIGITS_AS_WRITTEN = r"accounts\.[a-z]+|environments\.[^.]+\.account"


def refuse_ambiguous(v: Validator, raw: Any, key: str = "") -> None:
    """Refuse every plain value that YAML 1.1 and 1.2 read differently, naming its key."""
    stack = [(key, raw)]
    while stack:
        key, node = stack.pop()
        if isinstance(node, Ambiguous):
            if node.text.isdigit() and re.fullmatch(_DIGITS_AS_WRITTEN, key):
                continue
            raise ConfigError(v.path, key or None,
                              f"{node.text} (line {node.line}) is read as {node.readings()}: quote it "
                              f"(\"{node.text}\") for the text, or write the value unambiguously")
        if isinstance(node, dict):
            for k, value in node.items():
                name = f"{key}.{keyname(k)}" if key else keyname(k)
                if isinstance(k, Ambiguous):
                    raise ConfigError(v.path, name, f"key {k.text} (line {k.line}) is read as {k.readings()}: "
                                                    "quote it")
                stack.append((name, value))
        elif isinstance(node, list):
            stack.extend((f"{key}[{i}]", item) for i, item in enumerate(node))


def region(v: Validator, raw: Any, allow_raw: Any) -> tuple[str, str]:
    """The region, checked against the regions botocore knows, and its partition."""
    region = v.match(raw, "region", _REGION_RE, "is not an AWS region name (e.g. us-east-1)")
    allowed: list[str] = []
    if allow_raw is not None:
        if not isinstance(allow_raw, list):
            raise ConfigError(v.path, "allow_regions", "must be a list of region names")
        allowed = [v.match(r, f"allow_regions[{i}]", _REGION_RE, "is not an AWS region name")
                   for i, r in enumerate(allow_raw)]
    partition = regions.partition_of(region)
    if partition not in regions.SUPPORTED_PARTITIONS:
        where = f"is in the {partition} partition" if partition else "is in no AWS partition"
        raise ConfigError(v.path, "region", f"{short(region)} {where}; mlcicd supports "
                                            f"{', '.join(regions.SUPPORTED_PARTITIONS)}")
    if regions.available() and not regions.known(region) and region not in allowed:
        close = regions.suggestions(region)
        raise ConfigError(
            v.path, "region", f"{short(region)} is not a region AWS's endpoint data knows"
            + (f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""),
            hint=f"if {region} is newer than this installation (botocore), allow it with "
                 f"`allow_regions: [{region}]`",
        )
    return region, partition


def account_id(v: Validator, value: Any, key: str) -> str:
    # An unquoted id is read as a number: take the digits as written (Int and Ambiguous keep
    # them), never the number's value, which loses leading zeros.
    if isinstance(value, Int | Ambiguous):
        value = value.text
    if not isinstance(value, str) or not re.fullmatch(_ACCOUNT_RE, value):
        raise ConfigError(v.path, key, f"{short(value)} is not a 12-digit account id")
    return value


def keyname(key: Any) -> str:
    """A key as shown in a message: plain when it is a simple name, quoted otherwise."""
    if isinstance(key, str) and re.fullmatch(r"[A-Za-z0-9_-]{1,40}", key):
        return key
    return short(key, 40)


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlist, _REPR.maxdict = 2, 80, 80, 4, 4


def short(value: Any, limit: int = 60) -> str:
    """A value as shown in a message, bounded whatever its size (reprlib, not repr)."""
    from mlcicd.printable import escape

    text = escape(_REPR.repr(value), one_line=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Validator:
    """Small helpers that raise ConfigError naming file and key."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.values_seen = 0

    def mapping(self, value: Any, key: str | None) -> dict:
        if not isinstance(value, dict):
            what = "the file" if key is None else "this key"
            raise ConfigError(self.path, key, f"{what} must be a mapping, got {type(value).__name__}")
        for k in value:
            if not isinstance(k, str):
                prefix = f"{key}." if key else ""
                raise ConfigError(self.path, f"{prefix}{short(k, 40)}", "keys must be strings")
        return value

    def only(self, mapping: dict, key: str | None, allowed: set[str]) -> None:
        for k in mapping:
            if k not in allowed:
                prefix = f"{key}." if key else ""
                raise ConfigError(self.path, f"{prefix}{keyname(k)}",
                                  f"unknown key (expected one of: {', '.join(sorted(allowed))})")

    def require(self, mapping: dict, key: str | None, name: str) -> Any:
        full = f"{key}.{name}" if key else name
        if name not in mapping or mapping[name] is None:
            raise ConfigError(self.path, full, "missing required key")
        return mapping[name]

    def string(self, value: Any, key: str) -> str:
        if isinstance(value, bool | int | float):
            raise ConfigError(self.path, key, f"{short(value)} is read as a {type(value).__name__.lower()}, "
                                              f"not text: quote it")
        if not isinstance(value, str):
            raise ConfigError(self.path, key, f"{short(value)} must be a string")
        if len(value) > _MAX_VALUE_LEN:
            raise ConfigError(self.path, key, f"longer than {_MAX_VALUE_LEN} characters")
        return value

    def match(self, value: Any, key: str, pattern: str, problem: str) -> str:
        text = self.string(value, key)
        if not re.fullmatch(pattern, text):
            raise ConfigError(self.path, key, f"{short(text)} {problem}")
        return text

    def value(self, value: Any, key: str, depth: int = 0) -> Any:
        """A tfvars value: JSON-representable, bounded in size and depth."""
        self.values_seen += 1
        if self.values_seen > _MAX_VALUES:
            raise ConfigError(self.path, key, f"too many values: more than {_MAX_VALUES} in all vars together")
        if depth > _MAX_DEPTH:
            raise ConfigError(self.path, key, f"nested deeper than {_MAX_DEPTH} levels")
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, int):
            if abs(value) > 2**53:
                raise ConfigError(self.path, key, "number too large")
            return int(value)
        if isinstance(value, float):
            if value != value or value in (float("inf"), float("-inf")):
                raise ConfigError(self.path, key, "must be a finite number")
            return value
        if isinstance(value, str):
            return self.string(value, key)
        if isinstance(value, list):
            return tuple(self.value(x, f"{key}[{i}]", depth + 1) for i, x in enumerate(value))
        if isinstance(value, dict):
            out = {}
            for k, x in value.items():
                if not isinstance(k, str):
                    raise ConfigError(self.path, f"{key}.{short(k, 40)}", "keys must be strings")
                out[k] = self.value(x, f"{key}.{k}", depth + 1)
            return MappingProxyType(out)
        raise ConfigError(self.path, key, f"unsupported value of type {type(value).__name__}")
