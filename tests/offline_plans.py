"""Offline plans of the repository's environments, for tests that assert planned values.

Each environment is planned by the real bundled Terraform against mlcicd's stand-in for
hashicorp/aws (`mlcicd plan ENV --offline`), in a copy of the project made for the test.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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
