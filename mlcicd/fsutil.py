"""Files: atomic writes (a reader sees the old file or the new one, never half of either), and
mirrors of a root module (a private place for Terraform to run in without touching the user's tree)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def atomic_write(path: Path, data: bytes, mode: int = 0o644, durable: bool = False) -> bool:
    """Write `data` to `path` atomically. Returns False when the file already had these bytes.

    durable=True also fsyncs, for files that must survive a crash (not needed for files that
    are regenerated on every run)."""
    try:
        if path.read_bytes() == data and (path.stat().st_mode & 0o777) == mode:
            return False
    except OSError:
        pass
    import tempfile  # here, not at the top: with shutil it costs ~5 ms at import, and a review writes nothing

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return True


# Never mirrored: Terraform's and mlcicd's own working files, and state files left beside a module.
_MIRROR_SKIP = {".terraform", ".git", ".mlcicd", "terraform.tfstate", "terraform.tfstate.backup", "errored.tfstate"}


def mirror(root_module: Path, top: Path, dest: Path) -> Path:
    """Mirror `top` into `dest` so that `root_module` (inside `top`) is a private copy.

    On the way down from `top` each directory is real and its other entries are symlinks, so
    relative module sources and `file()` paths resolve as before; the root module's own files
    are copied (Terraform writes beside them: errored.tfstate) and its subdirectories linked.
    Returns the mirrored root module."""
    import shutil  # here, not at the top: see atomic_write

    rel = root_module.relative_to(top)
    src, out = top, dest
    out.mkdir(parents=True, exist_ok=True)
    for part in rel.parts:
        for entry in src.iterdir():
            if entry.name != part and entry.name not in _MIRROR_SKIP:
                (out / entry.name).symlink_to(entry)
        src, out = src / part, out / part
        out.mkdir()
    for entry in src.iterdir():
        if entry.name in _MIRROR_SKIP:
            continue
        if entry.is_file():
            shutil.copy(entry, out / entry.name)
        else:
            (out / entry.name).symlink_to(entry.resolve())
    return out


def mirror_top(root_module: Path, project_root: Path) -> Path:
    """Where a mirror of `root_module` starts: the project root when the module is inside it."""
    if root_module == project_root or project_root in root_module.parents:
        return project_root
    return root_module.parent
