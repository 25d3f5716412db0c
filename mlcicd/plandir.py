"""The plan directory: what `plan --out DIR` writes, and what `review` and `apply --plan DIR`
verify before they read anything. The one module that writes, reads or checks one.

    DIR/tfplan               the binary plan Terraform applies
    DIR/plan.json            `terraform show -json tfplan` (sensitive values in clear)
    DIR/summary.txt          the readable review
    DIR/review.md            the review as markdown
    DIR/OFFLINE-PREVIEW.txt  only in an offline preview, which can never be applied
    DIR/manifest.json        env, Terraform version, config digest, and the sha256 of every file above

Chain of custody: the manifest names the sha256 of each file; `open_verified` reads each file
once, refuses a symlink, a non-regular file or a mismatch, and hands out the verified bytes.
`apply` checks who can write the directory (`check_custody`) and applies a private copy of the
verified `tfplan` bytes (`private_copy`); it reads the backend the plan will write to from the
plan itself (planfile.read_backend), so an edited manifest cannot point a plan at another environment.
Everything is written 0600 in a 0700 directory: the plan and its JSON hold secrets.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from mlcicd.errors import PlanRefused, UsageError
from mlcicd.fsutil import atomic_write
from mlcicd.masking import collect_marked

PLAN_FILE = "tfplan"
PLAN_JSON = "plan.json"
SUMMARY = "summary.txt"
REVIEW_MARKDOWN = "review.md"
OFFLINE_MARKER = "OFFLINE-PREVIEW.txt"
MANIFEST = "manifest.json"
FORMAT = 2
# The files a manifest may name; anything else is refused (no paths, no surprises).
FILES = (PLAN_FILE, PLAN_JSON, SUMMARY, REVIEW_MARKDOWN, OFFLINE_MARKER)
REQUIRED = (PLAN_FILE, PLAN_JSON, SUMMARY)
MAX_BYTES = 1 << 30  # a bound on what is read into memory from a directory someone handed us


@dataclass(frozen=True)
class Manifest:
    format: int
    project: str
    env: str
    account_id: str
    plan_sha256: str  # of tfplan: the value shown to the approver and passed to --expect-sha256
    terraform_version: str
    config_digest: str
    has_changes: bool
    counts: Mapping[str, int]
    offline: bool = False
    files: Mapping[str, str] = field(default_factory=dict)  # name -> sha256, every file but this one

    def to_json(self) -> bytes:
        return (json.dumps(asdict(self), indent=2, sort_keys=True) + "\n").encode()


def sha256_bytes(data: bytes) -> str:
    import hashlib  # here, not at the top: loading OpenSSL costs ~5 ms, and a bare plan.json is not hashed

    return hashlib.sha256(data).hexdigest()


# -- writing -------------------------------------------------------------------------------------


def prepare(plan_dir: Path) -> Path:
    """Create (or reuse) `plan_dir` for a new plan: 0700, ours, with nothing of an earlier plan
    left in it (never a manifest beside a plan it does not describe, nor an old file it would cover)."""
    plan_dir = plan_dir.resolve()
    try:
        plan_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        check_custody(plan_dir, what="write a plan into")
        plan_dir.chmod(0o700)
        for name in (MANIFEST, *FILES):
            (plan_dir / name).unlink(missing_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise PlanRefused(f"cannot write a plan into {plan_dir}: it (or a directory above it) is a file",
                          hint="pass --out a directory (it is created if missing)") from None
    except IsADirectoryError:
        raise PlanRefused(f"cannot write a plan into {plan_dir}: it holds a directory where a plan file goes",
                          hint="pass --out a new or empty directory") from None
    except OSError as exc:
        raise PlanRefused(f"cannot write a plan into {plan_dir} ({exc.strerror})") from None
    return plan_dir


@contextlib.contextmanager
def partial_plan(plan_dir: Path) -> Iterator[Path]:
    """A per-process path for Terraform's `-out`, created 0600 before Terraform writes to it
    (Terraform keeps an existing file's mode); moved into place by `commit_plan`, or removed.
    Per process: a concurrent run that fails must not delete this run's partial plan."""
    path = plan_dir / f".{PLAN_FILE}.{os.getpid()}.partial"
    path.unlink(missing_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def commit_plan(partial: Path) -> Path:
    partial.chmod(0o600)
    target = partial.parent / PLAN_FILE
    partial.replace(target)
    return target


def write_file(plan_dir: Path, name: str, data: bytes) -> Path:
    if name not in FILES:
        raise ValueError(f"not a plan directory file: {name}")
    path = plan_dir / name
    atomic_write(path, data, mode=0o600)
    return path


def write_manifest(plan_dir: Path, *, project: str, env: str, account_id: str, terraform_version: str,
                   config_digest: str, has_changes: bool, counts: Mapping[str, int],
                   offline: bool = False) -> Manifest:
    """Seal the directory: hash every plan directory file present and write the manifest last."""
    files = {}
    for name in FILES:
        path = plan_dir / name
        if path.is_file() and not path.is_symlink():
            files[name] = sha256_bytes(path.read_bytes())
    if offline and OFFLINE_MARKER not in files:
        raise ValueError("an offline plan directory needs its marker file")
    stray = sorted(set(FILES) - set(files) - {OFFLINE_MARKER, REVIEW_MARKDOWN})
    if stray:
        raise ValueError(f"plan directory {plan_dir} lacks {', '.join(stray)}")
    manifest = Manifest(format=FORMAT, project=project, env=env, account_id=account_id,
                        plan_sha256=files[PLAN_FILE], terraform_version=terraform_version,
                        config_digest=config_digest, has_changes=has_changes, counts=dict(counts),
                        offline=offline, files=files)
    atomic_write(plan_dir / MANIFEST, manifest.to_json(), mode=0o600)
    return manifest


def write_review_to(out: Path, data: bytes, plan_dir: Path | None) -> None:
    """Write a review to `out`. Into the verified plan directory `plan_dir` itself (its
    review.md, as the pipeline does to show checkov's findings to the approver) the manifest is
    resealed for that one file, after verifying the rest again; anything else there is refused."""
    if plan_dir is None or out.absolute().parent != plan_dir.absolute():
        atomic_write(out, data)
        return
    if out.name != REVIEW_MARKDOWN:
        raise PlanRefused(f"refusing to write {out}: only {REVIEW_MARKDOWN} of a plan directory may be "
                          "rewritten after planning", hint="write the review outside the plan directory")
    verified = open_verified(plan_dir)
    write_file(plan_dir, REVIEW_MARKDOWN, data)
    files = {**verified.manifest.files, REVIEW_MARKDOWN: sha256_bytes(data)}
    atomic_write(plan_dir / MANIFEST, replace(verified.manifest, files=files).to_json(), mode=0o600)


# -- verifying -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifiedPlan:
    """A plan directory whose files matched its manifest, with the bytes that were checked.
    Everything downstream reads these bytes, never the directory again."""

    path: Path
    manifest: Manifest
    contents: Mapping[str, bytes]

    @property
    def tfplan(self) -> bytes:
        return self.contents[PLAN_FILE]

    @cached_property
    def plan_json(self) -> PlanJSON:
        return parse_plan_json(self.contents[PLAN_JSON], self.path / PLAN_JSON)


def open_verified(path: Path) -> VerifiedPlan:
    """Read and verify a plan directory before anything else reads it; PlanRefused otherwise."""
    _require_real_dir(path)
    manifest = _parse_manifest(_read_regular(path / MANIFEST, missing_hint=True), path / MANIFEST)
    contents: dict[str, bytes] = {}
    for name in REQUIRED:
        if name not in manifest.files:
            raise PlanRefused(f"{path / MANIFEST} does not cover {name}", hint="plan again")
    for name, expected in sorted(manifest.files.items()):
        if name not in FILES:
            raise PlanRefused(f"{path / MANIFEST} names {name!r}, which is not a plan directory file",
                              hint="plan again; do not edit a plan directory")
        data = _read_regular(path / name)
        actual = sha256_bytes(data)
        if actual != expected:
            raise PlanRefused(
                f"refusing the plan in {path}: {name} was modified after it was planned "
                f"(sha256 {actual[:12]}…, manifest says {expected[:12]}…)",
                hint="plan again and review the new plan")
        contents[name] = data
    if manifest.files[PLAN_FILE] != manifest.plan_sha256:
        raise PlanRefused(f"refusing the plan in {path}: the manifest's plan_sha256 is not the sha256 of "
                          f"{PLAN_FILE} it lists", hint="plan again")
    if manifest.offline != (OFFLINE_MARKER in manifest.files):
        raise PlanRefused(f"refusing the plan in {path}: the manifest's offline flag does not match "
                          f"{OFFLINE_MARKER}", hint="plan again")
    return VerifiedPlan(path, manifest, contents)


def read_bare_plan_json(path: Path) -> tuple[PlanJSON, bytes]:
    """A plan.json outside a plan directory: readable, but nothing vouches for it."""
    data = _read_regular(path)
    return parse_plan_json(data, path), data


@dataclass(frozen=True)
class ForReview:
    """What a review reads: a verified plan directory's, or a bare plan.json's (no sha256: unverified)."""

    env: str
    plan_sha256: str
    plan: PlanJSON
    plan_json: bytes
    offline: bool = False


def load_for_review(path: Path) -> ForReview:
    """A plan directory is verified against its manifest before anything in it is read; a bare
    plan.json is read as it is, and has no sha256 (nothing shows it is the plan to be applied)."""
    if path.is_dir() or path.is_symlink():
        checked = open_verified(path)
        manifest = checked.manifest
        return ForReview(manifest.env, manifest.plan_sha256, checked.plan_json, checked.contents[PLAN_JSON],
                         manifest.offline)
    if path.is_file():
        plan, data = read_bare_plan_json(path)
        return ForReview(path.stem, "", plan, data)
    raise UsageError(f"{path} is neither a plan directory nor a plan.json file")


def check_custody(path: Path, *, what: str = "apply") -> None:
    """Refuse a directory (or a file in it) that someone else owns or others may write: they
    could change the plan between the check and its use."""
    uid = os.getuid()
    entries = [path] + sorted(p for p in path.iterdir()) if path.is_dir() else [path]
    for entry in entries:
        st = entry.lstat()
        if st.st_uid != uid:
            raise PlanRefused(
                f"refusing to {what} {path}: {entry} is owned by uid {st.st_uid}, not by you (uid {uid})",
                hint="copy the plan directory to a directory of your own, or plan again")
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not stat.S_ISLNK(st.st_mode):
            raise PlanRefused(
                f"refusing to {what} {path}: {entry} is writable by others (mode "
                f"{stat.S_IMODE(st.st_mode):04o})",
                hint=f"`chmod -R go-w {path}` if you trust its contents, or plan again")


@contextlib.contextmanager
def private_copy(verified: VerifiedPlan, parent: Path) -> Iterator[Path]:
    """A fresh 0700 directory under `parent` holding the verified tfplan bytes (0600): what
    Terraform applies, so a swap in the original directory changes nothing. Removed afterwards."""
    import shutil
    import tempfile  # here, not at the top: only apply needs them, and they cost ~5 ms at import

    parent.mkdir(parents=True, exist_ok=True)
    directory = Path(tempfile.mkdtemp(prefix="apply-", dir=parent))
    try:
        fd = os.open(directory / PLAN_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(verified.tfplan)
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _require_real_dir(path: Path) -> None:
    try:
        st = path.lstat()
    except FileNotFoundError:
        raise PlanRefused(f"{path}: no such plan directory",
                          hint="create one with `mlcicd plan ENV --out DIR`") from None
    except OSError as exc:
        raise PlanRefused(f"{path}: cannot read ({exc.strerror})") from None
    if stat.S_ISLNK(st.st_mode):
        raise PlanRefused(f"refusing {path}: it is a symbolic link", hint="pass the real directory")
    if not stat.S_ISDIR(st.st_mode):
        raise PlanRefused(f"{path} is not a plan directory", hint="create one with `mlcicd plan ENV --out DIR`")


def _read_regular(path: Path, *, missing_hint: bool = False) -> bytes:
    """The bytes of a regular file, refusing symlinks, devices and FIFOs (opened without
    following links or blocking, checked after opening)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        if missing_hint:
            raise PlanRefused(f"{path.parent} is not a plan directory: {path.name} is missing",
                              hint="create one with `mlcicd plan ENV --out DIR`") from None
        raise PlanRefused(f"refusing the plan in {path.parent}: {path.name} is missing",
                          hint="plan again") from None
    except OSError as exc:
        if os.path.islink(path):
            raise PlanRefused(f"refusing the plan in {path.parent}: {path.name} is a symbolic link",
                              hint="plan again; a plan directory holds only regular files") from None
        raise PlanRefused(f"refusing the plan in {path.parent}: cannot read {path.name} ({exc.strerror})") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise PlanRefused(f"refusing the plan in {path.parent}: {path.name} is not a regular file",
                          hint="plan again; a plan directory holds only regular files")
    with os.fdopen(fd, "rb") as fh:
        if st.st_size > MAX_BYTES:
            raise PlanRefused(f"refusing the plan in {path.parent}: {path.name} is larger than {MAX_BYTES} bytes")
        return fh.read(MAX_BYTES + 1)


def _parse_manifest(data: bytes, path: Path) -> Manifest:
    try:
        raw = json.loads(data)
        if not isinstance(raw, dict):
            raise TypeError("not a JSON object")
        if raw.get("format") != FORMAT:
            raise PlanRefused(f"{path}: manifest format {raw.get('format')!r} is not supported (expected {FORMAT})",
                              hint="plan again with this version of mlcicd")
        manifest = Manifest(**raw)
        for name in ("project", "env", "account_id", "plan_sha256", "terraform_version", "config_digest"):
            if not isinstance(getattr(manifest, name), str):
                raise TypeError(f"{name} is not a string")
        if not isinstance(manifest.files, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in manifest.files.items()):
            raise TypeError("files is not a map of names to sha256")
        if not isinstance(manifest.offline, bool) or not isinstance(manifest.has_changes, bool):
            raise TypeError("offline/has_changes are not true/false")
    except (ValueError, TypeError) as exc:
        raise PlanRefused(f"{path} is not a valid mlcicd plan manifest ({exc})", hint="plan again") from None
    return manifest


# -- plan.json ---------------------------------------------------------------------------------


def parse_plan_json(data: bytes, where: Path) -> PlanJSON:
    try:
        parsed = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise PlanRefused(f"{where} is not readable plan JSON ({exc})") from None
    if not isinstance(parsed, dict) or "format_version" not in parsed:
        raise PlanRefused(f"{where} is not `terraform show -json` output of a plan")
    return PlanJSON(parsed)


@dataclass(frozen=True)
class ResourceChange:
    """One entry of plan.json's resource_changes, read-only."""

    raw: Mapping[str, Any]

    @property
    def address(self) -> str:
        return self.raw["address"]

    @property
    def actions(self) -> tuple[str, ...]:
        return tuple(self.raw.get("change", {}).get("actions", ()))


@dataclass(frozen=True)
class PlanJSON:
    """A read-only view of `terraform show -json` output."""

    data: Mapping[str, Any]

    @classmethod
    def load(cls, path: Path) -> PlanJSON:
        with open(path, "rb") as fh:
            return cls(json.load(fh))

    @cached_property
    def resource_changes(self) -> dict[str, ResourceChange]:
        return {rc["address"]: ResourceChange(rc) for rc in self.data.get("resource_changes", ())}

    @cached_property
    def resource_drift(self) -> dict[str, ResourceChange]:
        return {rc["address"]: ResourceChange(rc) for rc in self.data.get("resource_drift", ())}

    @property
    def output_changes(self) -> dict[str, Any]:
        return {
            name: oc for name, oc in self.data.get("output_changes", {}).items()
            if tuple(oc.get("actions", ())) != ("no-op",)
        }

    def sensitive_values(self) -> list[str]:
        """String values Terraform marks sensitive (variables and outputs) — to mask in output."""
        found: list[str] = []
        config_vars = self.data.get("configuration", {}).get("root_module", {}).get("variables", {})
        for name, var in self.data.get("variables", {}).items():
            if config_vars.get(name, {}).get("sensitive"):
                collect_marked(var.get("value"), True, found)
        return found
