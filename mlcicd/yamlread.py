"""Reading mlcicd.yaml so that no value becomes something other than what was written.

PyYAML follows YAML 1.1, where `012345670123` is an octal number, `1:0:0` is 3600 (base 60) and
`on` is true; YAML 1.2 tools (and most editors' highlighters) read the same text as a decimal
number, a string and a string. A plain scalar is taken here only when both versions read it
the same; otherwise it becomes an `Ambiguous` value that the config refuses ("quote it"),
except where only digits make sense (account ids), which take the digits as written. Dates
stay the text written. Duplicate keys are an error naming both lines. Anchors and aliases are
refused: a few lines of aliases expand to millions of values. Tags other than the core ones
(`!!binary`, `!!set`, `!foo`) are refused by having no constructor.
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, ScalarNode, SequenceNode
from yaml.resolver import BaseResolver, Resolver

AMBIGUOUS_TAG = "tag:mlcicd,2026:ambiguous"
_STR, _INT, _FLOAT, _BOOL, _NULL = (f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null"))

# YAML 1.2 core schema forms, and the subset of YAML 1.1 forms that mean the same in both.
_INT_12 = re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+")
_FLOAT_12 = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)")
_INT_BOTH = re.compile(r"[-+]?(0|[1-9][0-9]*)|0x[0-9a-fA-F]+")
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_YAML11 = Resolver()


class YamlProblem(Exception):
    """The document is valid YAML but uses something mlcicd refuses. The message names the
    line (1-based), also kept in `line`."""

    def __init__(self, problem: str, line: int | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.line = line


@dataclass(frozen=True)
class Ambiguous:
    """A plain scalar that YAML 1.1 and YAML 1.2 read differently."""

    text: str
    line: int

    def __repr__(self) -> str:
        return self.text

    def readings(self) -> str:
        """Both readings, for a message: "3600 (YAML 1.1) or '1:0:0' (YAML 1.2)"."""
        try:
            old = yaml.load(self.text, Loader=yaml.SafeLoader)  # noqa: S506 - the safe loader
        except yaml.YAMLError:
            old = self.text
        return f"{old!r} by YAML 1.1 readers, {_reading_12(self.text)!r} by YAML 1.2 readers"


class Int(int):
    """An integer that remembers its digits as written (an account id keeps its leading zero)."""

    text: str

    def __new__(cls, text: str) -> Int:
        number = int(text, 16) if text.startswith("0x") else int(text)
        self = super().__new__(cls, number)
        self.text = text
        return self


def _reading_12(text: str) -> Any:
    if _INT_12.fullmatch(text):
        return int(text[2:], 8) if text.startswith("0o") else int(text, 0) if text.startswith("0x") else int(text)
    if _FLOAT_12.fullmatch(text):
        return float(text.lower().replace(".", "") if text.lower().endswith((".inf", ".nan")) else text)
    return text


def plain_tag(value: str) -> str:
    """The tag of a plain scalar: the core type both YAML versions agree on, else AMBIGUOUS_TAG."""
    old = _YAML11.resolve(ScalarNode, value, (True, False))
    if old == _NULL:
        return _NULL  # ~, null, Null, NULL and the empty scalar in both versions
    if old == _BOOL:
        return _BOOL if value in _BOOLS else AMBIGUOUS_TAG  # yes/no/on/off are text in YAML 1.2
    if old == _INT:
        return _INT if _INT_BOTH.fullmatch(value) else AMBIGUOUS_TAG  # octal, base 60, 0b, 1_000
    if old == _FLOAT:
        return _FLOAT if _FLOAT_12.fullmatch(value) else AMBIGUOUS_TAG  # 1_0.5, 1:30.0
    # Strings, dates (kept as the text written), `<<` and `=` (plain keys here).
    return AMBIGUOUS_TAG if _INT_12.fullmatch(value) or _FLOAT_12.fullmatch(value) else _STR


class _Resolver(BaseResolver):
    def resolve(self, kind, value, implicit):
        if kind is ScalarNode and implicit[0]:
            return plain_tag(value)
        return super().resolve(kind, value, implicit)


class _Constructor(SafeConstructor):
    yaml_constructors: dict = {}

    def construct_mapping(self, node, deep=False):
        if not isinstance(node, MappingNode):
            raise ConstructorError(None, None, f"expected a mapping, found {node.id}", node.start_mark)
        mapping: dict[Any, Any] = {}
        lines: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                raise YamlProblem(f"a mapping key must be a single value (line {key_node.start_mark.line + 1})",
                                  key_node.start_mark.line + 1)
            line = key_node.start_mark.line + 1
            if key in mapping:
                raise YamlProblem(f"duplicate key {key!r} at line {line} (first at line {lines[key]})", line)
            lines[key] = line
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping

    def construct_strict_int(self, node):
        text = self.construct_scalar(node)
        if not _INT_BOTH.fullmatch(text):
            line = node.start_mark.line + 1
            raise YamlProblem(f"{text!r} (line {line}) is not a plain decimal integer: quote it", line)
        return Int(text)

    def construct_strict_bool(self, node):
        text = self.construct_scalar(node)
        if text not in _BOOLS:
            line = node.start_mark.line + 1
            raise YamlProblem(f"{text!r} (line {line}) is not true or false", line)
        return _BOOLS[text]

    def construct_strict_float(self, node):
        text = self.construct_scalar(node)
        if not _FLOAT_12.fullmatch(text):
            line = node.start_mark.line + 1
            raise YamlProblem(f"{text!r} (line {line}) is not a plain number: quote it", line)
        return _reading_12(text) * 1.0

    def construct_strict_null(self, node):
        text = self.construct_scalar(node)
        if text not in _NULLS:
            line = node.start_mark.line + 1
            raise YamlProblem(f"{text!r} (line {line}) is not null: quote it", line)

    def construct_ambiguous(self, node):
        return Ambiguous(node.value, node.start_mark.line + 1)


for _tag, _method in (
    (_NULL, _Constructor.construct_strict_null),
    (_BOOL, _Constructor.construct_strict_bool),
    (_INT, _Constructor.construct_strict_int),
    (_FLOAT, _Constructor.construct_strict_float),
    (_STR, SafeConstructor.construct_yaml_str),
    ("tag:yaml.org,2002:seq", SafeConstructor.construct_yaml_seq),
    ("tag:yaml.org,2002:map", SafeConstructor.construct_yaml_map),
    (AMBIGUOUS_TAG, _Constructor.construct_ambiguous),
    (None, SafeConstructor.construct_undefined),
):
    _Constructor.add_constructor(_tag, _method)

# libyaml's parser when present: several times faster on large configs. Resolving and
# constructing stay in Python either way, so both read the same values.
if getattr(yaml, "__with_libyaml__", False):
    from yaml.cyaml import CParser

    class _Loader(CParser, _Constructor, _Resolver):
        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            _Constructor.__init__(self)
            _Resolver.__init__(self)
else:  # pragma: no cover - only without libyaml
    class _Loader(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser,  # type: ignore[no-redef]
                  yaml.composer.Composer, _Constructor, _Resolver):
        def __init__(self, stream: str) -> None:
            yaml.reader.Reader.__init__(self, stream)
            yaml.scanner.Scanner.__init__(self)
            yaml.parser.Parser.__init__(self)
            yaml.composer.Composer.__init__(self)
            _Constructor.__init__(self)
            _Resolver.__init__(self)


def _refuse_aliases(root: Any) -> None:
    """A node reached twice is an alias (the composer shares the anchored node)."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            line = node.start_mark.line + 1
            raise YamlProblem(f"anchors and aliases (&name, *name) are not supported: the value anchored "
                              f"at line {line} is used again; write it out where it is needed", line)
        seen.add(id(node))
        if isinstance(node, SequenceNode):
            stack.extend(node.value)
        elif isinstance(node, MappingNode):
            for key, value in node.value:
                stack.extend((key, value))


def load(text: str) -> Any:
    """The single document in `text`. Raises yaml.YAMLError or YamlProblem."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _refuse_aliases(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()
