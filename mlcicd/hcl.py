"""Reading Terraform source: the one place mlcicd parses .tf and .tf.json files.

python-hcl2 (the parser checkov uses) reads ordinary Terraform, operators and conditionals
included, without loading Terraform's library into mlcicd's process. It wraps every attribute
value in a one-element list and writes expressions as "${...}"; `attr` unwraps the former.
"""

from __future__ import annotations

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
    import hcl2

    try:
        text = path.read_text(encoding="utf-8")
        if path.name.endswith(".tf.json"):
            return _json_as_hcl(json.loads(text))
        return hcl2.loads(text)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise HclError(path, str(exc)) from None
    except Exception as exc:  # lark's parse errors share no base class with the stdlib's
        raise HclError(path, str(exc)) from None


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
