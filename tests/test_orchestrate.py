"""Many environments: dependency order, parallelism, failure isolation, collected report."""

from __future__ import annotations

import threading

import pytest
from click.testing import CliRunner

from mlcicd import config as configmod
from mlcicd.cli import main
from mlcicd.errors import TerraformError
from mlcicd.orchestrate import EnvResult, dependencies, run_all
from tests.test_config import GOOD


@pytest.fixture
def envs(tmp_path):
    path = tmp_path / "mlcicd.yaml"
    path.write_text(GOOD)
    return configmod.load(path).environments


def test_dependencies_follow_config_and_reverse_for_destroy(envs):
    deps = dependencies(envs, ["data", "staging", "prod"])
    assert deps == {"data": set(), "staging": {"data"}, "prod": {"staging"}}
    # prod still waits for data when staging is not selected.
    assert dependencies(envs, ["data", "prod"]) == {"data": set(), "prod": {"data"}}
    assert dependencies(envs, ["data", "staging", "prod"], reverse=True) == {
        "data": {"staging"}, "staging": {"prod"}, "prod": set()}


def recorder():
    order: list[tuple[str, str]] = []
    lock = threading.Lock()
    active = {"now": 0, "max": 0}
    overlapped = threading.Event()

    def task(name, sink):
        with lock:
            order.append(("start", name))
            first = len(order) == 1
            active["now"] += 1
            active["max"] = max(active["max"], active["now"])
            if active["now"] == 2:
                overlapped.set()
        sink(f"working on {name}", False)
        if first:
            # The first task ends only once a second one runs beside it (or, if the orchestrator
            # does not run two at once, after the wait: then active["max"] stays 1 and the test fails).
            overlapped.wait(timeout=10)
        with lock:
            order.append(("end", name))
            active["now"] -= 1
        if name == "dev":
            raise TerraformError("terraform plan (dev) failed (exit 1): Error: boom")
        return EnvResult(name, "changes", "1 to create")

    return task, order, active


def test_order_parallelism_and_failure_isolation(envs):
    task, order, active = recorder()
    lines: list[str] = []
    report = run_all(envs, list(envs), task, parallelism=2, write=lambda t, e: lines.append(t))
    pos = {(kind, name): i for i, (kind, name) in enumerate(order)}
    assert pos[("end", "data")] < pos[("start", "staging")]
    assert pos[("end", "staging")] < pos[("start", "prod")]
    assert active["max"] == 2
    by_env = report.by_env()
    assert by_env["dev"].status == "failed" and "boom" in by_env["dev"].detail
    assert by_env["prod"].status == "changes"  # dev's failure hides nothing else
    assert [r.env for r in report.results] == list(envs)
    assert any("[5/5 done, 0 running, 1 failed]" in line for line in lines)
    # Every line of a task's output carries its environment's prefix.
    assert any(line.startswith("[staging]") and "working on staging" in line for line in lines)


def test_failed_dependency_skips_dependants(envs):
    def task(name, sink):
        if name == "data":
            raise TerraformError("data broke")
        return EnvResult(name, "no changes")

    report = run_all(envs, ["data", "staging", "prod", "devops"], task, parallelism=4, write=lambda t, e: None)
    by_env = report.by_env()
    assert by_env["staging"].status == "skipped" and "data failed" in by_env["staging"].detail
    assert by_env["prod"].status == "skipped"
    assert by_env["devops"].status == "no changes"


def test_grouped_output_is_one_block_per_environment(envs):
    lines: list[str] = []
    # dev and devops write their lines in turns, so ungrouped output would interleave them.
    turns = {name: [threading.Event() for _ in range(3)] for name in ("dev", "devops")}

    def task(name, sink):
        other = "devops" if name == "dev" else "dev"
        for i in range(3):
            if name == "devops":
                turns[other][i].wait(timeout=10)
            sink(f"{name} line {i}", False)
            turns[name][i].set()
            if name == "dev":
                turns[other][i].wait(timeout=10)
        return EnvResult(name, "no changes")

    run_all(envs, ["dev", "devops"], task, parallelism=2, write=lambda t, e: lines.append(t), grouped=True)
    body = [line for line in lines if " line " in line]
    assert body[:3] == [f"{body[0].split()[0]} line {i}" for i in range(3)]
    assert body[3:] == [f"{body[3].split()[0]} line {i}" for i in range(3)]


def test_ungrouped_output_interleaves_with_a_prefix_per_line(envs):
    lines: list[str] = []
    turns = {name: threading.Event() for name in ("dev", "devops")}

    def task(name, sink):
        other = "devops" if name == "dev" else "dev"
        if name == "devops":
            turns[other].wait(timeout=10)
        sink(f"{name} first", False)
        turns[name].set()
        turns[other].wait(timeout=10)
        sink(f"{name} second", False)
        return EnvResult(name, "no changes")

    run_all(envs, ["dev", "devops"], task, parallelism=2, write=lambda t, e: lines.append(t))
    body = [line for line in lines if line.startswith("[")]
    assert body[:2] == ["[dev]    dev first", "[devops] devops first"]


@pytest.mark.usefixtures("state_bucket")
def test_validate_reports_terraforms_error_once_and_whole(project):
    (project / "terraform" / "app" / "broken.tf").write_text(
        'resource "terraform_data" "broken" {\n  input = var.not_declared_anywhere\n}\n')
    result = CliRunner().invoke(main, ["--config", str(project / "mlcicd.yaml"), "validate", "app"])
    assert result.exit_code == 1
    text = result.output  # stdout and stderr, as a terminal shows them
    assert text.count('An input variable with the name "not_declared_anywhere"') == 1, text
    assert "app: failed: terraform validate (app) failed (exit 1) (Terraform's messages are above)" in text
    assert "1 of 1 environment(s) failed validation: app" in text


@pytest.mark.usefixtures("state_bucket")
def test_drift_over_real_environments(project):
    cfg = project / "mlcicd.yaml"
    cfg.write_text(cfg.read_text() + "  app2:\n    account: staging\n    dir: terraform/app\n"
                   "    assume_role: false\n    depends_on: [app]\n    vars:\n      greeting: hi\n")
    runner = CliRunner()
    args = ["--config", str(cfg)]
    applied = runner.invoke(main, [*args, "apply", "app", "--auto-approve"])
    assert applied.exit_code == 0, applied.output
    result = runner.invoke(main, [*args, "drift", "app", "app2", "-j", "2"])
    assert result.exit_code == 0, result.output
    assert "app: no changes: no drift" in result.output
    assert "app2: no changes: no drift" in result.output
    assert "[app2]" in result.output


def test_drift_needs_a_selection(project):
    result = CliRunner().invoke(main, ["--config", str(project / "mlcicd.yaml"), "drift"])
    assert result.exit_code == 2
    assert "--all" in result.output


@pytest.mark.usefixtures("state_bucket")
def test_plan_apply_and_destroy_all_in_dependency_order(project):
    cfg = project / "mlcicd.yaml"
    cfg.write_text(cfg.read_text() + "  app2:\n    account: staging\n    dir: terraform/app\n"
                   "    assume_role: false\n    depends_on: [app]\n    vars:\n      greeting: hi\n")
    runner = CliRunner()
    args = ["--config", str(cfg)]
    planned = runner.invoke(main, [*args, "plan", "app", "app2", "--out", str(project / "plans"),
                                   "--detailed-exitcode"])
    assert planned.exit_code == 2, planned.output
    assert "app: changes: 3 to create" in planned.output and "app2: changes: 3 to create" in planned.output
    assert (project / "plans/app/manifest.json").is_file() and (project / "plans/app2/manifest.json").is_file()

    refused = runner.invoke(main, [*args, "apply", "app", "app2"])
    assert refused.exit_code == 2 and "--auto-approve" in refused.output

    applied = runner.invoke(main, [*args, "apply", "app", "app2", "--auto-approve", "--group"])
    assert applied.exit_code == 0, applied.output
    assert "app: applied: 3 to create" in applied.output
    # app2 depends on app: grouped blocks appear in that order.
    assert applied.output.index("──── app ") < applied.output.index("──── app2 ")

    gone = runner.invoke(main, [*args, "destroy", "app", "app2", "--auto-approve"])
    assert gone.exit_code == 0, gone.output
    assert "app: applied: 3 to destroy" in gone.output
    # Reverse order for destroy: app2 finishes before app starts.
    assert gone.output.index("── app2: applied") < gone.output.index("── app: applied")


def test_several_environments_reject_offline(project):
    result = CliRunner().invoke(main, ["--config", str(project / "mlcicd.yaml"), "plan", "--all", "--offline"])
    assert result.exit_code == 2
    assert "validate --all --offline" in result.output
