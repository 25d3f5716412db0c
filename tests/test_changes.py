"""`plan --changed`: environments picked from git, on a repository made in the test."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlcicd import changes
from mlcicd import config as configmod
from mlcicd.cli import main
from mlcicd.errors import UsageError
from tests.conftest import FIXTURES, write_config

MODULE_CALL = 'module "shared" {\n  source = "../../modules/shared"\n}\n'


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout


def commit_all(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


@pytest.fixture
def repo(tmp_path):
    """A git repository on `main`: envs a (calls modules/shared, which calls modules/leaf), b
    (no module), c (depends on a), d (depends on c); docs; and a branch `feature` checked out."""
    root = tmp_path / "repo"
    for name in ("a", "b", "c", "d"):
        shutil.copytree(FIXTURES / "builtin-root", root / "terraform/envs" / name)
    (root / "terraform/envs/a/modules.tf").write_text(MODULE_CALL)
    (root / "terraform/modules/shared").mkdir(parents=True)
    (root / "terraform/modules/shared/main.tf").write_text(
        'module "leaf" {\n  source = "../leaf"\n}\n'
        'resource "terraform_data" "x" {\n  input = file("${path.module}/../../../policies/x.json")\n}\n')
    (root / "terraform/modules/leaf").mkdir()
    (root / "terraform/modules/leaf/main.tf").write_text('resource "terraform_data" "leaf" {}\n')
    (root / "terraform/modules/leaf/README.md").write_text("# leaf\n")
    (root / "policies").mkdir()
    (root / "policies/x.json").write_text("{}\n")
    (root / "docs").mkdir()
    (root / "docs/guide.md").write_text("# guide\n")
    envs = "".join(
        f"  {n}:\n    account: staging\n    dir: terraform/envs/{n}\n    assume_role: false\n"
        f"    depends_on: [{dep}]\n    vars: {{greeting: hi-{n}}}\n"
        for n, dep in (("a", ""), ("b", ""), ("c", "a"), ("d", "c")))
    write_config(root, extra="environments:\n" + envs)
    git(root, "init", "-q", "-b", "main")
    commit_all(root, "initial")
    git(root, "checkout", "-q", "-b", "feature")
    return root


def detect(repo: Path, base: str | None = None) -> dict[str, tuple[str, ...]]:
    return dict(changes.detect(configmod.load(repo / "mlcicd.yaml"), base).chosen)


def test_nothing_changed_chooses_nothing(repo):
    assert detect(repo) == {}


def test_doc_only_change_chooses_nothing(repo):
    (repo / "docs/guide.md").write_text("# guide, longer\n")
    (repo / "terraform/modules/leaf/README.md").write_text("# leaf module\n")
    commit_all(repo, "docs")
    assert detect(repo) == {}


def test_module_change_chooses_its_callers_and_their_dependants(repo):
    # leaf is called by shared, which env a calls: a, then c (depends on a), then d (on c).
    (repo / "terraform/modules/leaf/main.tf").write_text('resource "terraform_data" "leaf2" {}\n')
    commit_all(repo, "module change")
    chosen = detect(repo)
    assert list(chosen) == ["a", "c", "d"]
    assert chosen["a"] == ("terraform/modules/leaf changed (main.tf)",)
    assert chosen["c"] == ("depends on a",)
    assert chosen["d"] == ("depends on c",)


def test_a_file_a_module_reads_through_path_module_counts(repo):
    (repo / "policies/x.json").write_text('{"v": 2}\n')
    assert list(detect(repo)) == ["a", "c", "d"]  # uncommitted changes count too


def test_tfvars_input_change_chooses_that_environment(repo):
    cfg = repo / "mlcicd.yaml"
    cfg.write_text(cfg.read_text().replace("greeting: hi-b", "greeting: hello-b"))
    commit_all(repo, "input")
    assert detect(repo) == {"b": ("mlcicd.yaml: vars.greeting changed",)}


def test_a_change_of_the_whole_config_chooses_every_environment(repo):
    cfg = repo / "mlcicd.yaml"
    cfg.write_text(cfg.read_text().replace("region: us-east-1", "region: eu-west-1"))
    chosen = detect(repo)
    assert list(chosen) == list(configmod.load(cfg).environments)  # the default ones too
    assert chosen["b"] == ("mlcicd.yaml: vars.region changed",)


def test_config_change_that_reaches_no_plan_chooses_nothing(repo):
    cfg = repo / "mlcicd.yaml"
    cfg.write_text(cfg.read_text() + "masks:\n  patterns: ['secret-[0-9]+']\n")
    assert detect(repo) == {}


def test_new_environment_and_untracked_files(repo):
    shutil.copytree(FIXTURES / "builtin-root", repo / "terraform/envs/e")
    cfg = repo / "mlcicd.yaml"
    cfg.write_text(cfg.read_text() + "  e:\n    account: staging\n    dir: terraform/envs/e\n"
                   "    assume_role: false\n    vars: {greeting: hi}\n")
    chosen = detect(repo)
    assert list(chosen) == ["e"]
    assert "new in mlcicd.yaml" in chosen["e"]


def test_symlinked_file_counts_where_it_points(repo):
    shared = repo / "terraform/envs/_shared"
    shared.mkdir()
    (shared / "extra.tf").write_text('variable "extra" {\n  default = 1\n}\n')
    (repo / "terraform/envs/b/extra.tf").symlink_to("../_shared/extra.tf")
    commit_all(repo, "shared file")
    git(repo, "checkout", "-q", "-b", "feature2")
    (shared / "extra.tf").write_text('variable "extra" {\n  default = 2\n}\n')
    assert list(detect(repo, "feature")) == ["b"]


def test_explicit_base_and_bad_input(repo, tmp_path):
    (repo / "terraform/envs/b/main.tf").write_text((repo / "terraform/envs/b/main.tf").read_text() + "\n# x\n")
    commit_all(repo, "b")
    assert list(detect(repo, "main")) == ["b"]
    assert detect(repo, "HEAD") == {}
    # main moving on after the branch forked changes nothing here: the merge base is compared with.
    git(repo, "checkout", "-q", "main")
    (repo / "terraform/envs/c/main.tf").write_text("# on main\n" + (repo / "terraform/envs/c/main.tf").read_text())
    commit_all(repo, "c on main")
    git(repo, "checkout", "-q", "feature")
    assert list(detect(repo, "main")) == ["b"]
    with pytest.raises(UsageError, match="--base nope: no such commit"):
        detect(repo, "nope")
    with pytest.raises(UsageError, match="--base --output=x: no such commit"):
        detect(repo, "--output=x")
    plain = tmp_path / "plain"
    shutil.copytree(repo, plain, ignore=shutil.ignore_patterns(".git"))
    with pytest.raises(UsageError, match="needs a git repository"):
        detect(plain)


def test_default_base_prefers_origin_branch(repo, tmp_path):
    # A clone: origin/main exists; the merge base with it is the default.
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "-b", "feature", str(repo), str(clone))
    (clone / "terraform/envs/b/main.tf").write_text("# changed\n" + (clone / "terraform/envs/b/main.tf").read_text())
    found = changes.detect(configmod.load(clone / "mlcicd.yaml"))
    assert found.base_label == "merge base with origin/main"
    assert list(found.chosen) == ["b"]


def test_no_branch_to_compare_with(repo):
    git(repo, "branch", "-q", "-m", "main", "trunk")
    with pytest.raises(UsageError, match="neither origin/main nor main exists"):
        detect(repo)


def test_cli_prints_why_and_records_the_selection(repo):
    (repo / "terraform/modules/leaf/main.tf").write_text('resource "terraform_data" "leaf2" {}\n')
    commit_all(repo, "module change")
    runner = CliRunner()
    # --detailed-exitcode would say 2 once planned; here a bad base stops it before planning.
    bad = runner.invoke(main, ["--config", str(repo / "mlcicd.yaml"), "plan", "--changed", "--base", "zzz"])
    assert bad.exit_code == 2 and "--base zzz: no such commit" in bad.output
    mixed = runner.invoke(main, ["--config", str(repo / "mlcicd.yaml"), "plan", "a", "--changed"])
    assert mixed.exit_code == 2 and "--changed picks the environments itself" in mixed.output
    alone = runner.invoke(main, ["--config", str(repo / "mlcicd.yaml"), "plan", "a", "--base", "main"])
    assert alone.exit_code == 2 and "--base goes with --changed" in alone.output


def test_cli_with_nothing_changed_plans_nothing(repo, tmp_path):
    out = tmp_path / "plans"
    result = CliRunner().invoke(main, ["--config", str(repo / "mlcicd.yaml"), "plan", "--changed",
                                       "--out", str(out), "--detailed-exitcode"])
    assert result.exit_code == 0, result.output
    assert "no environment(s) to plan" in result.output
    assert json.loads((out / "changes.json").read_text())["environments"] == {}
    as_json = CliRunner().invoke(main, ["--config", str(repo / "mlcicd.yaml"), "plan", "--changed", "--json"])
    assert as_json.exit_code == 0 and json.loads(as_json.stdout) == []
    assert "no environment(s) to plan" in as_json.stderr


@pytest.mark.usefixtures("state_bucket")
def test_cli_plans_the_changed_environments_in_parallel(repo, tmp_path):
    (repo / "terraform/envs/a/modules.tf").unlink()  # the real Terraform plans a and b alone
    commit_all(repo, "a standalone")
    git(repo, "checkout", "-q", "-b", "feature2")
    cfg = repo / "mlcicd.yaml"
    cfg.write_text(cfg.read_text().replace("greeting: hi-a", "greeting: ho-a"))
    out = tmp_path / "plans"
    result = CliRunner().invoke(main, ["--config", str(cfg), "plan", "--changed", "--base", "feature",
                                       "-j", "2", "--out", str(out), "--detailed-exitcode"])
    assert result.exit_code == 2, result.output
    assert "a: mlcicd.yaml: vars.greeting changed" in result.output
    assert "c: depends on a" in result.output and "d: depends on c" in result.output
    assert "b:" not in result.output
    # The --all report: one line per environment planned.
    for name in ("a", "c", "d"):
        assert f"{name}: changes: 3 to create" in result.output
        assert (out / name / "manifest.json").is_file()
    assert not (out / "b").exists()
    recorded = json.loads((out / "changes.json").read_text())
    assert list(recorded["environments"]) == ["a", "c", "d"]
    assert recorded["base_label"] == "merge base with feature"


@pytest.mark.usefixtures("aws_env")  # b is then planned: against the emulator, never AWS
def test_hostile_file_names_are_printed_escaped(repo):
    (repo / "terraform/envs/b/\x1b[31mred\u202e.tf").write_text("# x\n")
    result = CliRunner().invoke(main, ["--config", str(repo / "mlcicd.yaml"), "plan", "--changed",
                                       "--base", "main", "--json"])
    assert "b: terraform/envs/b changed (\\x1b[31mred\\u202e.tf)" in result.stderr
    assert "\x1b" not in result.output and "\u202e" not in result.output
