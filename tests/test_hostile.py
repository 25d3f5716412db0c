"""Hostile input, property-based: random YAML, wrong types, unicode, long values, path traversal
and template-injection attempts in the config file and on the command line.

Whatever comes in: no traceback; exit 0, or exit 2 with the file and the key named; nothing
written outside the project; and every rendered file means exactly what the config said —
tfvars read back as JSON, backend configs read back by Terraform's own HCL parser.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mlcicd.cli import main

ACCOUNT = "123456789012"
BASE = {
    "project": "demo",
    "region": "us-east-1",
    "repository": {"name": "acme/ml-models", "branch": "main"},
    "accounts": dict.fromkeys(("devops", "dev", "staging", "prod", "data"), ACCOUNT),
    "state": {"bucket": "tfstate-test"},
    "environments": {"app": {"account": "staging", "dir": "terraform/app", "vars": {"greeting": "hello"}}},
}

NASTY = [
    "../../etc", "../../../../tmp/escape", "/etc", "terraform/../../..", "app/../../..",
    "{{ 7 * 7 }}", "{% for x in range(3) %}x{% endfor %}", "{{ config.__class__ }}",
    "${file(\"/etc/passwd\")}", "%{ if true }x%{ endif }", "$${x}", "#{x}",
    '"', "'", "\\", '\\"', '"\n}\nbucket = "evil', "a\nb", "\r\n", "\t", "\x00", "\x1b[31m",
    "ü", "\u202ehidden", "🙂", "\ufeff", "", " ", "-", "--help",
    "key: value", "[1, 2]", "*alias", "&anchor x", "!!python/object/apply:os.system ['id']",
    "null", "true", "0x10", "1e400", "0123456789012",
]
text = st.one_of(
    st.sampled_from(NASTY),
    st.integers(4000, 5000).map(lambda n: "x" * n),  # longer than any value may be
    st.text(max_size=40),
    st.builds(lambda a, b: a + b, st.sampled_from(NASTY), st.text(max_size=20)),
)
scalar = st.one_of(text, st.integers(), st.floats(), st.booleans(), st.none())
value = st.one_of(scalar, st.lists(scalar, max_size=3), st.dictionaries(text, scalar, max_size=3))

# Where a hostile value goes, and the key an error must name.
PATHS = [
    ("project",), ("region",), ("repository",), ("repository", "name"), ("repository", "branch"),
    ("repository", "connection_name"), ("repository", "connection_arn"), ("accounts",), ("accounts", "prod"),
    ("state",), ("state", "bucket"), ("state", "lock"), ("state", "lock_table"), ("state", "kms_key"),
    ("state", "tls_policy"), ("environments",), ("environments", "app"), ("environments", "app", "dir"),
    ("environments", "app", "account"), ("environments", "app", "vars"),
    ("environments", "app", "vars", "greeting"), ("environments", "app", "depends_on"),
    ("masks",), ("masks", "patterns"), ("masks", "env"),
]


class Project:
    """A project three levels down in a scratch directory, so `../../x` stays inside the
    scratch directory, where the test can see anything written outside the project."""

    def __init__(self, scratch: str) -> None:
        self.scratch = Path(scratch)
        self.root = self.scratch / "a" / "b" / "proj"
        (self.root / "terraform" / "app").mkdir(parents=True)
        self.config = self.root / "mlcicd.yaml"

    def write(self, data) -> None:
        text = yaml.safe_dump(data, allow_unicode=True)
        if yaml.safe_load(text) != data:
            # PyYAML's writer leaves some line breaks raw (NEL, U+2028) in quoted scalars, where
            # every YAML reader folds them to a space: write those values escaped instead.
            text = yaml.safe_dump(data, allow_unicode=False)
        self.config.write_text(text, encoding="utf-8")

    def run(self, *args: str, env: dict[str, str] | None = None):
        result = CliRunner().invoke(main, ["--config", str(self.config), *args], env=env)
        output = result.output
        assert result.exit_code in (0, 2), (result.exit_code, output, result.exception)
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        assert "Traceback" not in output
        if result.exit_code == 2:
            assert "Error" in output, output
        return result.exit_code, output

    def written_outside(self) -> list[Path]:
        return [p for p in self.scratch.rglob("*")
                if p.is_file() and self.root not in p.parents]


def set_path(data: dict, path: tuple[str, ...], new) -> dict:
    data = copy.deepcopy(data)
    node = data
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = new
    return data


BACKENDS: list[tuple[str, dict]] = []  # rendered backend configs, checked by Terraform at the end


def check_rendered(project: Project, data: dict) -> None:
    """The tfvars and backend of `app` say exactly what the config said."""
    out = project.root / ".mlcicd" / "app"
    tfvars = json.loads((out / "terraform.tfvars.json").read_text(encoding="utf-8"))
    app = data["environments"]["app"]
    for name, given_value in (app.get("vars") or {}).items():
        assert tfvars[name] == given_value
    assert tfvars["project"] == data["project"] and tfvars["region"] == data["region"]
    assert tfvars["branch"] == data["repository"].get("branch", "main")
    assert tfvars["repository"] == data["repository"]["name"]
    default_bucket = f"{data['project']}-tfstate-{data['accounts']['devops']}-{data['region']}"
    BACKENDS.append(((out / "backend.hcl").read_text(encoding="utf-8"), {
        "bucket": (data.get("state") or {}).get("bucket", default_bucket), "key": "app/terraform.tfstate",
        "region": data["region"]}))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PATHS), value)
@example(("environments", "app", "dir"), "x" * 4000)  # once an OSError (file name too long) traceback
def test_hostile_config_values(path, new):
    with tempfile.TemporaryDirectory() as scratch:
        project = Project(scratch)
        data = set_path(BASE, path, new)
        project.write(data)
        code, output = project.run("render", "app")
        assert project.written_outside() == []
        if code == 2:
            assert str(project.config) in output
            assert ".".join(path[:1]) in output, output  # names the key (or the section it is in)
        else:
            check_rendered(project, data)


@settings(max_examples=60, deadline=None)
@given(text, st.one_of(text, st.dictionaries(text, scalar, max_size=2)))
@example("null", "\x85")  # a NEL the config writer once left raw, so the file said " "
def test_hostile_environment_and_variable_names(name, body):
    with tempfile.TemporaryDirectory() as scratch:
        project = Project(scratch)
        data = copy.deepcopy(BASE)
        data["environments"][name] = {"dir": name, "account": "dev"}
        data["environments"]["app"]["vars"][name] = body
        project.write(data)
        code, output = project.run("render", "--all")
        assert project.written_outside() == []
        if code == 2:
            assert "environments." in output, output
        else:
            check_rendered(project, data)
            assert (project.root / ".mlcicd" / name).resolve().parent == (project.root / ".mlcicd").resolve()


@settings(max_examples=60, deadline=None)
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300).map(lambda b: b.decode("latin-1")),
                 st.recursive(scalar, lambda kids: st.lists(kids, max_size=3) | st.dictionaries(text, kids, max_size=3),
                              max_leaves=10).map(lambda v: yaml.safe_dump(v, allow_unicode=True))))
def test_random_yaml_documents(document):
    with tempfile.TemporaryDirectory() as scratch:
        project = Project(scratch)
        project.config.write_text(document, encoding="utf-8", errors="surrogateescape")
        code, output = project.run("render", "--all")
        assert code == 2, output  # nothing random is a whole valid config
        assert str(project.config) in output
        assert project.written_outside() == []


COMMANDS = [
    ("render", "--"), ("init", "--"), ("plan", "--"), ("output", "--"), ("destroy", "--auto-approve", "--"),
    ("apply", "--auto-approve", "--"),
]


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(COMMANDS), text.filter(lambda n: n not in ("app", "devops", "dev", "staging", "prod", "data")))
def test_hostile_environment_names_on_the_command_line(command, name):
    with tempfile.TemporaryDirectory() as scratch:
        project = Project(scratch)
        project.write(BASE)
        code, output = project.run(*command, name)
        assert code == 2, output
        assert "environments." in output or "Usage:" in output, output
        assert project.written_outside() == []
        assert not (project.root / ".mlcicd").exists() or not any((project.root / ".mlcicd").iterdir())


@settings(max_examples=40, deadline=None)
@given(text)
def test_hostile_config_paths(path):
    with tempfile.TemporaryDirectory() as scratch:
        project = Project(scratch)
        runner = CliRunner()
        # A working directory inside the project: "" means ./mlcicd.yaml.
        with tempfile.TemporaryDirectory(dir=project.root) as cwd, contextlib.chdir(cwd):
            result = runner.invoke(main, ["--config", path, "render", "--all"], env={"MLCICD_CONFIG": None})
        assert result.exit_code == 2, (result.output, result.exception)
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        assert project.written_outside() == []


@settings(max_examples=40, deadline=None)
@given(st.one_of(st.sampled_from(NASTY), st.text(max_size=40)).filter(lambda e: "\x00" not in e))  # no NUL in env
def test_hostile_endpoint_urls_cannot_change_the_backend(endpoint):
    """AWS_ENDPOINT_URL comes from the environment, not the config: it lands in backend.hcl."""
    with tempfile.TemporaryDirectory() as scratch:
        project = Project(scratch)
        project.write(BASE)
        env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ENDPOINT_URL_S3": None, "AWS_ENDPOINT_URL_STS": None,
               "AWS_ENDPOINT_URL_DYNAMODB": None}
        code, output = project.run("render", "app", env=env)
        assert code == 0, output
        expected = {"bucket": "tfstate-test", "key": "app/terraform.tfstate", "region": "us-east-1"}
        if endpoint:
            expected["endpoints"] = {"s3": endpoint, "sts": endpoint, "dynamodb": endpoint}
        BACKENDS.append(((project.root / ".mlcicd" / "app" / "backend.hcl").read_text(encoding="utf-8"), expected))


def test_every_rendered_backend_reads_back_the_same_through_terraform(tmp_path):
    """Terraform's own HCL parser reads each backend config rendered above (in one run: each
    file's attributes become an object output) and finds exactly the values that went in."""
    if not BACKENDS:  # run on its own: render a hostile one here
        test_hostile_endpoint_urls_cannot_change_the_backend.hypothesis.inner_test('"\n}\nbucket = "evil ${x}')
    outputs = []
    for i, (body, _expected) in enumerate(BACKENDS):
        outputs.append(f"output \"b{i}\" {{\n  value = {{\n{body}\n  }}\n}}\n")
    (tmp_path / "main.tf").write_text("\n".join(outputs), encoding="utf-8")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TF_IN_AUTOMATION": "1", "HOME": str(tmp_path)}
    tf = [sys.executable, "-m", "mlcicd.tfcore"]
    for argv in (["init", "-input=false"], ["apply", "-auto-approve", "-input=false"]):
        done = subprocess.run([*tf, *argv], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr + done.stdout
    shown = subprocess.run([*tf, "output", "-json"], cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    values = json.loads(shown.stdout)
    assert len(values) == len(BACKENDS) > 0
    for i, (body, expected) in enumerate(BACKENDS):
        got = values[f"b{i}"]["value"]
        for key, want in expected.items():
            assert got[key] == want, (body, key)
        assert set(got) <= {"bucket", "key", "region", "encrypt", "kms_key_id", "use_lockfile", "dynamodb_table",
                            "use_path_style", "endpoints"}, body
        assert got["encrypt"] is True


# -- YAML structure: aliases, tags, duplicates, numbers, multi-line and control characters -----

TEMPLATE = """\
project: {project}
region: {region}
repository:
  name: {repo}
  branch: {branch}
accounts:
  devops: {devops}
  dev: "123456789012"
  staging: "123456789012"
  prod: "123456789012"
  data: "123456789012"
state:
  bucket: {bucket}
environments:
  app:
    account: {account}
    dir: {dir}
    vars:
      greeting: {greeting}
      other: {other}
"""
# field -> (default as written, indentation of its line, the key an error names)
FIELDS = {
    "project": ('demo', "", "project"), "region": ("us-east-1", "", "region"),
    "repo": ("acme/ml-models", "  ", "repository.name"), "branch": ("main", "  ", "repository.branch"),
    "devops": ('"123456789012"', "  ", "accounts.devops"), "bucket": ("tfstate-test", "  ", "state.bucket"),
    "account": ('"123456789012"', "    ", "environments.app.account"),
    "dir": ("terraform/app", "    ", "environments.app.dir"),
    "greeting": ("hello", "      ", "environments.app.vars.greeting"),
    "other": ("1", "      ", "environments.app.vars.other"),
}
# Plain scalars YAML 1.1 and 1.2 read differently, or that look like numbers, dates or booleans.
TRICKY = ["012", "0123456789012", "012345678901", "123456789012", "1:0:0", "1_000", "0x1F", "0o17", "0b101",
          "1e3", "1.5", ".inf", "-.inf", ".nan", "+1", "-0", "yes", "no", "on", "off", "y", "n", "true",
          "True", "~", "null", "", "2024-01-01", "2001-12-14t21:59:43.10-05:00", "=", "<<", "0.", "1.0e+3"]
TAGS = ["!!str", "!!int", "!!float", "!!bool", "!!null", "!!binary", "!!set", "!!timestamp", "!!omap", "!foo",
        "!!python/name:os.system", "!!python/object/apply:os.system"]
plain_text = st.from_regex(r"[a-z][a-z0-9./-]{0,12}", fullmatch=True)


def fragment(indent: str):
    """A YAML value as written after `key: ` on a line indented by `indent`."""
    return st.one_of(
        st.sampled_from(TRICKY), plain_text,
        st.text(max_size=12).map(lambda t: json.dumps(t)),  # double-quoted, escapes for every control character
        st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=12).map(
            lambda t: "'" + t.replace("'", "''") + "'"),
        st.lists(st.sampled_from(TRICKY[:10] + ["line", "\u202eend", "x: y"]), min_size=1, max_size=3).map(
            lambda lines: "|\n" + "".join(f"{indent}  {line}\n" for line in lines).rstrip("\n")),
        st.lists(plain_text, min_size=1, max_size=3).map(
            lambda lines: ">-\n" + "".join(f"{indent}  {line}\n" for line in lines).rstrip("\n")),
        st.tuples(st.sampled_from(TAGS), st.sampled_from(TRICKY + ["aGk=", "{a}", "[]"])).map(" ".join),
        st.lists(st.sampled_from(TRICKY), max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]"),
        st.dictionaries(plain_text, st.sampled_from(TRICKY), max_size=2).map(
            lambda d: "{" + ", ".join(f"{k}: {v}" for k, v in d.items()) + "}"),
    )


class _Yaml11(yaml.SafeLoader):
    """The reference reading: PyYAML's YAML 1.1, dates (and `=`, `<<`) kept as the text written."""


for _tag in ("timestamp", "value", "merge"):  # `=` and `<<` as values are text too
    _Yaml11.add_constructor(f"tag:yaml.org,2002:{_tag}", yaml.SafeLoader.construct_scalar)


@st.composite
def documents(draw):
    values = {name: default for name, (default, _indent, _key) in FIELDS.items()}
    # Half the time only `vars`, which take any value: the values that are accepted get compared.
    changed = draw(st.one_of(st.lists(st.sampled_from(["greeting", "other"]), min_size=1, max_size=2, unique=True),
                             st.lists(st.sampled_from(sorted(FIELDS)), min_size=1, max_size=2, unique=True)))
    for name in changed:
        values[name] = draw(fragment(FIELDS[name][1]))
    shape = draw(st.sampled_from(["values", "values", "values", "alias", "duplicate"]))
    if shape == "alias" and len(changed) >= 2:
        values[changed[0]] = f"&anchor {values[changed[0]]}"
        values[changed[1]] = "*anchor"
    template = TEMPLATE
    if shape == "duplicate":  # a key line of the template written twice (never a line of a block scalar)
        lines = template.splitlines(keepends=True)
        at = draw(st.integers(0, len(lines) - 1))
        template = "".join(lines[: at + 1] + [lines[at]] + lines[at + 1:])
    return shape, changed, values, template.format(**values)


YAML_RUNS = {"exit 0": 0, "exit 2": 0}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_yaml_structure_is_read_as_written_or_refused(doc):
    shape, changed, values, text = doc
    with tempfile.TemporaryDirectory() as scratch:
        project = Project(scratch)
        project.config.write_text(text, encoding="utf-8")
        code, output = project.run("render", "app")
        YAML_RUNS[f"exit {code}"] += 1
        assert project.written_outside() == []
        if code == 2:
            assert str(project.config) in output
            if shape == "duplicate" and "duplicate key" not in output:
                # Only a syntax error, or a value error before the duplicate, is reported instead.
                named = any(FIELDS[name][2] in output for name in changed)
                assert "YAML" in output or "(line " in output or named, output
            return
        assert shape == "values" or (shape == "alias" and len(changed) < 2), (shape, output)
        reference = yaml.load(text, Loader=_Yaml11)  # noqa: S506 - the safe loader
        tfvars = json.loads((project.root / ".mlcicd" / "app" / "terraform.tfvars.json").read_text("utf-8"))
        app = reference["environments"]["app"]
        for name in ("greeting", "other"):
            assert tfvars[name] == app["vars"][name], (name, values[name])
        assert tfvars["project"] == reference["project"] and tfvars["region"] == reference["region"]
        assert tfvars["repository"] == reference["repository"]["name"]
        assert tfvars["branch"] == reference["repository"]["branch"]
        for name, got in (("devops", tfvars["accounts"]["devops"]), ("account", tfvars["account_id"])):
            written = values[name]
            if name == "account" and written.strip("'\"") == "staging":
                continue
            # An id is its digits as written, never the number YAML 1.1 makes of them (octal).
            assert got == "".join(c for c in written.split(" ")[-1] if c.isdigit()), (name, written, got)


# -- the process environment: read-only HOME and checkout, missing or unusable cache ----------


ENV_RUNS: dict[str, int] = {}


@settings(max_examples=16, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(home_ro=st.booleans(), checkout_ro=st.booleans(),
       cache=st.sampled_from(["unset", "missing", "read-only", "a file"]),
       command=st.sampled_from([("render", "--all"), ("render", "app")]))
def test_the_process_environment_never_gives_a_traceback(home_ro, checkout_ro, cache, command):
    from tests.test_input import run_with_read_only

    with tempfile.TemporaryDirectory() as scratch:
        project = Project(scratch)
        project.write(BASE)
        home = project.scratch / "home"
        home.mkdir()
        env = {"HOME": str(home)}
        read_only = [p for p, on in ((home, home_ro), (project.root, checkout_ro)) if on]
        if cache != "unset":
            target = project.scratch / "cache"
            env["XDG_CACHE_HOME"] = str(target)
            if cache == "read-only":
                target.mkdir()
                read_only.append(target)
            elif cache == "a file":
                target.write_text("not a directory")
        done = run_with_read_only(read_only, ["--config", str(project.config), *command], env)
        key = f"exit {done.returncode}"
        ENV_RUNS[key] = ENV_RUNS.get(key, 0) + 1
        assert "Traceback" not in done.stderr, done.stderr
        assert [p for p in project.written_outside() if home not in p.parents
                and project.scratch / "cache" not in p.parents and p != project.scratch / "cache"] == []
        if checkout_ro:
            assert done.returncode == 1, done.stderr
            assert f"cannot write {project.root / '.mlcicd'}: Read-only file system" in done.stderr
        else:
            assert done.returncode == 0, done.stderr
            check_rendered(project, BASE)


def test_zz_report_hypothesis_input_counts():
    """Not a check: prints how many generated inputs each property above ran on."""
    print(f"\nYAML structure runs: {YAML_RUNS}; process environment runs: {ENV_RUNS}")
