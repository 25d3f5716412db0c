"""Parses of Terraform source kept between runs, in the cache directory.

Importing the HCL parser costs about 0.15 s (lark builds its tables), and every plan, apply and
render reads the root module's variables. So `hcl` keeps each file's parse here, keyed by the
file's bytes and the parser installed: a parse found here is the parse of exactly those bytes by
exactly that parser. Apart from `hcl`, so that the CLI can say where (`keep_parses_in`) without
loading the HCL reader into commands that read no Terraform source.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

# Where parses are kept (see keep_parses_in); None keeps none.
_kept_in: Path | None = None
_FORMAT = b"mlcicd-hcl-parse-1"  # changes when what is kept changes


def keep_parses_in(directory: Path | None) -> None:
    """Keep parses in `directory`/hcl (the CLI gives its cache directory)."""
    global _kept_in
    _kept_in = directory


def lookup(data: bytes) -> tuple[Path | None, dict[str, Any] | None]:
    """The file a parse of `data` is kept in (None: parses are not kept), and the parse if it is there."""
    if _kept_in is None:
        return None, None
    import hashlib
    import importlib.util

    spec = importlib.util.find_spec("hcl2")
    if spec is None or not spec.origin:
        return None, None
    try:
        parser = os.stat(spec.origin)
    except OSError:
        return None, None
    digest = hashlib.sha256(b"\0".join([_FORMAT, spec.origin.encode(), str(parser.st_mtime_ns).encode(),
                                        str(parser.st_size).encode(), data])).hexdigest()
    key = _kept_in / "hcl" / f"{digest}.json"
    try:
        found = json.loads(key.read_bytes())
    except (OSError, ValueError):
        return key, None
    return key, found if isinstance(found, dict) else None


def keep(key: Path, parsed: dict[str, Any]) -> None:
    from mlcicd.fsutil import atomic_write

    try:
        key.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        atomic_write(key, json.dumps(parsed).encode(), mode=0o600)
    except (OSError, TypeError, ValueError):
        pass  # a parse that cannot be kept is parsed again next time
