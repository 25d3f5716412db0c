"""The Terraform tree, checked offline: formatting (the bundled Terraform core), every module
and environment parses (mlcicd.hcl), module calls pass what the callee requires, the rendered
tfvars match each environment's variables, and the README tables are generated and current."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlcicd import config, hcl, moduledoc, render
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
                     "modules/kms-key", "modules/naming", "envs/devops", "envs/ml", "envs/data", "envs/account-roles"):
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
def test_parses(directory):
    module = hcl.load_module(directory)
    assert module.variables or module.outputs or module.resources


# Variables holding ids, names and enums carry a validation block (house style) in the module
# that uses them; a root checks what it uses itself and leaves the rest to the modules it calls.
VALIDATED = {"target_environment", "repository", "branch", "connection_arn", "state_bucket", "name", "kms_key_arn",
             "compute_type", "alias", "environment"}
ROOT_VALIDATED = {"account_id", "environment", "assume_role_arn"}
# project, region and accounts are checked in one place: the naming module every module calls.
NAMING = TERRAFORM / "modules" / "naming"
OPTIONAL = {"state_bucket"}  # null stands for mlcicd's default where a module takes it optionally


@pytest.mark.parametrize("directory", DIRS, ids=IDS)
def test_variables_and_outputs_are_typed_described_and_validated(directory):
    module = hcl.load_module(directory)
    for var in module.variables:
        assert var.description, f"{directory}: variable {var.name} has no description"
        assert var.type != "any", f"{directory}: variable {var.name} has no type"
        wanted = ROOT_VALIDATED if directory.parent.name == "envs" else VALIDATED
        if var.name in wanted and not (var.name in OPTIONAL and var.default == "null"):
            assert var.validations, f"{directory}: {var.name} has no validation"
        if directory == NAMING:
            assert var.validations, f"{directory}: {var.name} has no validation"
    for out in module.outputs:
        assert out.description, f"{directory}: output {out.name} has no description"


def test_project_region_and_account_rules_are_written_once():
    rules = {"project": "^[a-z][a-z0-9-]{1,30}[a-z0-9]$", "region": "^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]{1,2}$",
             "accounts": "^[0-9]{12}$"}
    for name, rule in rules.items():
        places = [str(path.relative_to(TERRAFORM)) for path in sorted(TERRAFORM.rglob("*.tf"))
                  if not path.is_symlink() and rule in path.read_text()]
        expected = ["modules/naming/variables.tf"] if name != "accounts" else \
            ["envs/_shared/common_variables.tf", "modules/naming/variables.tf"]  # and account_id
        assert places == expected, name


@pytest.mark.parametrize("directory", DIRS, ids=IDS)
def test_module_calls_pass_required_and_only_declared_variables(directory):
    module = hcl.load_module(directory)
    for name, call in module.module_calls.items():
        callee = hcl.load_module((directory / call.attr("source")).resolve())
        passed = set(hcl.body_attributes(call.body)) - {"source", "version", "count", "for_each", "providers",
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
    module = hcl.load_module(env.dir)
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
    declared = {v.name for v in hcl.load_module(TERRAFORM / "envs" / "ml").variables}
    assert written - declared == {"metric_treshold"}


# -- moduledoc ---------------------------------------------------------------------------------


def test_readmes_are_generated_and_current():
    stale = []
    for directory in DIRS:
        readme = directory / moduledoc.README
        assert readme.exists(), f"{directory} has no README.md"
        wanted = moduledoc.readme_text(readme.read_text(), hcl.load_module(directory))
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


def test_docs_tables_from_the_source(tmp_path):
    (tmp_path / "main.tf").write_text(MODULE)
    module = hcl.load_module(tmp_path)
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


def test_docs_reports_a_module_that_does_not_parse(tmp_path):
    (tmp_path / "main.tf").write_text('variable "x" {\n  type = \n}\n')
    result = CliRunner().invoke(main, ["docs", "--dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "main.tf: cannot parse Terraform source" in result.output
    assert "Traceback" not in result.output


def test_ordinary_expressions_and_heredocs_are_read(tmp_path):
    """Operators, conditionals, heredocs and comments holding braces: a module reads as Terraform writes it."""
    (tmp_path / "main.tf").write_text(textwrap.dedent('''\
        variable "v" {
          description = <<-EOT
            default = "not this one" }
          EOT
          # default = "nor this"
          type = object({ a = string }) // a comment { with a brace
          /* default = 1 */
          default = {
            a = "}"
          }

          validation {
            condition     = var.v.a != "" && length(var.v.a) <= 3
            error_message = "short."
          }
        }

        locals {
          n = var.v.a == "}" ? 1 : 0
        }
        '''))
    [v] = hcl.load_module(tmp_path).variables
    assert v.type == "object({a = string})"
    assert v.default == '{a = "}"}'
    assert v.description.strip() == 'default = "not this one" }'
    assert len(v.validations) == 1
    assert hcl.load_module(tmp_path).locals["n"] == '${var.v.a == "}" ? 1 : 0}'


def test_types_and_defaults_read_as_terraform_fmt_writes_them(tmp_path):
    (tmp_path / "main.tf").write_text(textwrap.dedent('''\
        variable "jobs" {
          type    = object({ size = optional(number, 0.75), tag = optional(string, "a,b") })
          default = { size = 1, tag = "x" }
        }
        '''))
    [v] = hcl.load_module(tmp_path).variables
    assert v.type == 'object({size = optional(number, 0.75), tag = optional(string, "a,b")})'
    assert v.default == '{size = 1, tag = "x"}'
