"""What the CodeBuild cache saves each pipeline action: the two slow steps every action repeats,
cold (empty cache) beside warm (the cache a previous build left), alternated round by round.
Run by hand, never as a test:

    python bench/cache.py             # pip and init
    python bench/cache.py pip         # `pip install .` into a fresh venv, wheels from PyPI vs on disk
    python bench/cache.py init        # `terraform init` of hashicorp/aws, plugin cache empty vs filled

pip needs PyPI. `init` needs a provider in a local filesystem mirror (MIRROR, default
/opt/tf-plugins): there is no registry access here, so the cold side copies the provider from
local disk instead of downloading it, and its figure is a lower bound of a real cold init.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import report  # bench/bench.py, beside this file

ROOT = Path(__file__).resolve().parent.parent

MIRROR = Path(os.environ.get("MIRROR", "/opt/tf-plugins"))


def timed(argv: list[str], env: dict[str, str], cwd: Path | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - start


def pip_env(cache: Path) -> dict[str, str]:
    """PyPI itself: this machine's pip config (local wheel mirrors) left out."""
    env = {k: v for k, v in os.environ.items() if k not in ("PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL")}
    return {**env, "PIP_CONFIG_FILE": os.devnull, "PIP_CACHE_DIR": str(cache), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def pip_install(scratch: Path, cache: Path, *extra: str) -> float:
    """`pip install .` as buildspec.yml runs it, into a new venv (CodeBuild starts clean)."""
    venv = scratch / f"venv-{time.monotonic_ns()}"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    try:
        return timed([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", *extra, str(ROOT)],
                     pip_env(cache))
    finally:
        shutil.rmtree(venv)


def bench_pip(rounds: int) -> None:
    """Cold: every wheel fetched from PyPI. Warm: the same wheels read from local disk, which is
    what a filled PIP_CACHE_DIR gives. (The warm side is built with --find-links rather than
    pip's own HTTP cache because the proxy in front of PyPI here strips the Cache-Control
    headers pip's cache needs; on CodeBuild, PyPI's `immutable` wheels are cached.)"""
    cold_times, warm_times = [], []
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        wheels = scratch / "wheels"
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(wheels), str(ROOT),
                        "setuptools>=68", "wheel"], env=pip_env(scratch / "dl-cache"), check=True,
                       stdout=subprocess.DEVNULL)
        size = sum(f.stat().st_size for f in wheels.iterdir())
        for n in range(rounds):
            cold_times.append(pip_install(scratch, scratch / f"empty-{n}"))
            warm_times.append(pip_install(scratch, scratch / f"empty-w{n}", "--no-index", "--find-links",
                                          str(wheels)))
    cold, warm = statistics.median(cold_times), statistics.median(warm_times)
    report("pip install . (wheels on disk vs from PyPI)", "lower is better", warm, cold)
    print(f"  saved per action: {cold - warm:.1f} s; wheels {size / 1e6:.0f} MB  "
          f"(cold runs {cold_times}, warm runs {warm_times})")


def bench_init(rounds: int) -> None:
    versions = sorted(MIRROR.glob("registry.terraform.io/hashicorp/aws/*"))
    if not versions:
        sys.exit(f"no hashicorp/aws in the filesystem mirror {MIRROR} (set MIRROR)")
    version = versions[-1].name
    from mlcicd.terraform import resolve_executable

    terraform = resolve_executable(os.environ.get("MLCICD_TERRAFORM"))
    cold_times, warm_times = [], []
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        rc = scratch / "terraformrc"
        rc.write_text(f'provider_installation {{\n  filesystem_mirror {{\n    path = "{MIRROR}"\n  }}\n}}\n')
        for n in range(rounds):
            cache = scratch / f"plugin-cache-{n}"
            cache.mkdir()
            for side in ("cold", "warm"):
                root = scratch / f"root-{n}-{side}"
                root.mkdir()
                (root / "main.tf").write_text(
                    'terraform {\n  required_providers {\n    aws = {\n      source  = "hashicorp/aws"\n'
                    f'      version = "{version}"\n    }}\n  }}\n}}\n')
                env = {**os.environ, "TF_CLI_CONFIG_FILE": str(rc), "TF_PLUGIN_CACHE_DIR": str(cache),
                       "TF_IN_AUTOMATION": "1", "TF_INPUT": "0"}
                elapsed = timed([*terraform, "init", "-backend=false"], env, cwd=root)
                (cold_times if side == "cold" else warm_times).append(elapsed)
                shutil.rmtree(root)
    cold, warm = statistics.median(cold_times), statistics.median(warm_times)
    report(f"terraform init, aws {version} (warm vs cold)", "lower is better", warm, cold)
    print(f"  saved per init: {cold - warm:.1f} s  (cold runs {cold_times}, warm runs {warm_times})")


def main(argv: list[str]) -> None:
    chosen = argv or ["pip", "init"]
    rounds = int(os.environ.get("ROUNDS", "2"))
    if "pip" in chosen:
        bench_pip(rounds)
    if "init" in chosen:
        bench_init(rounds)


if __name__ == "__main__":
    main(sys.argv[1:])
