"""Config errors name the file and the key, exit 2, and write nothing."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlcicd import config
from mlcicd.cli import main
from mlcicd.errors import ConfigError

GOOD = textwrap.dedent("""\
    project: demo
    region: us-east-1
    repository:
      name: acme/ml-models
      branch: main
    accounts:
      devops: "111111111111"
      dev: "222222222222"
      staging: "333333333333"
      prod: "444444444444"
      data: "555555555555"
    """)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mlcicd.yaml"
    path.write_text(text)
    return path


def test_valid_config_is_typed_and_frozen(tmp_path):
    cfg = config.load(write(tmp_path, GOOD))
    assert cfg.project == "demo"
    assert cfg.accounts["prod"] == "444444444444"
    assert not cfg.single_account
    assert set(cfg.environments) == {"devops", "dev", "staging", "prod", "data"}
    staging = cfg.env("staging")
    assert staging.account_id == "333333333333"
    assert staging.dir == (tmp_path / "terraform/envs/ml").resolve()
    assert cfg.state.bucket == "demo-tfstate-111111111111-us-east-1"
    assert cfg.state.lock == "s3"
    with pytest.raises(AttributeError):
        cfg.project = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        cfg.accounts["prod"] = "1"  # type: ignore[index]


def test_single_account_mode(tmp_path):
    text = GOOD
    for digit in "2345":
        text = text.replace(digit * 12, "1" * 12)
    cfg = config.load(write(tmp_path, text))
    assert cfg.single_account
    # Role names carry the environment, so one account holds them all without collisions.
    arns = {cfg.deploy_role_arn(e) for e in cfg.environments.values()}
    assert len(arns) == len(cfg.environments)


def test_unquoted_account_ids_are_accepted(tmp_path):
    cfg = config.load(write(tmp_path, GOOD.replace('"111111111111"', "111111111111")))
    assert cfg.accounts["devops"] == "111111111111"


def test_environment_dir_may_be_any_root_module_in_the_project(tmp_path):
    text = GOOD + textwrap.dedent("""\
        environments:
          sandbox:
            account: "999999999999"
            dir: infra/sandbox
            depends_on: [data]
            vars:
              instance_type: ml.m5.large
              tags: {team: ml}
        """)
    cfg = config.load(write(tmp_path, text))
    env = cfg.env("sandbox")
    assert env.dir == (tmp_path / "infra/sandbox").resolve()
    assert env.account_id == "999999999999"
    assert env.account_role is None
    assert env.vars["tags"]["team"] == "ml"


CASES = [
    # (description, edit to apply, expected key, expected words)
    ("missing key", lambda t: t.replace("region: us-east-1\n", ""), "region", "missing"),
    ("bad account id", lambda t: t.replace('"444444444444"', '"12345"'), "accounts.prod",
     "'12345' is not a 12-digit account id"),
    ("missing account", lambda t: t.replace('  data: "555555555555"\n', ""), "accounts.data", "missing"),
    ("bad region", lambda t: t.replace("us-east-1", "mars-north-9x"), "region", "not an AWS region"),
    ("unknown top-level key", lambda t: t + "colour: blue\n", "colour", "unknown key"),
    ("bad repository", lambda t: t.replace("acme/ml-models", "not a repo"), "repository.name", "owner/repo"),
    ("yaml syntax", lambda t: t + "accounts: [\n", None, "YAML syntax error at line"),
    ("not a mapping", lambda t: "- just\n- a list\n", None, "must be a mapping"),
    ("value with quotes and newline", lambda t: t.replace("project: demo", 'project: "de\\"mo\\n"'),
     "project", "must be 3-32 lowercase"),
    ("bad lock", lambda t: t + "state:\n  lock: etcd\n", "state.lock", "'s3' or 'dynamodb'"),
    ("env outside project", lambda t: t + "environments:\n  x:\n    account: dev\n    dir: ../../etc\n",
     "environments.x.dir", "outside the project"),
    ("env dir name too long", lambda t: t + f"environments:\n  x:\n    account: dev\n    dir: {'d' * 256}\n",
     "environments.x.dir", "at most 255 bytes per directory name"),
    # 2,177 characters but 4,337 bytes: the limit is in bytes, as the file system counts
    ("env dir path too long",
     lambda t: t + f"environments:\n  x:\n    account: dev\n    dir: {'/'.join(['é' * 120] * 18)}\n",
     "environments.x.dir", "too long for a directory path"),
    ("env name traversal", lambda t: t + "environments:\n  ../x:\n    account: dev\n",
     "environments.'../x'", "environment names"),
    ("env unknown account", lambda t: t + "environments:\n  x:\n    account: qa\n",
     "environments.x.account", "12-digit account id"),
    ("reserved var", lambda t: t + "environments:\n  dev:\n    vars:\n      region: eu-west-1\n",
     "environments.dev.vars.region", "set by mlcicd"),
    ("dependency cycle", lambda t: t + "environments:\n  data:\n    depends_on: [prod]\n",
     "environments.data.depends_on", "dependency cycle"),
    ("unknown dependency", lambda t: t + "environments:\n  dev:\n    depends_on: [qa]\n",
     "environments.dev.depends_on", "'qa' is not a known environment"),
]


@pytest.mark.parametrize("name,edit,key,words", CASES, ids=[c[0] for c in CASES])
def test_config_errors_name_file_and_key(tmp_path, name, edit, key, words):
    path = write(tmp_path, edit(GOOD))
    with pytest.raises(ConfigError) as info:
        config.load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    if key:
        assert f": {key}" in message
    assert words in message


@pytest.mark.parametrize("name,edit,key,words", CASES[:6], ids=[c[0] for c in CASES[:6]])
def test_cli_reports_config_errors_with_exit_2_and_writes_nothing(tmp_path, name, edit, key, words):
    path = write(tmp_path, edit(GOOD))
    before = sorted(p.name for p in tmp_path.iterdir())
    result = CliRunner().invoke(main, ["--config", str(path), "render", "--all"])
    assert result.exit_code == 2, result.output
    assert words in result.output
    assert "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_missing_config_file_says_how_to_fix(tmp_path):
    result = CliRunner().invoke(main, ["--config", str(tmp_path / "nope.yaml"), "render", "--all"])
    assert result.exit_code == 2
    assert "file not found" in result.output and "--config" in result.output


def test_unknown_environment_lists_known_ones(tmp_path):
    path = write(tmp_path, GOOD)
    result = CliRunner().invoke(main, ["--config", str(path), "render", "qa"])
    assert result.exit_code == 2
    assert "environments.qa: unknown environment (known: data, dev, devops, prod, staging)" in result.output


def test_config_path_from_environment(tmp_path):
    path = write(tmp_path, GOOD)
    assert config.resolve_path(None, str(path)) == path
    assert config.resolve_path("other.yaml", str(path)) == Path("other.yaml")
    assert config.resolve_path(None, None) == Path("mlcicd.yaml")
    result = CliRunner().invoke(main, ["render", "--all"], env={"MLCICD_CONFIG": str(path)})
    assert result.exit_code == 0, result.output
    assert (tmp_path / ".mlcicd/staging/terraform.tfvars.json").is_file()
