"""Terraform values on the wire (msgpack, as cty encodes them) and the stand-in's planning rule.

Objects are dicts, lists and sets are lists, null is None. An unknown value is msgpack
extension 0 (or 12, an unknown carrying refinements); it is kept as `Unknown` with its raw
bytes so that a refined unknown goes back to Terraform exactly as it came.
"""

from __future__ import annotations

from typing import Any

import msgpack


class Unknown:
    __slots__ = ("raw",)

    def __init__(self, raw: msgpack.ExtType) -> None:
        self.raw = raw

    def __repr__(self) -> str:
        return "<unknown>"


UNKNOWN = Unknown(msgpack.ExtType(0, b"\x00"))
_UNKNOWN_CODES = (0, 12)


def _ext_hook(code: int, data: bytes) -> Any:
    ext = msgpack.ExtType(code, data)
    return Unknown(ext) if code in _UNKNOWN_CODES else ext


def _default(value: Any) -> Any:
    if isinstance(value, Unknown):
        return value.raw
    raise TypeError(f"cannot encode {type(value).__name__} as a Terraform value")


def decode(data: bytes) -> Any:
    if not data:
        return None
    return msgpack.unpackb(data, ext_hook=_ext_hook, raw=False, strict_map_key=False)


def encode(value: Any) -> bytes:
    return msgpack.packb(value, default=_default, use_bin_type=True)


def plan_unknowns(block: dict, value: Any) -> Any:
    """The planned state from Terraform's proposed new state: every computed attribute the
    configuration leaves null becomes unknown ("known after apply"), in nested blocks too.

    Terraform has already copied prior values of computed attributes into the proposal, so an
    update keeps what the state knows; only values nobody knows yet become unknown."""
    if not isinstance(value, dict):
        return value
    out = dict(value)
    for name, attr in block.get("attributes", {}).items():
        if attr.get("computed") and out.get(name) is None:
            out[name] = UNKNOWN
    for name, nested in block.get("block_types", {}).items():
        current = out.get(name)
        if isinstance(current, list):
            out[name] = [plan_unknowns(nested["block"], item) for item in current]
        elif isinstance(current, dict) and nested["nesting_mode"] == "single":
            out[name] = plan_unknowns(nested["block"], current)
        elif isinstance(current, dict):  # nesting "map"
            out[name] = {k: plan_unknowns(nested["block"], v) for k, v in current.items()}
    return out


def placeholder(cty_type: Any) -> Any:
    """A known, harmless value of a type, for computed attributes of data sources that the
    stand-in knows nothing about (a data source may not return unknowns)."""
    if cty_type == "string":
        return ""
    if cty_type == "number":
        return 0
    if cty_type == "bool":
        return False
    if isinstance(cty_type, list) and cty_type[0] in ("list", "set"):
        return []
    if isinstance(cty_type, list) and cty_type[0] == "map":
        return {}
    return None
