"""`drift: {schedule}` in mlcicd.yaml reaches the devops environment's tfvars (the pipeline
module's drift_schedule), and MLCICD_ROLE=plan makes Terraform assume each account's read-only
plan role, as the PR preview and drift CodeBuild projects set it."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from mlcicd import config, render
from mlcicd.cli import main
from mlcicd.errors import ConfigError, UsageError
from mlcicd.runtime import Runtime
from tests.test_config import GOOD


def load(tmp_path, extra=""):
    path = tmp_path / "mlcicd.yaml"
    path.write_text(GOOD + extra)
    return config.load(path)


def tfvars(cfg, env: str, runtime: Runtime | None = None) -> dict:
    text, _ = render.render_text(cfg, cfg.env(env), runtime or Runtime())
    return json.loads(text)


@pytest.mark.parametrize(("extra", "expected"), [
    ("", "rate(6 hours)"),
    ("drift: {schedule: rate(1 day)}\n", "rate(1 day)"),
    ('drift: {schedule: "cron(0 3 * * ? *)"}\n', "cron(0 3 * * ? *)"),
    ("drift: {schedule: null}\n", None),
    ("drift: {}\n", "rate(6 hours)"),
])
def test_schedule_reaches_only_the_devops_tfvars(tmp_path, extra, expected):
    cfg = load(tmp_path, extra)
    assert cfg.drift.schedule == expected
    devops = tfvars(cfg, "devops")
    assert "drift_schedule" in devops and devops["drift_schedule"] == expected
    assert "drift_schedule" not in tfvars(cfg, "staging")


@pytest.mark.parametrize(("extra", "key"), [
    ("drift: {schedule: every 6 hours}\n", "drift.schedule"),
    ("drift: {schedule: rate(0 hours)}\n", "drift.schedule"),
    ("drift: {schedule: 6}\n", "drift.schedule"),
    ("drift: {interval: rate(1 day)}\n", "drift"),
    ("drift: rate(1 day)\n", "drift"),
])
def test_a_bad_drift_setting_names_the_key(tmp_path, extra, key):
    with pytest.raises(ConfigError) as error:
        load(tmp_path, extra)
    assert key in str(error.value) and "mlcicd.yaml" in str(error.value)
    result = CliRunner().invoke(main, ["--config", str(tmp_path / "mlcicd.yaml"), "render", "devops"])
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_plan_role_is_assumed_in_every_account_with_mlcicd_role_plan(tmp_path):
    cfg = load(tmp_path, "environments:\n  data:\n    assume_role: false\n")
    deploy = {name: tfvars(cfg, name)["assume_role_arn"] for name in ("devops", "data", "staging")}
    assert deploy == {"devops": "", "data": "", "staging": "arn:aws:iam::333333333333:role/demo-staging-deploy"}
    plan_runtime = Runtime.from_environ({"MLCICD_ROLE": "plan"})
    for name in ("data", "staging", "prod"):
        account = cfg.env(name).account_id
        assert tfvars(cfg, name, plan_runtime)["assume_role_arn"] == f"arn:aws:iam::{account}:role/demo-{name}-plan"
    assert tfvars(cfg, "devops", plan_runtime)["assume_role_arn"] == ""  # the read-only CodeBuild role itself
    raw = load(tmp_path, "environments:\n  elsewhere:\n    account: \"999999999999\"\n")
    with pytest.raises(UsageError, match="'elsewhere' has no read-only plan role"):
        tfvars(raw, "elsewhere", plan_runtime)
    with pytest.raises(UsageError, match="MLCICD_ROLE='admin'"):
        tfvars(cfg, "staging", Runtime.from_environ({"MLCICD_ROLE": "admin"}))
