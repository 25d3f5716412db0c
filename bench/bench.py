"""mlcicd benchmarks. Each figure is a ratio measured side by side in one run, alternating the two
sides so machine noise hits both alike. Run by hand, never as a test:

    python bench/bench.py            # every figure
    python bench/bench.py help plan  # some of them: help, plan, parallel, review, render

Every figure is whole-process: what a user or CodeBuild waits for, interpreter start included.

Needs the test extra (moto server for the S3 backend on 127.0.0.1).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "builtin-root"
ACCOUNT = "123456789012"


def median_pair(a: Callable[[], None], b: Callable[[], None], rounds: int) -> tuple[float, float]:
    """Median wall time of a and b, run alternately."""
    ta, tb = [], []
    for _ in range(rounds):
        for fn, out in ((a, ta), (b, tb)):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return statistics.median(ta), statistics.median(tb)


def median_pair_cpu(a: Callable[[], None], b: Callable[[], None], rounds: int) -> tuple[tuple[float, float], ...]:
    """(wall, cpu) medians of a and b, run alternately. CPU is the children's user + system time:
    on a loaded machine it still measures the work when wall time mostly measures the queue."""
    import resource

    samples: dict[str, list[tuple[float, float]]] = {"a": [], "b": []}
    for _ in range(rounds):
        for key, fn in (("a", a), ("b", b)):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            fn()
            wall = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            samples[key].append((wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime))
    return tuple((statistics.median(w for w, _ in samples[k]), statistics.median(c for _, c in samples[k]))
                 for k in ("a", "b"))


def run(argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
    subprocess.run(argv, env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def report(name: str, target: str, ours: float, base: float, unit: str = "s") -> None:
    ratio = ours / base if base else float("inf")
    print(f"{name:<44} {ours:8.3f}{unit} vs {base:8.3f}{unit}  ratio {ratio:5.2f}×  (target {target})")


class Emulator:
    def __enter__(self) -> Emulator:
        from moto.server import ThreadedMotoServer

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        import logging

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.stop()


def project(tmp: Path, envs: int, emulator_url: str) -> tuple[Path, dict[str, str]]:
    """A project with `envs` environments on the built-in-resources fixture root."""
    root = tmp / "proj"
    shutil.copytree(FIXTURE, root / "terraform" / "app")
    lines = [
        "project: bench", "region: us-east-1", "repository: {name: acme/ml, branch: main}",
        "accounts: {" + ", ".join(f'{k}: "{ACCOUNT}"' for k in ("devops", "dev", "staging", "prod", "data")) + "}",
        "state: {bucket: bench-state}", "environments:",
    ]
    for i in range(envs):
        lines += [f"  app{i}:", "    account: staging", "    dir: terraform/app", "    assume_role: false",
                  f"    vars: {{greeting: hello{i}, size: 3}}"]
    (root / "mlcicd.yaml").write_text("\n".join(lines) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TF_"))}
    env.update(AWS_ENDPOINT_URL=emulator_url, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
               AWS_DEFAULT_REGION="us-east-1", MLCICD_TERRAFORM="bundled", CI="true",
               XDG_CACHE_HOME=str(tmp / "cache"))
    import boto3

    boto3.client("s3", endpoint_url=emulator_url, region_name="us-east-1", aws_access_key_id="bench",
                 aws_secret_access_key="bench").create_bucket(Bucket="bench-state")
    return root, env


MLCICD = [sys.executable, "-m", "mlcicd"]
TFCORE = [sys.executable, "-m", "mlcicd.tfcore"]


def bench_help() -> None:
    ours, base = median_pair(lambda: run([*MLCICD, "--help"]), lambda: run([sys.executable, "-c", "import click"]), 21)
    report("mlcicd --help vs python -c 'import click'", "≤ 2.0×", ours, base)


def bench_plan() -> None:
    with Emulator() as emu, tempfile.TemporaryDirectory() as tmp:
        root, env = project(Path(tmp), 1, emu.url)
        cfg = ["--config", str(root / "mlcicd.yaml")]
        run([*MLCICD, *cfg, "plan", "app0"], env=env)  # renders and inits once
        backend = root / ".mlcicd" / "app0" / "backend.hcl"
        tfvars = root / ".mlcicd" / "app0" / "terraform.tfvars.json"
        direct_env = {**env, "TF_DATA_DIR": str(Path(tmp) / "direct-data"), "TF_IN_AUTOMATION": "1"}
        app = root / "terraform" / "app"

        def direct() -> None:
            run([*TFCORE, "init", "-input=false", "-reconfigure", f"-backend-config={backend}", "-no-color"],
                env=direct_env, cwd=app)
            run([*TFCORE, "plan", "-input=false", f"-var-file={tfvars}", f"-out={tmp}/direct.tfplan", "-no-color"],
                env=direct_env, cwd=app)

        ours, base = median_pair(lambda: run([*MLCICD, *cfg, "plan", "app0"], env=env), direct, 5)
        report("mlcicd plan ENV vs terraform init + plan", "≤ 1.15×", ours, base)


def bench_parallel() -> None:
    with Emulator() as emu, tempfile.TemporaryDirectory() as tmp:
        root, env = project(Path(tmp), 8, emu.url)
        cfg = ["--config", str(root / "mlcicd.yaml")]
        # The fixture environments by name: --all would add the default ones (devops, ...).
        plan = [*MLCICD, *cfg, "plan", *(f"app{i}" for i in range(8))]
        run([*plan, "-j", "4"], env=env)  # init every env once
        ours, base = median_pair(lambda: run([*plan, "-j", "4"], env=env), lambda: run([*plan, "-j", "1"], env=env), 3)
        report("plan of 8 environments, -j 4 vs -j 1", "≤ 0.6×", ours, base)


def big_plan(path: Path, changes: int, *, whole: bool = False) -> None:
    """A plan.json with `changes` resource changes of every kind, shaped like Terraform's: only
    the resource_changes a review reads, or (`whole`) also the planned_values and prior_state
    copies of each resource's values that Terraform writes beside them."""
    kinds = [["create"], ["update"], ["delete"], ["delete", "create"], ["create", "delete"], ["no-op"]]
    rcs, planned, prior = [], [], []
    for i in range(changes):
        actions = kinds[i % len(kinds)]
        before = None if actions == ["create"] else {"key": f"k{i}", "body": "x" * 200}
        after = None if actions == ["delete"] else {"key": f"k{i}", "body": "y" * 200}
        address = f"module.m{i % 50}.aws_s3_object.obj[{i}]"
        where = {"mode": "managed", "type": "aws_s3_object", "name": "obj", "index": i,
                 "provider_name": "registry.terraform.io/hashicorp/aws"}
        rcs.append({"address": address, "module_address": f"module.m{i % 50}", **where,
                    "change": {"actions": actions, "before": before, "after": after, "after_unknown": {},
                               "before_sensitive": {}, "after_sensitive": {"body": i % 7 == 0}}})
        if after is not None:
            planned.append({"address": address, **where, "schema_version": 0, "values": after, "sensitive_values": {}})
        if before is not None:
            prior.append({"address": address, **where, "schema_version": 0, "values": before, "sensitive_values": {}})
    plan = {"format_version": "1.2", "terraform_version": "1.15.5", "resource_changes": rcs,
            "resource_drift": [], "output_changes": {}, "variables": {}, "configuration": {"root_module": {}}}
    if whole:
        plan["planned_values"] = {"root_module": {"resources": planned}}
        plan["prior_state"] = {"format_version": "1.0", "values": {"root_module": {"resources": prior}}}
    path.write_text(json.dumps(plan))


def bench_review() -> None:
    """Whole process, as CodeBuild runs it: `mlcicd review` of a 10,000-change plan.json without
    checkov vs json.load of the same file; then with checkov vs checkov alone on a smaller plan
    (checkov runs beside the review's own work, so the review should add little to it)."""
    with tempfile.TemporaryDirectory() as tmp:
        root, env = project_without_backend(Path(tmp), 1)
        # Bytecode as an installed package has it (pip compiles at install), both sides alike:
        # with PYTHONDONTWRITEBYTECODE set, every run would compile mlcicd from source.
        env = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        review = [*MLCICD, "--config", str(root / "mlcicd.yaml"), "review", "--format", "json"]
        path = Path(tmp) / "plan.json"
        big_plan(path, 10_000)
        load = [sys.executable, "-c", f"import json; json.load(open({str(path)!r}))"]
        run([*review, str(path), "--no-checkov"], env=env)  # writes the bytecode once
        run(load, env=env)
        ours, base = median_pair_cpu(lambda: run([*review, str(path), "--no-checkov"], env=env),
                                     lambda: run(load, env=env), 5)
        report("review --no-checkov, 10,000 changes vs json.load", "≤ 2.0×", ours[0], base[0])
        report("  the same in CPU time (user + system)", "≤ 2.0×", ours[1], base[1])
        # The same changes in a plan.json as Terraform writes it: the values again in
        # planned_values and prior_state, which json.load reads and a review skips (but for marks).
        whole = Path(tmp) / "whole.json"
        big_plan(whole, 10_000, whole=True)
        load_whole = [sys.executable, "-c", f"import json; json.load(open({str(whole)!r}))"]
        ours, base = median_pair_cpu(lambda: run([*review, str(whole), "--no-checkov"], env=env),
                                     lambda: run(load_whole, env=env), 5)
        report("  the same, plan.json as Terraform writes it", "none", ours[0], base[0])
        small = Path(tmp) / "small.json"
        big_plan(small, 1_000)
        checkov = [sys.executable, "-m", "checkov.main", "-f", str(small), "--framework", "terraform_plan",
                   "-o", "json", "--compact", "--skip-download"]
        run(checkov, env=env)  # checkov's own bytecode, written once
        ours, base = median_pair(lambda: run([*review, str(small), "--checkov"], env=env),
                                 lambda: run(checkov, env=env), 2)
        report("review --checkov, 1,000 changes vs checkov alone", "≤ 1.1×", ours, base)


def bench_render() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root, env = project_without_backend(Path(tmp), 50)
        cfg = ["--config", str(root / "mlcicd.yaml")]
        times = []
        for _ in range(7):
            shutil.rmtree(root / ".mlcicd", ignore_errors=True)
            start = time.perf_counter()
            run([*MLCICD, *cfg, "render", "--all"], env=env)
            times.append(time.perf_counter() - start)
        print(f"{'render --all, 50 environments (wall)':<44} {statistics.median(times):8.3f}s"
              f"{'':24}(target ≤ 0.2 s)")


def project_without_backend(tmp: Path, envs: int) -> tuple[Path, dict[str, str]]:
    root = tmp / "proj"
    root.mkdir()
    lines = ["project: bench", "region: us-east-1", "repository: {name: acme/ml, branch: main}",
             "accounts: {" + ", ".join(f'{k}: "{ACCOUNT}"' for k in ("devops", "dev", "staging", "prod", "data"))
             + "}", "environments:"]
    for i in range(envs):
        lines += [f"  app{i}:", "    account: staging", "    dir: terraform/app", f"    vars: {{greeting: hi{i}}}"]
    (root / "mlcicd.yaml").write_text("\n".join(lines) + "\n")
    return root, dict(os.environ)


FIGURES = {"help": bench_help, "render": bench_render, "review": bench_review, "plan": bench_plan,
           "parallel": bench_parallel}


def main(names: list[str]) -> None:
    for name in names or list(FIGURES):
        FIGURES[name]()


if __name__ == "__main__":
    main(sys.argv[1:])
