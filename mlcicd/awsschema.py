"""The real hashicorp/aws provider schema, indexed once from the cdktn-provider-aws wheel.

The provider cannot be downloaded here, but the `cdktn-provider-aws` wheel carries a jsii
assembly (`_jsii/provider-aws@VERSION.jsii.tgz`) generated from the provider's own schema. Its
JavaScript keeps, per resource, data source and nested struct, exactly what a schema needs:

- one comment per attribute, `// name - computed: B, optional: B, required: B`, copied from the
  schema's flags (the .jsii JSON only knows optional/required, not optional+computed);
- the attribute's getter, which gives its type (`getStringAttribute`, `Fn.tolist(...)` for sets),
  or a `…List`/`…OutputReference` class for nested blocks and object-typed attributes;
- for every configurable attribute `isBlock`, `type` (simple/list/set/map/struct) and
  `storageClassType`, which tell a block from an attribute and a list from a set.

`load_schema()` returns the result in the shape of `terraform providers schema -json` for one
provider. The index is built once per wheel version (~10 s) and cached outside the repository.

What the bindings do not carry is approximated: a required block list gets `min_items` 1 (the
real one may ask for more), a one-object block (`…OutputReference`) is a list with `max_items`
1, and nothing is marked `sensitive`.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlcicd.errors import MlcicdError

WHEEL = "cdktn-provider-aws"
# Bump when the index format or the parsing changes, so stale caches are rebuilt.
FORMAT = 2

_CHUNK = re.compile(r"\n(?:class|function) (\w+)")
# The patterns start with a literal so that scanning ~280 MB of bindings stays fast.
_ENTRY = re.compile(
    r"\n    // (\w+) - computed: (true|false), optional: (true|false), required: (true|false)\n"
    r"    (.*)\n    (.*)\n +(.*)(?=\n)")
_HCL = re.compile(r'isBlock: (true|false),\n +type: "(\w+)",\n +storageClassType: "(\w+)",')
_HCL_NAME = re.compile(r"(\w+): \{\n[^\n]*\n *$")
_NEW = re.compile(r'_\w+ = new (?:\w+\.)?(\w+)\(this, "\w+"(?:, (true|false))?\);')
_ITEM = re.compile(r"return new (?:\w+\.)?(\w+)\(this\.terraformResource, this\.terraformAttribute, ")
_TF_TYPE = re.compile(r'static tfResourceType = "(\w+)";')
_EXTENDS = re.compile(r"^class \w+ extends ([\w.]+) \{")
_GETTER = re.compile(r"return (cdktn\.Fn\.tolist\()?.*?this\.(\w+)\('")

_GETTER_TYPES: dict[str, Any] = {
    "getStringAttribute": "string",
    "getNumberAttribute": "number",
    "getBooleanAttribute": "bool",
    "getListAttribute": ["list", "string"],
    "getNumberListAttribute": ["list", "number"],
    "getStringMapAttribute": ["map", "string"],
    "getNumberMapAttribute": ["map", "number"],
    "getBooleanMapAttribute": ["map", "bool"],
    "interpolationForAttribute": "dynamic",
}
_MAP_CLASSES = {"StringMap": "string", "NumberMap": "number", "BooleanMap": "bool", "AnyMap": "dynamic"}
_PRIMITIVES = {"string": "string", "number": "number", "boolean": "bool", "any": "dynamic"}


class SchemaUnavailable(MlcicdError):
    """The provider schema cannot be read: the wheel is missing or not what we expect."""

    def __init__(self, problem: str) -> None:
        self.problem = problem
        super().__init__(f"the hashicorp/aws schema is unavailable: {problem}",
                         hint="pip install 'mlcicd[offline]' (it brings cdktn-provider-aws)")


@dataclass
class _Entry:
    name: str
    computed: bool
    optional: bool
    required: bool
    cls: str | None  # a List/OutputReference/Map class holding a nested struct, if any
    wraps_set: bool
    getter: str  # the getter's return line, for scalar and collection types


@dataclass
class _Class:
    name: str
    base: str = ""
    tf_type: str | None = None
    item: str | None = None  # for ComplexList/ComplexMap: the class of one element
    entries: list[_Entry] = field(default_factory=list)
    hcl: dict[str, tuple[bool, str, str]] = field(default_factory=dict)  # name -> (isBlock, type, storage)


# -- locating the assembly -----------------------------------------------------------------------

def wheel_version() -> str:
    try:
        return importlib.metadata.version(WHEEL)
    except importlib.metadata.PackageNotFoundError:
        raise SchemaUnavailable(f"the {WHEEL} wheel is not installed") from None


def assembly_path() -> Path:
    # find_spec does not import the package (importing it would start the jsii runtime).
    spec = importlib.util.find_spec("cdktn_provider_aws")
    if spec is None or not spec.submodule_search_locations:
        raise SchemaUnavailable(f"the {WHEEL} wheel is not installed")
    for location in spec.submodule_search_locations:
        found = sorted(Path(location, "_jsii").glob("provider-aws@*.jsii.tgz"))
        if found:
            return found[-1]
    raise SchemaUnavailable(f"no _jsii/provider-aws@*.jsii.tgz inside the {WHEEL} wheel")


def cache_file(cache_dir: Path) -> Path:
    return cache_dir / f"aws-schema-{wheel_version()}-f{FORMAT}.json"


def default_cache_dir() -> Path:
    """The cache outside a CLI run (tests, scripts); mlcicd's commands pass Runtime's."""
    from mlcicd.runtime import Runtime

    return Runtime.from_environ().cache_dir


def load_schema(cache_dir: Path | None = None) -> dict:
    """The hashicorp/aws schema as `terraform providers schema -json` shows one provider:
    {"provider": {"block": ...}, "resource_schemas": {...}, "data_source_schemas": {...}}.

    Built from the wheel on first use and cached in `cache_dir` (default ~/.cache/mlcicd)."""
    path = cache_file(cache_dir or default_cache_dir())
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        pass
    schema = build_schema(assembly_path())
    from mlcicd.fsutil import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(schema, separators=(",", ":"), sort_keys=True).encode())
    return schema


# -- building the index ----------------------------------------------------------------------

def build_schema(assembly: Path) -> dict:
    provider: dict | None = None
    resources: dict[str, dict] = {}
    data_sources: dict[str, dict] = {}
    for module in _modules(assembly):
        for cls in module.values():
            if cls.tf_type is None:
                continue
            block = _block(module, cls.name)
            if cls.base.endswith("TerraformProvider"):
                provider = {"block": block}
            elif cls.base.endswith("TerraformDataSource"):
                data_sources[cls.tf_type] = {"version": 0, "block": block}
            elif cls.base.endswith("TerraformResource"):
                resources[cls.tf_type] = {"version": 0, "block": block}
    if provider is None or "aws_s3_bucket" not in resources or "aws_caller_identity" not in data_sources:
        raise SchemaUnavailable(f"{assembly.name} does not look like the hashicorp/aws bindings")
    return {"provider": provider, "resource_schemas": resources, "data_source_schemas": data_sources}


def _modules(assembly: Path) -> Iterator[dict[str, _Class]]:
    """Each binding module (one resource or data source, possibly split over several files),
    as its classes by name."""
    sources: dict[str, list[str]] = {}
    try:
        with tarfile.open(assembly, "r:gz") as tar:
            for member in tar:
                parts = member.name.split("/")
                if len(parts) >= 4 and parts[:2] == ["package", "lib"] and parts[-1].endswith(".js"):
                    data = tar.extractfile(member)
                    if data is not None:
                        sources.setdefault(parts[2], []).append(data.read().decode("utf-8"))
    except (OSError, tarfile.TarError) as exc:
        raise SchemaUnavailable(f"cannot read {assembly}: {exc}") from None
    for texts in sources.values():
        classes: dict[str, _Class] = {}
        for text in texts:
            _parse(text, classes)
        yield classes


def _parse(text: str, classes: dict[str, _Class]) -> None:
    starts = list(_CHUNK.finditer(text))
    for i, start in enumerate(starts):
        end = starts[i + 1].start() if i + 1 < len(starts) else len(text)
        chunk = text[start.start() + 1:end]  # from `class`/`function`, without the newline
        name = start.group(1)
        if chunk.startswith("function "):
            # `fooBarToHclTerraform(struct)` describes the struct behind FooBarOutputReference.
            if name.endswith("ToHclTerraform"):
                owner = name[0].upper() + name[1:-len("ToHclTerraform")] + "OutputReference"
                classes.setdefault(owner, _Class(owner)).hcl.update(_hcl(chunk))
            continue
        cls = classes.setdefault(name, _Class(name))
        base = _EXTENDS.match(chunk)
        cls.base = base.group(1) if base else ""
        tf_type = _TF_TYPE.search(chunk)
        cls.tf_type = tf_type.group(1) if tf_type else None
        item = _ITEM.search(chunk)
        cls.item = item.group(1) if item and cls.base.startswith("cdktn.Complex") else None
        cls.hcl.update(_hcl(chunk))
        for m in _ENTRY.finditer(chunk):
            line1, line2, line3 = m.group(5), m.group(6), m.group(7)
            new = _NEW.match(line1)
            cls.entries.append(_Entry(
                name=m.group(1), computed=m.group(2) == "true", optional=m.group(3) == "true",
                required=m.group(4) == "true", cls=new.group(1) if new else None,
                wraps_set=bool(new and new.group(2) == "true"),
                getter=line3 if line1.startswith("_") else line2,
            ))


def _hcl(chunk: str) -> dict[str, tuple[bool, str, str]]:
    """`name: { value: ..., isBlock: B, type: "T", storageClassType: "S" }` entries by name."""
    found = {}
    for m in _HCL.finditer(chunk):
        # The name is two lines above `isBlock`, on the `name: {` line.
        start = chunk.rfind("\n", 0, chunk.rfind("\n", 0, chunk.rfind("\n", 0, m.start())))
        name = _HCL_NAME.search(chunk, start + 1, m.start())
        if name:
            found[name.group(1)] = (m.group(1) == "true", m.group(2), m.group(3))
    return found


# -- classes to schema blocks and cty types ----------------------------------------------------

def _item_class(module: dict[str, _Class], name: str) -> _Class:
    """The class of one element: a List/Map class's items, or an OutputReference itself."""
    cls = module.get(name)
    if cls is None:
        raise SchemaUnavailable(f"class {name} is referenced but not defined")
    return module[cls.item] if cls.item else cls


def _is_block(entry: _Entry, meta: tuple[bool, str, str] | None) -> bool:
    if meta is None or not meta[0]:
        return False
    # `struct` blocks are single objects: the `timeouts` block, or else an object-typed attribute.
    return meta[1] in ("list", "set") or (meta[1] == "struct" and entry.name == "timeouts")


def _block_class(entry: _Entry, meta: tuple[bool, str, str] | None) -> str:
    """The class behind a nested block. The provider's own blocks have no class of their
    own, only a struct named by the storage type (`AwsProviderAssumeRoleList`)."""
    if entry.cls:
        return entry.cls
    storage = meta[2] if meta else ""
    return storage.removesuffix("List") + "OutputReference"


def _entries(cls: _Class) -> list[_Entry]:
    """A class's attributes; a struct without a class (the provider's blocks) has only its
    HCL metadata, where every argument is optional."""
    if cls.entries:
        return cls.entries
    return [_Entry(name, computed=False, optional=True, required=False, cls=None, wraps_set=False, getter="")
            for name in cls.hcl]


def _block(module: dict[str, _Class], name: str, stack: tuple[str, ...] = ()) -> dict:
    cls = _item_class(module, name)
    stack = (*stack, cls.name)
    attributes: dict[str, dict] = {}
    block_types: dict[str, dict] = {}
    for entry in _entries(cls):
        meta = cls.hcl.get(entry.name)
        if meta is not None and _is_block(entry, meta):
            child = _block_class(entry, meta)
            # The bindings merge same-named structs of different depths, which makes a few
            # deeply nested schemas (wafv2 rule statements) look recursive; allow one level
            # of such recursion and drop the block below it.
            if stack.count(_item_class(module, child).name) >= 2:
                continue
            kind = meta[1]
            inner = _block(module, child, stack)
            if kind == "set" and any(a["type"] == "dynamic" for a in inner.get("attributes", {}).values()):
                # Where the bindings gave up on a too-deep structure (wafv2 rule statements)
                # the attribute is dynamic, which Terraform forbids inside a set block.
                kind = "list"
            nested: dict[str, Any] = {
                "nesting_mode": "single" if kind == "struct" else kind,
                "block": inner,
            }
            if entry.required and kind != "struct":
                nested["min_items"] = 1
            if kind != "struct" and (entry.cls or "").endswith("OutputReference"):
                nested["max_items"] = 1
            block_types[entry.name] = nested
            continue
        attr: dict[str, Any] = {"type": _type(module, entry, meta)}
        for flag in ("required", "optional", "computed"):
            if getattr(entry, flag):
                attr[flag] = True
        attributes[entry.name] = attr
    block: dict[str, Any] = {}
    if attributes:
        block["attributes"] = attributes
    if block_types:
        block["block_types"] = block_types
    return block


def _object(module: dict[str, _Class], name: str) -> list:
    cls = _item_class(module, name)
    return ["object", {e.name: _type(module, e, cls.hcl.get(e.name)) for e in cls.entries}]


def _type(module: dict[str, _Class], entry: _Entry, meta: tuple[bool, str, str] | None) -> Any:
    if entry.cls in _MAP_CLASSES:
        return ["map", _MAP_CLASSES[entry.cls]]
    if entry.cls is not None:
        element = _object(module, entry.cls)
        cls = module[entry.cls]
        if cls.base == "cdktn.ComplexMap":
            return ["map", element]
        if cls.item:
            return ["set" if entry.wraps_set else "list", element]
        if meta is not None and meta[1] in ("list", "set"):
            return [meta[1], element]
        return element
    if meta is not None:
        return _storage_type(meta[1], meta[2])
    getter = _GETTER.search(entry.getter)
    if getter is None or getter.group(2) not in _GETTER_TYPES:
        return "dynamic"
    found = _GETTER_TYPES[getter.group(2)]
    if getter.group(1) and isinstance(found, list):
        return ["set", found[1]]
    return found


def _storage_type(kind: str, storage: str) -> Any:
    """cdktn's (type, storageClassType), e.g. ("set", "stringListList"), as a cty type."""
    suffixes: list[str] = []
    while storage.endswith(("List", "Map")):
        suffix = "List" if storage.endswith("List") else "Map"
        suffixes.append(suffix)
        storage = storage[: -len(suffix)]
    result: Any = _PRIMITIVES.get(storage, "dynamic")
    for depth, suffix in enumerate(reversed(suffixes)):
        outermost = depth == len(suffixes) - 1
        collection = kind if outermost and kind in ("list", "set", "map") else suffix.lower()
        result = [collection, result]
    return result
