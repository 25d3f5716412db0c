"""Reading Terraform source: the one place mlcicd parses .tf and .tf.json files.

python-hcl2 (the parser checkov uses) reads ordinary Terraform, operators and conditionals
included, without loading Terraform's library into mlcicd's process. It wraps every attribute
value in a one-element list and writes expressions as "${...}"; `attr` unwraps the former, and
`expression` writes a value back as the HCL a module author would read (for README tables).
It parses; it does not evaluate or type-check: `mlcicd validate` runs Terraform for that.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlcicd.errors import MlcicdError


class HclError(MlcicdError):
    """A .tf or .tf.json file that cannot be parsed."""

    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(f"{path}: cannot parse Terraform source ({detail.strip().splitlines()[0]})")
        self.path = path


@dataclass(frozen=True)
class Block:
    """One labelled top-level block: `variable "x" {...}`, `module "m" {...}`, `resource "t" "n" {...}`."""

    kind: str
    labels: tuple[str, ...]
    body: dict[str, Any]
    path: Path

    def attr(self, name: str, default: Any = None) -> Any:
        return attr(self.body, name, default)


def attr(body: dict[str, Any], name: str, default: Any = None) -> Any:
    value = body.get(name, default)
    if isinstance(value, list) and len(value) == 1 and name not in _LIST_BLOCKS:
        return value[0]
    return value


_LIST_BLOCKS = frozenset({"validation", "statement", "dynamic", "lifecycle"})


def source_files(directory: Path) -> list[Path]:
    """The Terraform files of one module directory, by name."""
    return sorted(p for p in directory.iterdir()
                  if p.is_file() and (p.suffix == ".tf" or p.name.endswith(".tf.json")))


def parse_file(path: Path) -> dict[str, Any]:
    from mlcicd import parsecache

    try:
        data = path.read_bytes()
        if path.name.endswith(".tf.json"):
            return _json_as_hcl(json.loads(data))
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise HclError(path, str(exc)) from None
    key, parsed = parsecache.lookup(data)
    if parsed is not None:
        return parsed
    import hcl2

    try:
        parsed = hcl2.loads(text)
    except Exception as exc:  # lark's parse errors share no base class with the stdlib's
        raise HclError(path, str(exc)) from None
    if key is not None:
        parsecache.keep(key, parsed)
    return parsed


def blocks(directory: Path, kind: str) -> Iterator[Block]:
    """Every top-level `kind` block of the module in `directory`, file by file."""
    for path in source_files(directory):
        for entry in parse_file(path).get(kind) or ():
            yield from _labelled(kind, entry, (), path)


def _labelled(kind: str, entry: dict[str, Any], labels: tuple[str, ...], path: Path) -> Iterator[Block]:
    depth = {"resource": 2, "data": 2}.get(kind, 1)
    if len(labels) == depth:
        yield Block(kind, labels, entry, path)
        return
    for label, inner in entry.items():
        if isinstance(inner, dict) and not label.startswith("__"):
            yield from _labelled(kind, inner, (*labels, label), path)


def _json_as_hcl(data: dict[str, Any]) -> dict[str, Any]:
    """A .tf.json document in the shape hcl2 gives .tf files (blocks as lists of mappings)."""
    out: dict[str, Any] = {}
    for kind, value in data.items():
        items = value if isinstance(value, list) else [value]
        out[kind] = [_wrap(item) for item in items]
    return out


def _wrap(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: (_wrap(v) if isinstance(v, dict) else [v]) for k, v in value.items()}
    return value


def sensitive_variables(directory: Path) -> frozenset[str]:
    """Names of the variables the module in `directory` declares `sensitive = true`."""
    return frozenset(b.labels[0] for b in blocks(directory, "variable") if b.attr("sensitive") is True)


def module_sources(directory: Path) -> dict[str, str]:
    """Each `module` call of the module in `directory`: name -> source as written."""
    return {b.labels[0]: str(b.attr("source", "")) for b in blocks(directory, "module")}


def local_module_dirs(directory: Path) -> list[Path]:
    """The directories of the modules `directory` calls through local paths (./ or ../)."""
    found = []
    for source in module_sources(directory).values():
        if source.startswith(("./", "../")):
            found.append((directory / source).resolve())
    return sorted(set(found))


# -- a module's interface, for README tables and static checks ----------------------------------


@dataclass(frozen=True)
class Variable:
    name: str
    type: str
    description: str
    default: str | None  # HCL text of the default; None when the variable is required
    sensitive: bool
    validations: tuple[dict[str, Any], ...]

    @property
    def required(self) -> bool:
        return self.default is None


@dataclass(frozen=True)
class Output:
    name: str
    description: str
    sensitive: bool


@dataclass(frozen=True)
class Module:
    """The top-level blocks of one module directory."""

    path: Path
    variables: tuple[Variable, ...]
    outputs: tuple[Output, ...]
    module_calls: dict[str, Block]
    resources: tuple[Block, ...]  # managed resources (kind "resource") and data sources (kind "data")
    locals: dict[str, Any]


def load_module(directory: Path) -> Module:
    """Variables, outputs, module calls, resources and locals of the module in `directory`."""
    variables = tuple(sorted(
        (Variable(
            name=b.labels[0],
            type=expression(b.attr("type")) if "type" in b.body else "any",
            description=str(b.attr("description") or ""),
            default=expression(b.attr("default")) if "default" in b.body else None,
            sensitive=b.attr("sensitive") is True,
            validations=tuple(b.attr("validation") or ()),
        ) for b in blocks(directory, "variable")), key=lambda v: v.name))
    outputs = tuple(sorted(
        (Output(b.labels[0], str(b.attr("description") or ""), b.attr("sensitive") is True)
         for b in blocks(directory, "output")), key=lambda o: o.name))
    resources = sorted([*blocks(directory, "resource"), *blocks(directory, "data")],
                       key=lambda b: (b.kind, b.labels))
    found_locals: dict[str, Any] = {}
    for path in source_files(directory):
        for entry in parse_file(path).get("locals") or ():
            found_locals.update({k: attr(entry, k) for k in entry if not k.startswith("__")})
    return Module(directory, variables, outputs, {b.labels[0]: b for b in blocks(directory, "module")},
                  tuple(resources), found_locals)


def body_attributes(body: dict[str, Any]) -> dict[str, Any]:
    """The arguments of a block body (each unwrapped), leaving out nested blocks and markers.
    python-hcl2 wraps an argument's value in a one-element list and gives a nested block as a
    list of bodies whose own arguments are wrapped again; that tells them apart."""
    return {k: v[0] for k, v in body.items()
            if not k.startswith("__") and k != "dynamic" and not is_block_list(v)}


def is_block_list(value: Any) -> bool:
    """Whether a body entry is nested blocks (bodies whose arguments are wrapped) rather than
    an argument whose value is an object."""
    return (isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)
            and all(isinstance(x, list) for v in value for k, x in v.items() if not k.startswith("__"))
            and any(not k.startswith("__") for v in value for k in v))


def expression(value: Any) -> str:
    """A value as python-hcl2 gives it, written back as HCL text."""
    if isinstance(value, str):
        if value.startswith("${") and value.endswith("}"):
            return _spaced(_python_literals(value[2:-1]))
        return json.dumps(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(expression(v) for v in value) + "]"
    if isinstance(value, dict):
        items = [f"{k} = {expression(v)}" for k, v in value.items() if not str(k).startswith("__")]
        return "{" + ", ".join(items) + "}"
    return str(value)


def _python_literals(text: str) -> str:
    """python-hcl2 writes object literals inside expressions as Python dict reprs
    (`object({'a': '${string}'})`); write them as HCL objects again."""
    start = text.find("{'")
    while start >= 0:
        for end in (i for i, c in enumerate(text) if c == "}" and i > start):
            try:
                value = ast.literal_eval(text[start:end + 1])
            except (ValueError, SyntaxError):
                continue
            text = text[:start] + expression(value) + text[end + 1:]
            break
        start = text.find("{'", start + 1)
    return text


def _spaced(text: str) -> str:
    """python-hcl2 drops the space after a comma in function arguments; put it back, outside
    string literals, as `terraform fmt` writes it."""
    out, quoted = [], False
    for i, c in enumerate(text):
        out.append(c)
        if c == '"' and (i == 0 or text[i - 1] != "\\"):
            quoted = not quoted
        elif c == "," and not quoted and i + 1 < len(text) and text[i + 1] not in " \n":
            out.append(" ")
    return "".join(out)
