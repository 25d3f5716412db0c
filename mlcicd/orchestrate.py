"""Run one operation over many environments: in dependency order, independent ones in parallel.

An environment starts when every environment it depends on (among those selected) has finished
successfully; one that fails makes its dependants "skipped", never hides the others' results.
Output never interleaves mid-line: each line carries an `[env]` prefix, or (grouped) each
environment's output is printed as one block when it finishes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from mlcicd.config import Config, Environment
from mlcicd.errors import Interrupted, MlcicdError, TerraformError, UsageError
from mlcicd.printable import escape
from mlcicd.terraform import interrupted

Writer = Callable[[str, bool], None]  # (text, is_stderr)

OK_STATUSES = ("no changes", "changes", "applied", "drifted", "valid")


@dataclass(frozen=True)
class EnvResult:
    env: str
    status: str  # one of OK_STATUSES, "failed", "interrupted", "skipped"
    detail: str = ""
    seconds: float = 0.0
    drifted: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status in OK_STATUSES

    def line(self) -> str:
        text = f"{self.env}: {self.status}"
        return escape(f"{text}: {self.detail}" if self.detail else text, one_line=True)


@dataclass
class Report:
    results: list[EnvResult] = field(default_factory=list)
    interrupted: bool = False  # Ctrl-C/SIGTERM arrived: the command exits 130

    @property
    def failed(self) -> list[EnvResult]:
        return [r for r in self.results if not r.ok]

    def by_env(self) -> dict[str, EnvResult]:
        return {r.env: r for r in self.results}


def select(config: Config, names: Sequence[str], all_: bool) -> list[str]:
    if all_ and names:
        raise UsageError("name environments or pass --all, not both")
    if not all_ and not names:
        raise UsageError("name at least one environment, or pass --all")
    chosen = list(config.environments) if all_ else list(dict.fromkeys(names))
    for name in chosen:
        config.env(name)  # a clear error for an unknown name
    return chosen


def dependencies(envs: Mapping[str, Environment], selected: Sequence[str],
                 reverse: bool = False) -> dict[str, set[str]]:
    """Each selected env's prerequisites among the selected ones (transitively through unselected
    envs, so data -> staging -> prod keeps its order when staging is not selected).
    reverse=True inverts the order, for destroy."""
    chosen = set(selected)

    def reach(name: str, seen: set[str]) -> set[str]:
        found: set[str] = set()
        for dep in envs[name].depends_on:
            if dep in seen:
                continue
            seen.add(dep)
            found |= {dep} if dep in chosen else reach(dep, seen)
        return found

    deps = {name: reach(name, set()) for name in selected}
    if reverse:
        inverted: dict[str, set[str]] = {name: set() for name in selected}
        for name, before in deps.items():
            for dep in before:
                inverted[dep].add(name)
        return inverted
    return deps


class Console:
    """Serialises output from parallel environments: prefixed lines, or grouped blocks."""

    def __init__(self, write: Writer, *, grouped: bool, width: int) -> None:
        self._write = write
        self._grouped = grouped
        self._width = width
        self._lock = threading.Lock()
        self._buffers: dict[str, list[tuple[str, bool]]] = {}

    def sink_for(self, env: str) -> Callable[[str, bool], None]:
        prefix = f"[{env}]".ljust(self._width + 2) + " "

        def sink(line: str, is_err: bool) -> None:
            if self._grouped:
                with self._lock:
                    self._buffers.setdefault(env, []).append((line, is_err))
                return
            with self._lock:
                self._write(prefix + line, is_err)

        return sink

    def flush(self, env: str) -> None:
        if not self._grouped:
            return
        with self._lock:
            lines = self._buffers.pop(env, [])
            self._write(f"──── {env} " + "─" * max(0, 60 - len(env)), False)
            for line, is_err in lines:
                self._write(line, is_err)

    def status(self, text: str) -> None:
        with self._lock:
            self._write(text, True)


def run_all(
    envs: Mapping[str, Environment],
    selected: Sequence[str],
    task: Callable[[str, Callable[[str, bool], None]], EnvResult],
    *,
    parallelism: int,
    write: Writer,
    grouped: bool = False,
    reverse: bool = False,
    ordered: bool = True,
    clock: Callable[[], float] = time.monotonic,
) -> Report:
    """Run task(env, sink) for each selected env, respecting dependencies (unless ordered=False,
    for work that changes nothing), at most `parallelism` at a time. A task reports its result;
    an MlcicdError it raises becomes a failed result."""
    if parallelism < 1:
        raise UsageError("--parallelism must be at least 1")
    deps = dependencies(envs, selected, reverse=reverse) if ordered else {name: set() for name in selected}
    console = Console(write, grouped=grouped, width=max(len(n) for n in selected))
    results: dict[str, EnvResult] = {}
    pending = list(selected)
    running: dict[Future, str] = {}

    def guarded(name: str) -> EnvResult:
        start = clock()
        try:
            result = task(name, console.sink_for(name))
        except Interrupted as exc:
            result = EnvResult(name, "interrupted", str(exc).splitlines()[0].removeprefix("interrupted: "))
        except TerraformError as exc:
            # Terraform's own messages went to this environment's output: name the failure only.
            result = EnvResult(name, "failed", f"{exc.headline} (Terraform's messages are above)")
        except MlcicdError as exc:
            result = EnvResult(name, "failed", str(exc).splitlines()[0])
        except Exception as exc:  # one environment's crash must not hide the others' results
            result = EnvResult(name, "failed", f"{type(exc).__name__}: {exc}")
        return EnvResult(result.env, result.status, result.detail, clock() - start, result.drifted)

    with ThreadPoolExecutor(max_workers=parallelism, thread_name_prefix="mlcicd-env") as pool:
        while pending or running:
            if interrupted():
                for name in pending:
                    results[name] = EnvResult(name, "skipped", "interrupted")
                pending.clear()
            for name in list(pending):
                blocked = [d for d in deps[name] if d in results and not results[d].ok]
                if blocked:
                    pending.remove(name)
                    results[name] = EnvResult(name, "skipped", f"{', '.join(sorted(blocked))} failed")
                    continue
                if len(running) < parallelism and all(d in results for d in deps[name]):
                    pending.remove(name)
                    running[pool.submit(guarded, name)] = name
            if not running:
                continue
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                name = running.pop(future)
                results[name] = future.result()
                console.flush(name)
                failed = sum(1 for r in results.values() if r.status == "failed")
                console.status(f"── {results[name].line()}  [{len(results)}/{len(selected)} done, "
                               f"{len(running)} running, {failed} failed]")
    return Report([results[name] for name in selected], interrupted=interrupted())


def _workspace(config: Config, name: str, runtime, sink):
    from mlcicd.deploy import Workspace

    return Workspace(config, config.env(name), runtime, sink=sink)


def plan_task(config: Config, runtime, out_root=None, *, destroy: bool = False):
    """Plan each env into out_root/ENV (default .mlcicd/ENV/plan)."""

    def task(name: str, sink) -> EnvResult:
        out = out_root / name if out_root is not None else None
        outcome = _workspace(config, name, runtime, sink).plan(out, destroy=destroy)
        if not outcome.has_changes:
            return EnvResult(name, "no changes")
        return EnvResult(name, "changes", outcome.review.changes)

    return task


def apply_task(config: Config, runtime, *, destroy: bool = False):
    """Plan and apply (or destroy) each env without asking: the caller checked --auto-approve."""

    def task(name: str, sink) -> EnvResult:
        workspace = _workspace(config, name, runtime, sink)
        run = workspace.destroy if destroy else workspace.apply
        outcome = run(auto_approve=True, confirm=lambda _: True)
        if outcome is None or not outcome.has_changes:
            return EnvResult(name, "no changes")
        return EnvResult(name, "applied", outcome.review.changes)

    return task



def drift_task(config: Config, runtime):
    """A refresh-only plan per env; drifted resources come from plan.json's resource_drift."""
    from mlcicd.plandir import PLAN_JSON, PlanJSON

    def task(name: str, sink) -> EnvResult:
        workspace = _workspace(config, name, runtime, sink)
        outcome = workspace.plan(workspace.workdir / "drift", refresh_only=True)
        plan = PlanJSON.load(outcome.plan_dir / PLAN_JSON)
        drifted = tuple(sorted(plan.resource_drift))
        if not drifted:
            return EnvResult(name, "no changes", "no drift")
        return EnvResult(name, "drifted", f"{len(drifted)} resource(s): {', '.join(drifted)}", drifted=drifted)

    return task
