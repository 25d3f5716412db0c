"""Which environments a change touches: `plan --changed [--base REF]`.

An environment is chosen when, between REF and the working tree, something its plan reads
changed: a file of its root module or of any module it calls through a local `source`
(followed transitively; symlinked files count where they point, and `${path.module}/...`
paths a module reads count too), or its effective inputs in mlcicd.yaml (its rendered tfvars,
root directory, account, role, state backend). Those that depend on a chosen environment are
chosen too. Markdown files are documentation: changing one chooses nothing.

git runs as a subprocess with an argument list; REF defaults to the merge base of HEAD with
the configured branch (origin/BRANCH, else BRANCH).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mlcicd import hcl
from mlcicd.config import Config, Environment
from mlcicd.errors import ConfigError, MlcicdError, UsageError
from mlcicd.fsutil import atomic_write

CHANGES_FILE = "changes.json"
_GIT_TIMEOUT = 120
# "${path.module}/some/path" as written in Terraform source: the literal part of the path.
_PATH_MODULE = re.compile(r'\$\{path\.module\}/([^"$\n]*)(["$])')


class GitError(MlcicdError):
    """git failed, or is missing."""


@dataclass(frozen=True)
class Changes:
    """The environments a change touches, each with the reasons it was chosen."""

    base: str  # the commit compared with
    base_label: str  # how it was found, for people
    files: tuple[str, ...]  # changed paths, relative to the repository root
    chosen: Mapping[str, tuple[str, ...]]  # env -> reasons, in config order

    def to_json(self) -> bytes:
        data = {"base": self.base, "base_label": self.base_label,
                "environments": {env: list(why) for env, why in self.chosen.items()}}
        return (json.dumps(data, indent=2) + "\n").encode()


def detect(config: Config, base: str | None = None) -> Changes:
    """The environments of `config` that changed since `base` (default: the merge base with
    the configured branch)."""
    top = toplevel(config.root)
    commit, label = _resolve_base(top, base, config.repository.branch)
    files = changed_files(top, commit)
    absolute = [top / f for f in files if not f.endswith(".md")]
    chosen: dict[str, list[str]] = {}
    memo: dict[Path, _Module] = {}
    for name, env in config.environments.items():
        hits = _touched(env, absolute, top, memo) if absolute else []
        if hits:
            chosen[name] = hits
    for name, why in _config_reasons(config, top, commit, label).items():
        chosen.setdefault(name, []).extend(why)
    _add_dependants(config, chosen)
    ordered = {name: tuple(chosen[name]) for name in config.environments if name in chosen}
    return Changes(commit, label, tuple(files), ordered)


def write(out_root: Path, changes: Changes) -> Path:
    """Record the selection beside the plans, for the pull-request review."""
    path = out_root / CHANGES_FILE
    path.unlink(missing_ok=True)  # written anew each run: plans older than it are stale
    atomic_write(path, changes.to_json())
    return path


def read(out_root: Path) -> dict[str, tuple[str, ...]] | None:
    """The selection recorded in `out_root` (env -> reasons), or None when there is none."""
    try:
        data = json.loads((out_root / CHANGES_FILE).read_text(encoding="utf-8"))
        return {str(k): tuple(str(r) for r in v) for k, v in data["environments"].items()}
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, AttributeError, TypeError) as exc:
        raise UsageError(f"{out_root / CHANGES_FILE} is not a valid record of changed environments ({exc})") from None


# -- git ---------------------------------------------------------------------------------------


def git(args: list[str], cwd: Path) -> bytes:
    """Run git with `args` in `cwd`; its stdout, or GitError with git's own message."""
    env = {**os.environ, "LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0"}
    try:
        proc = subprocess.run(["git", "-c", "core.quotepath=off", *args], cwd=cwd, env=env,
                              capture_output=True, timeout=_GIT_TIMEOUT, check=False)
    except FileNotFoundError:
        raise GitError("git is not installed (it is needed to find what changed)") from None
    except subprocess.TimeoutExpired:
        raise GitError(f"git {args[0]} took longer than {_GIT_TIMEOUT} s") from None
    if proc.returncode != 0:
        detail = proc.stderr.decode(errors="replace").strip().splitlines()
        raise GitError(f"git {args[0]} failed: {detail[-1] if detail else f'exit {proc.returncode}'}")
    return proc.stdout


def toplevel(directory: Path) -> Path:
    try:
        out = git(["rev-parse", "--show-toplevel"], directory)
    except GitError:
        raise UsageError(f"--changed needs a git repository: {directory} is not inside one",
                         hint="run it in a clone of the repository, or name the environments") from None
    return Path(out.decode().strip()).resolve()


def _commit(top: Path, ref: str) -> str | None:
    if ref.startswith("-"):
        return None
    try:
        return git(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"], top).decode().strip()
    except GitError:
        return None


def _resolve_base(top: Path, base: str | None, branch: str) -> tuple[str, str]:
    if _commit(top, "HEAD") is None:
        raise UsageError("--changed: the repository has no commit yet to compare with")
    if base is not None:
        if _commit(top, base) is None:
            raise UsageError(f"--base {base}: no such commit in this repository",
                             hint="fetch it first (e.g. `git fetch origin`), or pass another --base")
        candidate = base
    else:
        candidate = next((c for c in (f"origin/{branch}", branch) if _commit(top, c) is not None), "")
        if not candidate:
            raise UsageError(f"--changed: neither origin/{branch} nor {branch} exists to compare with",
                             hint=f"fetch the branch (`git fetch origin {branch}`) or pass --base REF")
    # The merge base, as a pull request's diff: commits REF gained since HEAD forked are not ours.
    try:
        found = git(["merge-base", "HEAD", _commit(top, candidate) or candidate], top).decode().strip()
    except GitError:
        raise UsageError(f"--changed: HEAD and {candidate} share no history here",
                         hint="a shallow clone lacks it: fetch more (`git fetch --unshallow`)") from None
    return found, f"merge base with {candidate}"


def changed_files(top: Path, commit: str) -> list[str]:
    """Paths (relative to `top`) that differ between `commit` and the working tree: tracked
    changes, committed or not (renames as delete + add), and untracked files not ignored."""
    tracked = git(["diff", "--name-only", "-z", "--no-renames", commit, "--"], top)
    untracked = git(["ls-files", "--others", "--exclude-standard", "-z"], top)
    names = {n.decode("utf-8", errors="surrogateescape") for n in (tracked + untracked).split(b"\0") if n}
    return sorted(names)


# -- modules -----------------------------------------------------------------------------------


_Module = tuple[list[Path], list[Path], list[Path]]  # (dirs, files, called module dirs)


def read_paths(root_dir: Path, memo: dict[Path, _Module] | None = None) -> tuple[list[Path], list[Path]]:
    """What a root module's plan reads from disk: (directories, files). Its own directory and
    every module it calls through local paths, transitively; the targets of symlinks in them;
    and the paths their source names as `${path.module}/...`. `memo` shares the parsing of
    modules between environments."""
    memo = {} if memo is None else memo
    dirs: list[Path] = []
    files: list[Path] = []
    todo, seen = [root_dir], set()
    while todo:
        module = todo.pop()
        if module in seen or not module.is_dir():
            continue
        seen.add(module)
        if module not in memo:
            memo[module] = _module_paths(module)
        more_dirs, more_files, called = memo[module]
        dirs += more_dirs
        files += more_files
        todo.extend(called)
    return dirs, files


def _module_paths(module: Path) -> _Module:
    dirs, files = [module], []
    for entry in module.iterdir():
        if entry.is_symlink():
            (dirs if entry.is_dir() else files).append(entry.resolve())
    for path in hcl.source_files(module):
        text = path.read_text(encoding="utf-8", errors="replace")
        for match in _PATH_MODULE.finditer(text):
            literal = match[1] if match[2] == '"' else match[1].rpartition("/")[0]
            target = Path(os.path.normpath(module / literal))
            (dirs if target.is_dir() else files).append(target)
    return dirs, files, hcl.local_module_dirs(module)


def _touched(env: Environment, changed: list[Path], top: Path, memo: dict[Path, _Module]) -> list[str]:
    dirs, files = read_paths(env.dir.resolve(), memo)
    dirs.append(env.dir)  # a root module deleted from the working tree still counts
    reasons: dict[str, list[str]] = {}
    for path in changed:
        owner = next((d for d in dirs if path == d or d in path.parents), None)
        if owner is None and path in files:
            owner = path
        if owner is not None:
            reasons.setdefault(_shown(owner, top), []).append(_shown(path, top))
    return [f"{where} changed ({_few(paths)})" if paths != [where] else f"{where} changed"
            for where, paths in reasons.items()]


def _shown(path: Path, top: Path) -> str:
    try:
        return path.relative_to(top).as_posix() or "."
    except ValueError:
        return str(path)


def _few(paths: list[str]) -> str:
    names = [p.rsplit("/", 1)[-1] for p in paths]
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


# -- mlcicd.yaml -------------------------------------------------------------------------------


def inputs(config: Config, env: Environment) -> dict[str, Any]:
    """What in the config reaches an environment's plan: its rendered tfvars, root directory,
    account, role and state backend."""
    from mlcicd.render import variables

    found: dict[str, Any] = {f"vars.{k}": v for k, v in variables(config, env).items()}
    found.update({"dir": str(env.dir), "account": env.account_id, "assume_role": env.assume_role,
                  "state": asdict(config.state)})
    return found


def _config_reasons(config: Config, top: Path, commit: str, label: str) -> dict[str, list[str]]:
    name = config.path.name
    before = _config_at(config, top, commit)
    if isinstance(before, str):
        return {env: [f"{name} {before}"] for env in config.environments}
    reasons: dict[str, list[str]] = {}
    for env_name, env in config.environments.items():
        if env_name not in before.environments:
            reasons[env_name] = [f"new in {name}"]
            continue
        old, new = inputs(before, before.environments[env_name]), inputs(config, env)
        differ = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
        if differ:
            reasons[env_name] = [f"{name}: {', '.join(differ)} changed"]
    return reasons


def _config_at(config: Config, top: Path, commit: str) -> Config | str:
    """The config as it was at `commit`, or why it cannot be compared."""
    import yaml

    from mlcicd.config import parse

    try:
        rel = config.path.resolve().relative_to(top).as_posix()
    except ValueError:
        return "is outside the git repository: every environment counts as changed"
    try:
        text = git(["show", f"{commit}:{rel}"], top)
    except GitError:
        return f"is new since {commit[:12]}"
    try:
        return parse(yaml.safe_load(text), path=config.path)
    except (ConfigError, yaml.YAMLError) as exc:
        return f"at {commit[:12]} cannot be read ({str(exc).splitlines()[0]}): every environment counts as changed"


def _add_dependants(config: Config, chosen: dict[str, list[str]]) -> None:
    grew = True
    while grew:
        grew = False
        for name, env in config.environments.items():
            upstream = [d for d in env.depends_on if d in chosen]
            if upstream and name not in chosen:
                chosen[name] = [f"depends on {', '.join(upstream)}"]
                grew = True
