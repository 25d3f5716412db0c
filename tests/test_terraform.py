"""The Terraform runner: flag building (a pure function), executable resolution, streaming."""

from __future__ import annotations

import sys

import pytest

from mlcicd.errors import TerraformError, TerraformNotFound
from mlcicd.masking import Masker
from mlcicd.terraform import Terraform, build_argv, resolve_executable

ARGV_TABLE = [
    (("init", {}), ["init"]),
    (("init", {"input": "false", "reconfigure": True, "backend_config": ["a.hcl", "b.hcl"]}),
     ["init", "-input=false", "-reconfigure", "-backend-config=a.hcl", "-backend-config=b.hcl"]),
    (("plan", {"detailed_exitcode": True, "destroy": False, "out": "/p/tfplan", "var_file": ["x.json"]}),
     ["plan", "-detailed-exitcode", "-out=/p/tfplan", "-var-file=x.json"]),
    (("plan", {"refresh_only": None, "lock_timeout": "0s"}), ["plan", "-lock-timeout=0s"]),
    ((["state", "list"], {"state": "s.tfstate"}), ["state", "list", "-state=s.tfstate"]),
    (("apply", {"input": "false"}, ["/p/tfplan"]), ["apply", "-input=false", "/p/tfplan"]),
    (("output", {"json": True}, ["name"]), ["output", "-json", "name"]),
    (("plan", {"var": ["a=1", "b=x y"]}), ["plan", "-var=a=1", "-var=b=x y"]),
]


@pytest.mark.parametrize("call,expected", ARGV_TABLE)
def test_build_argv(call, expected):
    assert build_argv(*call) == expected


def test_resolution_prefers_path_binary_then_bundled():
    found = {"terraform": "/usr/bin/terraform", "tofu": "/usr/bin/tofu"}
    assert resolve_executable(None, found.get) == ["/usr/bin/terraform"]
    assert resolve_executable(None, {"tofu": "/usr/bin/tofu"}.get) == ["/usr/bin/tofu"]
    assert resolve_executable(None, {}.get) == [sys.executable, "-m", "mlcicd.tfcore"]
    assert resolve_executable("bundled", found.get) == [sys.executable, "-m", "mlcicd.tfcore"]


def test_explicit_executable_must_exist():
    with pytest.raises(TerraformNotFound, match="MLCICD_TERRAFORM"):
        resolve_executable("/nonexistent/terraform")
    assert resolve_executable(sys.executable) == [sys.executable]


@pytest.fixture
def tf(tmp_path):
    lines: list[tuple[str, bool]] = []
    runner = Terraform(
        executable=resolve_executable("bundled"),
        environ={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        data_dir=tmp_path / "tfdata",
        cli_config=tmp_path / "terraformrc",
        masker=Masker(["hunter2-secret"]),
        sink=lambda line, err: lines.append((line, err)),
    )
    (tmp_path / "terraformrc").write_text("")
    runner.lines = lines
    return runner


def test_output_is_streamed_masked_and_exit_codes_kept(tf, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "main.tf").write_text(
        'terraform {\n  backend "local" {}\n}\noutput "x" { value = "hunter2-secret and more" }\n'
    )
    tf.check(["init", "-input=false", "-no-color"], cwd=root, what="init")
    assert (tmp_path / "tfdata").is_dir()  # TF_DATA_DIR is per environment, not ./.terraform
    assert not (root / ".terraform").exists()
    result = tf.run(["plan", "-detailed-exitcode", "-no-color", "-input=false"], cwd=root)
    assert result.returncode == 2  # changes present: the runner reports it, the caller decides
    printed = "\n".join(line for line, _ in tf.lines)
    assert "*** and more" in printed and "hunter2-secret" not in printed


def test_failure_raises_with_terraforms_error(tf, tmp_path):
    root = tmp_path / "bad"
    root.mkdir()
    (root / "main.tf").write_text('resource "terraform_data" "x" {\n  nonsense = 1\n}\n')
    with pytest.raises(TerraformError, match="Unsupported argument") as info:
        tf.check(["validate", "-no-color"], cwd=root, what="validate")
    assert info.value.returncode == 1
    assert any(err for _, err in tf.lines)  # errors go to stderr


def test_version_of_bundled_core(tf, tmp_path):
    assert tf.version(tmp_path).startswith("1.")


def test_every_line_reaches_the_sink_even_an_unterminated_last_one(tmp_path):
    # Terraform's output goes through files, not pipes: long lines, both streams and a last
    # line without a newline all arrive, in order per stream.
    script = ("import sys\nfor i in range(3000): print('line', i, 'x' * 100)\n"
              "sys.stderr.write('problem\\n')\nsys.stdout.write('no newline')")
    lines: list[tuple[str, bool]] = []
    runner = Terraform(executable=[sys.executable, "-c", script], environ={}, data_dir=tmp_path,
                       sink=lambda line, err: lines.append((line, err)))
    result = runner.run([], cwd=tmp_path)
    assert result.returncode == 0
    out = [line for line, err in lines if not err]
    assert out[:2] == [f"line 0 {'x' * 100}", f"line 1 {'x' * 100}"] and len(out) == 3001
    assert out[-1] == "no newline" and [line for line, err in lines if err] == ["problem"]
    captured = runner.run([], cwd=tmp_path, capture=True)
    assert captured.stdout.splitlines()[-1] == "no newline" and len(captured.stdout.splitlines()) == 3001
