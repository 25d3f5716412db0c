"""What a binary Terraform plan (`terraform plan -out`) says about itself, read without Terraform.

The plan file is a zip; its member `tfplan` is a protobuf message (tfplan.Plan, Terraform's
internal/plans/planproto). Only the backend is read: the bucket and key Terraform will write the
state to when it applies the plan, which `apply --plan` compares with the environment's own.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlcicd.errors import PlanRefused


@dataclass(frozen=True)
class PlanBackend:
    """The backend a binary plan will write its state to, read from the plan file itself."""

    type: str
    workspace: str
    config: Mapping[str, Any]


def read_backend(tfplan: bytes, where: Path) -> PlanBackend:
    """Decode the backend recorded in a binary plan (zip member `tfplan`, protobuf message
    tfplan.Plan field 13 `backend` {1 type, 2 config (DynamicValue: 1 msgpack), 3 workspace})."""
    import io
    import zipfile

    import msgpack

    try:
        with zipfile.ZipFile(io.BytesIO(tfplan)) as archive:
            message = archive.read("tfplan")
        backend = dict(_protobuf_fields(message)).get(13)
        if not isinstance(backend, bytes):
            raise ValueError("no backend recorded")
        fields = dict(_protobuf_fields(backend))
        packed = dict(_protobuf_fields(fields.get(2, b""))).get(1, b"")
        config = msgpack.unpackb(packed, raw=False) if packed else {}
        return PlanBackend(fields.get(1, b"").decode(), fields.get(3, b"").decode() or "default",
                           config if isinstance(config, dict) else {})
    except (zipfile.BadZipFile, KeyError, ValueError, msgpack.UnpackException, UnicodeDecodeError) as exc:
        raise PlanRefused(f"refusing the plan in {where}: tfplan is not a Terraform plan this mlcicd "
                          f"can read ({exc})", hint="plan again") from None


def _protobuf_fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) for each field of one protobuf message: varints as int,
    length-delimited fields as bytes; fixed-width fields are skipped."""
    i = 0

    def varint() -> int:
        nonlocal i
        shift = result = 0
        while True:
            if i >= len(data):
                raise ValueError("truncated protobuf")
            byte = data[i]
            i += 1
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
            shift += 7

    while i < len(data):
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            yield number, varint()
        elif wire == 2:
            size = varint()
            if i + size > len(data):
                raise ValueError("truncated protobuf")
            yield number, data[i:i + size]
            i += size
        elif wire in (1, 5):
            i += 8 if wire == 1 else 4
        else:
            raise ValueError(f"unexpected protobuf wire type {wire}")
