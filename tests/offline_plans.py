"""Offline plans of the repository's environments, for tests that assert planned values.

Each environment is planned by the real bundled Terraform against mlcicd's stand-in for
hashicorp/aws (`mlcicd plan ENV --offline`), in a copy of the project made for the test.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def copy_repository(root: Path) -> Path:
    """terraform/, ml/, the example mlcicd.yaml and buildspec.yml under `root`, as a checkout has them."""
    for name in ("terraform", "ml", "mlcicd.yaml", "buildspec.yml"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns(".terraform", "__pycache__"))
        else:
            shutil.copy(source, root / name)
    return root


@contextlib.contextmanager
def offline_environ() -> Iterator[None]:
    """As an offline preview runs on a fresh machine: none of the caller's AWS/Terraform settings,
    the bundled Terraform, no network (a dead proxy); this machine's provider-schema cache."""
    import pytest

    from mlcicd import awsschema
    from mlcicd.offline import provider

    cache = awsschema.default_cache_dir()
    provider.schema_path(cache)  # indexed once, outside the scrubbed environment
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith(("AWS_", "TF_")) or name == "MLCICD_CONFIG":
                mp.delenv(name, raising=False)
        mp.setenv("XDG_CACHE_HOME", str(cache.parent))
        mp.setenv("MLCICD_TERRAFORM", "bundled")
        for name in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
            mp.setenv(name, "http://127.0.0.1:9")
        yield


def copy_project(root: Path, config_text: str | None = None) -> Path:
    """terraform/, ml/ and the example mlcicd.yaml (or `config_text`) under `root`; the config's path."""
    shutil.copytree(ROOT / "terraform", root / "terraform", symlinks=True,
                    ignore=shutil.ignore_patterns(".terraform"))
    shutil.copytree(ROOT / "ml", root / "ml", ignore=shutil.ignore_patterns("__pycache__"))
    path = root / "mlcicd.yaml"
    path.write_text(config_text if config_text is not None else (ROOT / "mlcicd.yaml").read_text())
    return path


def plan_all(config: Path, names: Iterable[str]) -> dict[str, dict]:
    """plan.json of each environment, a few Terraform processes at a time (2 cores)."""
    root = config.parent

    def plan(name: str) -> tuple[str, dict]:
        out = root / "plans" / name
        result = subprocess.run(
            [sys.executable, "-m", "mlcicd", "--config", str(config), "plan", name, "--offline", "--out", str(out)],
            capture_output=True, text=True, timeout=600, cwd=root)
        assert result.returncode == 0, f"{name}:\n{result.stdout}\n{result.stderr}"
        return name, json.loads((out / "plan.json").read_text())

    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(pool.map(plan, list(names)))


def planned(plan: dict, address: str) -> dict:
    """The planned values (`change.after`) of one resource."""
    [found] = [rc for rc in plan["resource_changes"] if rc["address"] == address]
    return found["change"]["after"]


def data_source(plan: dict, address: str) -> dict:
    """The values of a data source Terraform read while planning (it is in the plan's prior state)."""
    def walk(module: dict) -> Iterator[dict]:
        yield from module.get("resources", ())
        for child in module.get("child_modules", ()):
            yield from walk(child)

    [found] = [r for r in walk(plan["prior_state"]["values"]["root_module"]) if r["address"] == address]
    return found["values"]


def statements(policy: str | dict) -> list[dict]:
    document = json.loads(policy) if isinstance(policy, str) else policy
    found = document["Statement"]
    return found if isinstance(found, list) else [found]


def as_list(value: str | list[str] | None) -> list[str]:
    return [] if value is None else [value] if isinstance(value, str) else list(value)


def documents(value, where: str = "") -> Iterator[tuple[str, str]]:
    """(where, JSON) of every known policy document inside a planned value."""
    if isinstance(value, str) and '"Statement"' in value:
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from documents(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from documents(item, f"{where}[{i}]")
