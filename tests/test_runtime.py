"""The process environment is read once, into Runtime, and nothing downstream reads it again."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from mlcicd import aws, config, deploy, render
from mlcicd.cli import main
from mlcicd.runtime import Runtime
from tests.test_config import GOOD


def test_everything_mlcicd_reads_from_the_environment_is_in_runtime(tmp_path):
    runtime = Runtime.from_environ({
        "AWS_ENDPOINT_URL": "http://all", "AWS_ENDPOINT_URL_S3": "http://s3", "MLCICD_CONFIG": "x.yaml",
        "XDG_CACHE_HOME": str(tmp_path / "xdg"), "TF_CLI_CONFIG_FILE": "/etc/tf.rc", "HOME": "/home/u",
    })
    assert runtime.config_path == "x.yaml"
    assert runtime.cache_dir == tmp_path / "xdg" / "mlcicd"
    assert runtime.tf_cli_config_file == "/etc/tf.rc"
    assert (runtime.s3_endpoint, runtime.endpoint("STS")) == ("http://s3", "http://all")
    assert Runtime.from_environ({"HOME": "/home/u"}).cache_dir == Path("/home/u/.cache/mlcicd")


def test_one_endpoint_rule_for_boto3_and_the_rendered_backend(tmp_path):
    runtime = Runtime.from_environ({"AWS_ENDPOINT_URL": "http://all", "AWS_ENDPOINT_URL_DYNAMODB": "http://ddb"})
    assert render.backend_endpoints(runtime) == [("s3", "http://all"), ("sts", "http://all"),
                                                  ("dynamodb", "http://ddb")]
    assert aws.endpoint_url(runtime, "dynamodb") == "http://ddb"
    assert aws.endpoint_url(runtime, "s3") == "http://all"


def test_a_command_builds_one_runtime(tmp_path, monkeypatch):
    path = tmp_path / "mlcicd.yaml"
    path.write_text(GOOD)
    built = []
    original = Runtime.from_environ.__func__
    monkeypatch.setattr(Runtime, "from_environ", classmethod(lambda cls, environ=None: built.append(1) or
                                                             original(cls, environ)))
    result = CliRunner().invoke(main, ["render", "--all"], env={"MLCICD_CONFIG": str(path)})
    assert result.exit_code == 0, result.output
    assert built == [1]


def test_terraform_gets_the_users_cli_config_only_when_it_exists(tmp_path):
    path = tmp_path / "mlcicd.yaml"
    path.write_text(GOOD)
    cfg = config.load(path)
    own = tmp_path / "own.tfrc"
    own.write_text("")
    for given, expected in ((str(own), str(own)), (str(tmp_path / "missing"), str(cfg.workdir / "terraformrc"))):
        runtime = Runtime.from_environ({"TF_CLI_CONFIG_FILE": given, "XDG_CACHE_HOME": str(tmp_path / "c"),
                                        "MLCICD_TERRAFORM": "bundled"})
        workspace = deploy.Workspace(cfg, cfg.env("dev"), runtime)
        assert workspace.tf.child_env()["TF_CLI_CONFIG_FILE"] == expected
