"""The Terraform tree, checked offline with the bundled Terraform core and its config loader:
formatting, every module and environment loads without errors, module calls pass what the
callee requires, the rendered tfvars match each environment's variables, and the README tables
are generated and current."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlcicd import config, moduledoc, render
from mlcicd.cli import main

ROOT = Path(__file__).resolve().parent.parent
TERRAFORM = ROOT / "terraform"
DIRS = moduledoc.module_dirs(TERRAFORM)
IDS = [str(d.relative_to(TERRAFORM)) for d in DIRS]
EXAMPLE_CONFIG = ROOT / "mlcicd.yaml"


def tf(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mlcicd.tfcore", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_every_module_and_environment_is_in_the_tree():
    names = set(IDS)
    for expected in ("modules/pipeline", "modules/sagemaker-pipelines", "modules/data", "modules/account-roles",
                     "envs/devops", "envs/dev", "envs/staging", "envs/prod", "envs/data", "envs/account-roles"):
        assert expected in names


def test_terraform_fmt_is_clean():
    result = tf("fmt", "-check", "-recursive", "-list=true", str(TERRAFORM), cwd=ROOT)
    assert result.returncode == 0, f"not formatted (run terraform fmt -recursive):\n{result.stdout}{result.stderr}"


def test_fmt_check_catches_a_misformatted_file(tmp_path):
    (tmp_path / "main.tf").write_text('locals {\n  a = 1\n  bb    = 2\n}\n')
    result = tf("fmt", "-check", "-recursive", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 3
    assert "main.tf" in result.stdout


@pytest.mark.parametrize("directory", DIRS, ids=IDS)
def test_loads_without_error_diagnostics(directory):
    module = moduledoc.load(directory)
    assert module.variables or module.outputs or module.resources()


# Variables holding ids, names and enums carry a validation block (house style).
VALIDATED = {"project", "region", "accounts", "account_id", "environment", "target_environment", "repository",
             "branch", "connection_arn", "state_bucket", "assume_role_arn", "name", "kms_key_arn", "compute_type"}


@pytest.mark.parametrize("directory", DIRS, ids=IDS)
def test_variables_and_outputs_are_typed_described_and_validated(directory):
    module = moduledoc.load(directory)
    for var in module.variables:
        assert var.description, f"{directory}: variable {var.name} has no description"
        assert var.type != "any", f"{directory}: variable {var.name} has no type"
        if var.name in VALIDATED:
            assert module.raw["Variables"][var.name]["Validations"], f"{directory}: {var.name} has no validation"
    for out in module.outputs:
        assert out.description, f"{directory}: output {out.name} has no description"


@pytest.mark.parametrize("directory", DIRS, ids=IDS)
def test_module_calls_pass_required_and_only_declared_variables(directory):
    module = moduledoc.load(directory)
    for name, call in module.module_calls.items():
        callee = moduledoc.load((directory / moduledoc.module_source(call)).resolve())
        passed = set(call["Config"]["Attributes"]) - {"source", "version", "count", "for_each", "providers",
                                                       "depends_on"}
        declared = {v.name for v in callee.variables}
        required = {v.name for v in callee.variables if v.required}
        assert not passed - declared, f"{directory}: module.{name} passes undeclared {sorted(passed - declared)}"
        assert not required - passed, f"{directory}: module.{name} misses required {sorted(required - passed)}"


@pytest.fixture(scope="module")
def example():
    return config.load(EXAMPLE_CONFIG)


def test_example_config_declares_the_default_environments_and_roles(example):
    assert {"devops", "data", "dev", "staging", "prod"} <= set(example.environments)
    roles = {name: env for name, env in example.environments.items() if name.startswith("roles-")}
    assert sorted(env.vars["target_environment"] for env in roles.values()) == ["data", "dev", "prod", "staging"]
    for env in roles.values():
        assert env.dir == TERRAFORM / "envs" / "account-roles"
        assert env.account_role == env.vars["target_environment"]
        assert not env.assume_role


def _contract(cfg: config.Config, name: str) -> tuple[set[str], set[str], set[str]]:
    env = cfg.env(name)
    module = moduledoc.load(env.dir)
    written = set(render.variables(cfg, env))
    declared = {v.name for v in module.variables}
    required = {v.name for v in module.variables if v.required}
    return written, declared, required


@pytest.mark.parametrize("name", ["devops", "data", "dev", "staging", "prod",
                                  "roles-dev", "roles-staging", "roles-prod", "roles-data"])
def test_rendered_tfvars_match_environment_variables(example, name):
    written, declared, required = _contract(example, name)
    assert not written - declared, f"{name}: tfvars keys not declared: {sorted(written - declared)}"
    assert not required - written, f"{name}: required variables not rendered: {sorted(required - written)}"


def test_contract_check_catches_an_undeclared_key(tmp_path, example):
    """A config `vars` key the environment does not declare must show up as undeclared."""
    text = EXAMPLE_CONFIG.read_text().replace("metric_threshold: 0.75", "metric_treshold: 0.75")
    path = tmp_path / "mlcicd.yaml"
    path.write_text(text)
    cfg = config.load(path)
    env = cfg.env("staging")
    written = set(render.variables(cfg, env))
    declared = {v.name for v in moduledoc.load(TERRAFORM / "envs" / "staging").variables}
    assert written - declared == {"metric_treshold"}


# -- moduledoc ---------------------------------------------------------------------------------


def test_readmes_are_generated_and_current():
    stale = []
    for directory in DIRS:
        readme = directory / moduledoc.README
        assert readme.exists(), f"{directory} has no README.md"
        try:
            wanted = moduledoc.readme_text(readme.read_text(), moduledoc.load(directory))
        except moduledoc.ModuleLoadError:
            continue  # reported by test_loads_without_error_diagnostics
        if wanted != readme.read_text():
            stale.append(str(readme.relative_to(ROOT)))
    assert not stale, f"run `mlcicd docs`: out of date: {stale}"


MODULE = textwrap.dedent('''\
    variable "name" {
      description = "A name | with a pipe."
      type        = string
    }

    variable "tags" {
      description = "Tags."
      type        = map(string)
      default = {
        a = "x}" # a brace in a string
        b = "${"y"}"
      }
    }

    variable "opts" {
      description = "Options."
      type        = object({ a = string, b = optional(number) })
      default     = null
      sensitive   = true
    }

    output "id" {
      description = "The id."
      value       = var.name
      sensitive   = true
    }
    ''')


def test_docs_tables_from_the_loader(tmp_path):
    (tmp_path / "main.tf").write_text(MODULE)
    module = moduledoc.load(tmp_path)
    by_name = {v.name: v for v in module.variables}
    assert by_name["name"].required and by_name["name"].type == "string"
    assert by_name["opts"].default == "null" and not by_name["opts"].required
    assert by_name["opts"].type == "object({a = string, b = optional(number)})"
    assert by_name["tags"].type == "map(string)"
    assert "a = \"x}\"" in by_name["tags"].default
    table = moduledoc.tables(module)
    assert "| `name` | A name \\| with a pipe. | `string` | n/a | yes |" in table
    assert "| `opts` | Options. (sensitive) |" in table and "| `null` | no |" in table
    assert "| `id` | The id. (sensitive) |" in table


def test_docs_command_writes_then_checks(tmp_path):
    module_dir = tmp_path / "terraform" / "modules" / "m"
    module_dir.mkdir(parents=True)
    (module_dir / "main.tf").write_text(MODULE)
    (module_dir / "README.md").write_text("# m\n\nHand-written intro.\n")
    runner = CliRunner()
    root = str(tmp_path / "terraform")

    stale = runner.invoke(main, ["docs", "--dir", root, "--check"])
    assert stale.exit_code == 1 and "out of date" in stale.output

    wrote = runner.invoke(main, ["docs", "--dir", root])
    assert wrote.exit_code == 0, wrote.output
    text = (module_dir / "README.md").read_text()
    assert text.startswith("# m\n\nHand-written intro.\n") and moduledoc.BEGIN in text and "`tags`" in text

    assert runner.invoke(main, ["docs", "--dir", root, "--check"]).exit_code == 0
    (module_dir / "main.tf").write_text(MODULE + 'variable "extra" {\n  type = bool\n}\n')
    assert runner.invoke(main, ["docs", "--dir", root, "--check"]).exit_code == 1
    assert runner.invoke(main, ["docs", "--dir", root]).exit_code == 0
    assert "`extra`" in (module_dir / "README.md").read_text()


def test_docs_reports_a_module_that_does_not_load(tmp_path):
    (tmp_path / "main.tf").write_text('variable "x" {\n  type = strin\n}\n')
    result = CliRunner().invoke(main, ["docs", "--dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "Invalid type specification" in result.output
    assert "Traceback" not in result.output


def test_operator_expressions_get_an_actionable_message(tmp_path):
    (tmp_path / "main.tf").write_text('variable "x" {\n  type = number\n}\n\nlocals {\n  y = var.x + 1\n}\n')
    with pytest.raises(moduledoc.ModuleLoadError, match="operator expressions"):
        moduledoc.load(tmp_path)


def test_block_attributes_skip_strings_comments_and_heredocs():
    source = textwrap.dedent('''\
        variable "v" {
          description = <<-EOT
            default = "not this one" }
          EOT
          # default = "nor this"
          type = object({ a = string }) // a comment { with a brace
          /* default = 1 */
          default = {
            a = "}${"{"}$${x}"
          }
        }
        ''').encode()
    attrs = moduledoc.block_attributes(source, 0)
    assert set(attrs) == {"description", "type", "default"}
    assert attrs["default"].startswith("{") and attrs["default"].endswith("}")
    assert attrs["type"] == "object({ a = string })"
