"""`terraform validate` on many environments, with the real provider or the offline stand-in.

Environments are validated side by side (Terraform spends most of its time waiting on the
provider process), and each one's output is held back and printed as one block, so messages
of different environments never interleave.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from mlcicd.config import Config, Environment
from mlcicd.deploy import Workspace
from mlcicd.errors import MlcicdError
from mlcicd.runtime import Runtime
from mlcicd.terraform import Sink, build_argv

MAX_PARALLEL = 4


def validate(workspace: Workspace, label: str = "") -> None:
    """Init `workspace` and run `terraform validate`; Terraform's own messages go to its sink."""
    workspace.init()
    argv = build_argv("validate", {"no_color": not workspace.tf.color})
    workspace.tf.check(argv, cwd=workspace.env.dir, what=f"validate ({workspace.env.name}{label})")


def validate_many(config: Config, envs: Sequence[Environment], runtime: Runtime, *, offline: bool,
                  color: bool = False, echo: Sink | None = None) -> dict[str, MlcicdError | None]:
    """Validate each env; returns env name -> None when valid, else the error."""
    echo = echo or _print
    lock = threading.Lock()

    def one(env: Environment) -> MlcicdError | None:
        held: list[tuple[str, bool]] = []

        def sink(line: str, is_err: bool) -> None:
            held.append((f"{env.name}: {line}", is_err))

        try:
            _run(config, env, runtime, offline, color, sink)
            return None
        except MlcicdError as exc:
            return exc
        finally:
            with lock:
                for line, is_err in held:
                    echo(line, is_err)

    workers = max(1, min(MAX_PARALLEL, len(envs)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(one, envs))
    return {env.name: result for env, result in zip(envs, results, strict=True)}


def _run(config: Config, env: Environment, runtime: Runtime, offline: bool, color: bool, sink: Sink) -> None:
    if not offline:
        validate(Workspace(config, env, runtime, sink=sink, color=color))
        return
    from mlcicd.offline import preview

    with preview.workspace(config, env, runtime, sink=sink, color=color) as workspace:
        validate(workspace, f", {preview.OFFLINE}")


def _print(line: str, is_err: bool) -> None:
    print(line, file=sys.stderr if is_err else sys.stdout, flush=True)

