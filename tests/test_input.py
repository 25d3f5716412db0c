"""Every input mistake gets one clear message, and no input becomes something else.

Each case runs the real CLI (click's CliRunner, or a subprocess where the process environment
itself is the input) and asserts the exit code and the message.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import hcl2
import pytest
from click.testing import CliRunner

from mlcicd import hcl
from mlcicd.cli import main
from tests.conftest import FIXTURES, write_config
from tests.test_offline import offline_env, schema_cache  # noqa: F401 - fixtures

HEAD = textwrap.dedent("""\
    project: demo
    region: {region}
    repository: {{name: acme/ml-models, branch: main}}
    accounts:
      devops: "111111111111"
      dev: "222222222222"
      staging: "333333333333"
      prod: {prod}
      data: "555555555555"
    """)


def project(tmp_path: Path, extra: str = "", *, prod: str = '"444444444444"', region: str = "us-east-1",
            name: str = "mlcicd.yaml") -> Path:
    root = tmp_path / "proj"
    shutil.copytree(FIXTURES / "builtin-root", root / "terraform" / "app")
    path = root / name
    path.write_text(HEAD.format(prod=prod, region=region) + extra, encoding="utf-8")
    return path


def cli(path: Path, *args: str, env: dict | None = None):
    result = CliRunner().invoke(main, ["--config", str(path), *args], env=env)
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def tfvars(path: Path, env: str) -> dict:
    return json.loads((path.parent / ".mlcicd" / env / "terraform.tfvars.json").read_text())


APP = "environments:\n  app: {account: staging, dir: terraform/app, assume_role: false, vars: {greeting: hi}}\n"


# -- values read as written, or refused --------------------------------------------------------


def test_an_unquoted_account_id_with_a_leading_zero_is_taken_as_written(tmp_path):
    path = project(tmp_path, APP, prod="012345670123")
    result = cli(path, "render", "prod")
    assert result.exit_code == 0, result.output
    assert tfvars(path, "prod")["account_id"] == "012345670123"  # not octal 001402433619


@pytest.mark.parametrize(("written", "reading"), [
    ("1:0:0", "3600 by YAML 1.1 readers, '1:0:0' by YAML 1.2 readers"),
    ("0o17", "'0o17' by YAML 1.1 readers, 15 by YAML 1.2 readers"),
    ("on", "True by YAML 1.1 readers, 'on' by YAML 1.2 readers"),
])
def test_values_yaml_versions_read_differently_are_refused_with_quote_it(tmp_path, written, reading):
    path = project(tmp_path, APP.replace("greeting: hi", f"greeting: {written}"))
    result = cli(path, "render", "--all")
    assert result.exit_code == 2, result.output
    assert f"environments.app.vars.greeting: {written} (line 11) is read as {reading}: quote it" in result.output
    assert not (path.parent / ".mlcicd").exists()


def test_a_base_60_account_id_is_refused(tmp_path):
    result = cli(project(tmp_path, prod="1:0:0"), "render", "--all")
    assert result.exit_code == 2
    assert "accounts.prod: 1:0:0 (line 8) is read as 3600 by YAML 1.1 readers" in result.output


def test_a_number_where_text_is_expected_says_quote_it(tmp_path):
    path = project(tmp_path, "state: {bucket: 1234}\n")
    result = cli(path, "render", "--all")
    assert result.exit_code == 2
    assert "state.bucket: 1234 is read as a int, not text: quote it" in result.output


@pytest.mark.parametrize(("extra", "lines"), [
    ("accounts:\n  devops: '1'\n", "duplicate key 'accounts' at line 10 (first at line 4)"),
    ("environments:\n  staging: {account: dev}\n  staging: {account: prod}\n",
     "duplicate key 'staging' at line 12 (first at line 11)"),
])
def test_duplicate_keys_are_an_error_naming_both_lines(tmp_path, extra, lines):
    result = cli(project(tmp_path, extra), "render", "--all")
    assert result.exit_code == 2, result.output
    assert lines in result.output


def test_an_alias_bomb_is_refused_before_it_expands(tmp_path):
    bomb = "".join(f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(9))
    path = project(tmp_path, "masks:\n  env: &a [x]\n  patterns: []\nx_bomb:\n" + textwrap.indent(bomb, "  "))
    done = subprocess.run([sys.executable, "-m", "mlcicd", "--config", str(path), "render", "--all"],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": _pythonpath()})
    assert done.returncode == 2, done.stderr
    assert "anchors and aliases (&name, *name) are not supported: the value anchored at line" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(("tag", "words"), [
    ("!!binary aGk=", "unsupported YAML at line 11"),
    ("!!python/object/apply:os.system ['id']", "unsupported YAML at line 11"),
    ("!!set {a}", "unsupported YAML at line 11"),
])
def test_tags_other_than_the_core_ones_are_refused(tmp_path, tag, words):
    result = cli(project(tmp_path, APP.replace("greeting: hi", f"greeting: {tag}")), "render", "--all")
    assert result.exit_code == 2, result.output
    assert words in result.output


@pytest.mark.parametrize(("extra", "key"), [
    ('environments:\n  "app\\n": {account: dev, dir: terraform/app}\n', "environments.'app\\n'"),
    ('environments:\n  app: {account: "123456789012\\n", dir: terraform/app}\n', "environments.app.account"),
    ('state: {bucket: "tfstate-test\\n"}\n', "state.bucket"),
])
def test_names_are_matched_whole_a_trailing_newline_is_refused(tmp_path, extra, key):
    path = project(tmp_path, extra)
    result = cli(path, "render", "--all")
    assert result.exit_code == 2, result.output
    assert f"{path}: {key}" in result.output
    assert not (path.parent / ".mlcicd").exists()


# -- regions and partitions --------------------------------------------------------------------


def test_a_misspelt_region_is_refused_with_a_suggestion(tmp_path):
    result = cli(project(tmp_path, region="us-eest-1"), "render", "--all")
    assert result.exit_code == 2
    assert "region: 'us-eest-1' is not a region AWS's endpoint data knows (did you mean " in result.output
    assert "'us-east-1'" in result.output.split("did you mean", 1)[1].split("?")[0]
    assert "allow_regions: [us-eest-1]" in result.output


def test_a_region_newer_than_botocore_is_allowed_when_listed(tmp_path):
    refused = cli(project(tmp_path / "a", region="eu-central-9"), "render", "dev")
    assert refused.exit_code == 2 and "allow_regions: [eu-central-9]" in refused.output
    allowed = project(tmp_path / "b", "allow_regions: [eu-central-9]\n", region="eu-central-9")
    result = cli(allowed, "render", "dev")
    assert result.exit_code == 0, result.output
    assert tfvars(allowed, "dev")["region"] == "eu-central-9"


def test_partitions_supported_and_not(tmp_path):
    iso = cli(project(tmp_path / "iso", region="us-iso-east-1"), "render", "dev")
    assert iso.exit_code == 2
    assert "'us-iso-east-1' is in the aws-iso partition; mlcicd supports aws, aws-cn, aws-us-gov" in iso.output
    gov = project(tmp_path / "gov", region="us-gov-west-1")
    assert cli(gov, "render", "dev").exit_code == 0
    assert tfvars(gov, "dev")["assume_role_arn"] == "arn:aws-us-gov:iam::222222222222:role/demo-dev-deploy"


# -- what is rendered, and where ---------------------------------------------------------------


def test_a_config_file_name_with_a_newline_stays_in_the_comment_line(tmp_path):
    path = project(tmp_path, APP, name='x\n}\nbucket = "evil.yaml')
    result = cli(path, "render", "app")
    assert result.exit_code == 0, result.output
    backend = (path.parent / ".mlcicd/app/backend.hcl").read_text()
    assert backend.splitlines()[0] == "# Generated by mlcicd from x\\x0a}\\x0abucket = \"evil.yaml. Do not edit: " \
                                      "change x\\x0a}\\x0abucket = \"evil.yaml and run `mlcicd render`."
    assert hcl.attr(hcl2.loads(backend), "bucket") == "demo-tfstate-111111111111-us-east-1"


def test_a_symlinked_work_dir_is_refused_and_nothing_is_written_through_it(tmp_path):
    path = project(tmp_path, APP)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (path.parent / ".mlcicd").symlink_to(elsewhere)
    result = cli(path, "render", "--all")
    assert result.exit_code == 2, result.output
    assert f"refusing to write under {path.parent / '.mlcicd'}: it is a symlink (to {elsewhere})" in result.output
    assert list(elsewhere.iterdir()) == []


def test_an_environment_named_like_a_file_mlcicd_keeps_is_refused(tmp_path):
    result = cli(project(tmp_path, "environments:\n  terraformrc: {account: dev}\n"), "render", "--all")
    assert result.exit_code == 2
    assert "environments.terraformrc: 'terraformrc' is reserved" in result.output


def test_an_unknown_environment_gets_a_did_you_mean(tmp_path):
    result = cli(project(tmp_path), "plan", "stagin")
    assert result.exit_code == 2
    assert "environments.stagin: unknown environment (known: data, dev, devops, prod, staging)" in result.output
    assert "hint: did you mean 'staging'?" in result.output


def test_an_unknown_dependency_gets_a_did_you_mean(tmp_path):
    result = cli(project(tmp_path, "environments:\n  dev: {depends_on: [dta]}\n"), "render", "--all")
    assert result.exit_code == 2
    assert "environments.dev.depends_on: 'dta' is not a known environment" in result.output
    assert "hint: did you mean 'data'?" in result.output


def test_only_declared_variables_are_rendered_and_an_undeclared_var_is_an_error(tmp_path):
    extra = "environments:\n  toy: {account: devops, dir: terraform/app, vars: {greeting: hi}}\n"
    path = project(tmp_path, extra)
    assert cli(path, "render", "toy").exit_code == 0
    written = tfvars(path, "toy")
    declared = {"project", "environment", "region", "accounts", "account_id", "assume_role_arn", "repository",
                "branch", "greeting"}
    assert set(written) - {"//"} == declared  # no connection_arn or state_bucket: toy is not the pipeline
    typo = project(tmp_path / "typo", extra.replace("greeting", "greting"))
    result = cli(typo, "render", "toy")
    assert result.exit_code == 2
    assert ("environments.toy.vars.greting: the root module " in result.output
            and "declares no variable 'greting' (did you mean 'greeting'?)" in result.output)


def test_a_user_environment_in_the_devops_account_is_planned_without_the_connection_gate(
        tmp_path, aws_env, state_bucket):
    extra = "state: {bucket: tfstate-test}\nenvironments:\n  toy: {account: devops, dir: terraform/app, " \
            "vars: {greeting: hi}}\n"
    path = project(tmp_path, extra)
    path.write_text(path.read_text().replace('devops: "111111111111"', 'devops: "123456789012"'))
    result = cli(path, "plan", "toy")
    assert result.exit_code == 0, result.output
    assert "GitHub connection" not in result.output
    devops = cli(path, "plan", "devops")  # the pipeline's environment keeps its gate
    assert devops.exit_code == 1 and "no GitHub connection is recorded" in devops.output


# -- the process environment: unwritable HOME, read-only checkout, missing cache ---------------


def _pythonpath() -> str:
    return str(Path(__file__).resolve().parents[1])


@functools.cache
def _can_mount_read_only() -> bool:
    probe = "mount --bind /tmp /tmp && mount -o remount,bind,ro /tmp && ! touch /tmp/.mlcicd-ro-probe"
    try:
        return subprocess.run(["unshare", "-m", "sh", "-c", probe], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def run_with_read_only(paths: list[Path], argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run `mlcicd argv` with `paths` read-only for real: a read-only bind mount in a private
    mount namespace when running as root (root ignores permission bits), chmod otherwise."""
    command = [sys.executable, "-m", "mlcicd", *argv]
    full_env = {"PATH": os.environ["PATH"], "PYTHONPATH": _pythonpath(), "MLCICD_TERRAFORM": "bundled", **env}
    if not paths:
        return subprocess.run(command, capture_output=True, text=True, env=full_env, timeout=300)
    if os.geteuid() == 0:
        if not _can_mount_read_only():
            pytest.skip("running as root without a private mount namespace: no way to make a directory "
                        "read-only for this process")
        mounts = " && ".join(f"mount --bind '{p}' '{p}' && mount -o remount,bind,ro '{p}'" for p in paths)
        return subprocess.run(["unshare", "-m", "sh", "-c", f'{mounts} && exec "$@"', "sh", *command],
                              capture_output=True, text=True, env=full_env, timeout=300)
    for p in paths:
        p.chmod(0o555)
    try:
        return subprocess.run(command, capture_output=True, text=True, env=full_env, timeout=300)
    finally:
        for p in paths:
            p.chmod(0o755)


@pytest.mark.parametrize("argv,words,code", [
    (["review", "{long}"], "cannot use the path", 2),
    (["review", "{loop}"], "is neither a plan directory nor a plan.json file", 2),
    (["apply", "app", "--plan", "{long}"], "cannot read (File name too long)", 1),
    (["plan", "app", "--offline", "--out", "{long}/plan"], "/plan (File name too long)", 1),
    (["--config", "{long}.yaml", "render", "--all"], ".yaml: cannot read: File name too long", 2),
])
def test_a_path_the_file_system_cannot_look_up_is_named_with_the_reason(tmp_path, argv, words, code):
    """A name longer than the file system allows, or a symlink loop, anywhere a path is taken:
    an error naming the path and the reason, never an OSError traceback."""
    path = project(tmp_path, "environments:\n  app: {account: staging, dir: terraform/app}\n")
    (tmp_path / "loop").symlink_to(tmp_path / "loop2")
    (tmp_path / "loop2").symlink_to(tmp_path / "loop")
    paths = {"long": str(tmp_path / ("x" * 300)), "loop": str(tmp_path / "loop" / "plan")}
    args = [a.format(**paths) for a in argv]
    result = cli(path, *args) if args[0] != "--config" else CliRunner().invoke(main, args)
    assert result.exit_code == code, (result.output, result.exception)
    assert result.output.startswith("Error: ") or "\nError: " in result.output or "(File name" in result.output
    assert words in result.output
    assert not isinstance(result.exception, OSError)


def test_any_other_file_system_failure_names_the_path_and_exits_1():
    """An I/O error (a vanished network mount, a failing disk) is an operation that failed."""
    import errno

    from mlcicd.cli.base import _path_error

    error = _path_error(OSError(errno.EIO, "Input/output error", "/mnt/plans/tfplan"))
    assert (error.exit_code, str(error)) == (1, "/mnt/plans/tfplan: Input/output error")


def test_render_all_works_with_a_read_only_home(tmp_path):
    path = project(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    done = run_with_read_only([home], ["--config", str(path), "render", "--all"], {"HOME": str(home)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("rendered") == 5 and "Traceback" not in done.stderr


def test_a_read_only_checkout_names_the_path_and_what_to_do(tmp_path):
    path = project(tmp_path)
    done = run_with_read_only([path.parent], ["--config", str(path), "render", "--all"],
                              {"HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert done.returncode == 1, done.stderr
    assert f"Error: cannot write {path.parent / '.mlcicd'}: Read-only file system" in done.stderr
    assert "make it writable, or run from a writable copy of the checkout" in done.stderr
    assert "Traceback" not in done.stderr


def test_init_with_a_read_only_cache_says_to_set_xdg_cache_home(tmp_path):
    path = project(tmp_path, APP)
    home = tmp_path / "home"
    home.mkdir()
    done = run_with_read_only([home], ["--config", str(path), "init", "app"], {"HOME": str(home)})
    assert done.returncode == 1, done.stderr
    assert f"Error: cannot write the cache {home / '.cache'}: Read-only file system" in done.stderr
    assert "hint: set XDG_CACHE_HOME to a writable directory" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_missing_cache_dir_is_created(tmp_path):
    path = project(tmp_path)
    cache = tmp_path / "not" / "yet"
    result = cli(path, "render", "--all", env={"XDG_CACHE_HOME": str(cache)})
    assert result.exit_code == 0, result.output
    assert (cache / "mlcicd" / "jinja").is_dir()


@pytest.mark.usefixtures("offline_env")
def test_plan_offline_of_a_user_environment_in_the_devops_account(tmp_path):
    root = tmp_path / "proj"
    shutil.copytree(FIXTURES / "offline", root / "terraform")
    path = write_config(root, extra="environments:\n  toy: {account: devops, dir: terraform/envs/app}\n")
    result = cli(path, "plan", "toy", "--offline")
    assert result.exit_code == 0, result.output
    assert "connection_arn" not in result.output and "GitHub connection" not in result.output


# -- AWS failures: an endpoint without the API, a forgotten tls_policy on the emulator ---------


def test_status_against_an_endpoint_without_the_api_names_it(tmp_path, aws_env):
    path = write_config(tmp_path)
    result = cli(path, "status")
    assert result.exit_code == 1, result.output
    assert "codepipeline GetPipelineState answered HTTP 500 (500 Internal Server Error) with no AWS error code" \
        in result.output
    assert f"hint: the endpoint {aws_env.url} may not implement codepipeline:GetPipelineState" in result.output
    assert "<html" not in result.output


def test_the_emulator_with_the_tls_policy_gets_a_hint_to_turn_it_off(tmp_path, aws_env):
    root = tmp_path / "proj"
    shutil.copytree(FIXTURES / "builtin-root", root / "terraform" / "app")
    path = write_config(root, extra="  kms_key: aws-managed\nenvironments:\n  app: {account: staging, "
                                    "dir: terraform/app, assume_role: false, vars: {greeting: hi}}\n")
    assert cli(path, "bootstrap", "--yes").exit_code == 0
    result = cli(path, "init", "app")
    assert result.exit_code == 1, result.output
    assert "StatusCode: 403" in result.output
    assert "the state bucket's EnforcedTLS Deny refuses every call" in result.output
    assert "set `state: {tls_policy: false}` in mlcicd.yaml" in result.output
