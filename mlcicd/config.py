"""mlcicd.yaml: parsed once, validated, and frozen into typed objects.

Every error names the file and the key (``mlcicd.yaml: accounts.prod: ...``). Nothing
downstream reads the raw mapping.

Longer than most modules (~440 lines) because it is the schema: one typed object and one parse
function per key of mlcicd.yaml, each naming its key in its errors. The value checks shared by
several keys live in `configvalues`, the YAML reading in `yamlread`, the regions in `regions`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from mlcicd.configvalues import Validator as _Validator
from mlcicd.configvalues import account_id as _account_id
from mlcicd.configvalues import keyname as _keyname
from mlcicd.configvalues import refuse_ambiguous as _refuse_ambiguous
from mlcicd.configvalues import region as _region
from mlcicd.configvalues import short as _short
from mlcicd.errors import ConfigError

DEFAULT_FILENAME = "mlcicd.yaml"
ACCOUNT_ROLES = ("devops", "dev", "staging", "prod", "data")

# Environments that exist unless the config overrides them, with the order they deploy in.
DEFAULT_ENVIRONMENTS: dict[str, dict[str, Any]] = {
    "devops": {"account": "devops", "depends_on": []},
    # Nothing but a key, buckets and their policies: an administrator applies it with the data
    # account's own credentials (roles-data makes no deploy role to assume).
    "data": {"account": "data", "depends_on": [], "assume_role": False},
    # One root module serves the three ML environments; it reads which one from `environment`.
    "dev": {"account": "dev", "dir": "terraform/envs/ml", "depends_on": ["data"]},
    "staging": {"account": "staging", "dir": "terraform/envs/ml", "depends_on": ["data"]},
    "prod": {"account": "prod", "dir": "terraform/envs/ml", "depends_on": ["staging"]},
}

# Keys mlcicd itself writes into every environment's tfvars; `vars` may not override them.
RESERVED_VARS = frozenset(
    {
        "project",
        "environment",
        "region",
        "accounts",
        "account_id",
        "assume_role_arn",
        "repository",
        "branch",
        "connection_arn",
        "state_bucket",
    }
)

# Names of what mlcicd keeps beside the environments' directories in .mlcicd/ (the generated
# Terraform CLI config); an environment of that name would collide with it.
RESERVED_ENV_NAMES = frozenset({"terraformrc"})
_NAME_MAX = 255  # bytes in one file name, as on ext4, XFS, APFS
_PATH_MAX = 4095  # bytes in a path, as Linux's PATH_MAX (4096) less the terminating NUL

# Every pattern is matched against the whole value (re.fullmatch): no `$` before a trailing newline.
# Kept as text, compiled (and cached) by re when first matched: compiling them all at import
# cost ~3 ms, and a config uses only some (drift, connection_arn, vars are optional).
_PROJECT_RE = r"[a-z][a-z0-9-]{1,30}[a-z0-9]"
_ENV_RE = r"[a-z]([a-z0-9-]{0,30}[a-z0-9])?"
_REPO_RE = r"[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}"
_BRANCH_RE = r"[A-Za-z0-9._/-]{1,200}"
_BUCKET_RE = r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"
_VAR_RE = r"[A-Za-z_][A-Za-z0-9_-]{0,63}"
_CONNECTION_ARN_RE = (
    r"arn:aws[a-z-]*:(codestar-connections|codeconnections):[a-z0-9-]+:[0-9]{12}:connection/[A-Za-z0-9-]+"
)


@dataclass(frozen=True)
class Repository:
    name: str
    branch: str
    connection_name: str
    connection_arn: str | None


@dataclass(frozen=True)
class StateConfig:
    bucket: str
    lock: str  # "s3" (S3-native lockfile) or "dynamodb"
    lock_table: str
    kms_key: str  # "aws-managed", "create", or a KMS key ARN/alias
    tls_policy: bool
    logging_bucket: str | None


@dataclass(frozen=True)
class Environment:
    name: str
    account_role: str | None  # one of ACCOUNT_ROLES, or None when given as a raw id
    account_id: str
    dir: Path
    vars: Mapping[str, Any]
    depends_on: tuple[str, ...]
    assume_role: bool


@dataclass(frozen=True)
class Masks:
    env: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()


# An EventBridge schedule expression, as the pipeline module's drift_schedule validates it.
_SCHEDULE_RE = r"rate\([1-9][0-9]* (minute|minutes|hour|hours|day|days)\)|cron\([^()]+\)"
DEFAULT_DRIFT_SCHEDULE = "rate(6 hours)"


@dataclass(frozen=True)
class Drift:
    schedule: str | None = DEFAULT_DRIFT_SCHEDULE  # None: no scheduled drift check


@dataclass(frozen=True)
class Config:
    path: Path
    root: Path
    project: str
    region: str
    repository: Repository
    accounts: Mapping[str, str]
    state: StateConfig
    environments: Mapping[str, Environment]
    masks: Masks = field(default_factory=Masks)
    partition: str = "aws"  # one of regions.SUPPORTED_PARTITIONS, from the region
    drift: Drift = field(default_factory=Drift)

    @property
    def single_account(self) -> bool:
        return len(set(self.accounts.values())) == 1

    @property
    def workdir(self) -> Path:
        """Where mlcicd keeps rendered files, Terraform data dirs and plans."""
        return self.root / ".mlcicd"

    def env(self, name: str) -> Environment:
        try:
            return self.environments[name]
        except KeyError:
            known = ", ".join(sorted(self.environments))
            import difflib  # only for this message

            close = difflib.get_close_matches(name, list(self.environments), n=1, cutoff=0.6)
            raise ConfigError(
                _display(self.path), f"environments.{_keyname(name)}", f"unknown environment (known: {known})",
                hint=f"did you mean {close[0]!r}?" if close else None,
            ) from None

    def deploy_role_arn(self, env: Environment) -> str:
        return f"arn:{self.partition}:iam::{env.account_id}:role/{self.project}-{env.name}-deploy"

    def runner_role_arn(self, env: Environment) -> str:
        return f"arn:{self.partition}:iam::{env.account_id}:role/{self.project}-{env.name}-pipeline-runner"


def resolve_path(option: str | None, from_environment: str | None) -> Path:
    """The config path: --config, else $MLCICD_CONFIG (as read into Runtime), else ./mlcicd.yaml."""
    return Path(option or from_environment or DEFAULT_FILENAME)


def load(path: Path) -> Config:
    import yaml

    from mlcicd import yamlread

    shown = _display(path)
    try:
        raw_bytes = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            shown, None, "file not found (create it, or pass --config / set MLCICD_CONFIG)"
        ) from None
    except OSError as exc:
        raise ConfigError(shown, None, f"cannot read: {exc.strerror}") from None
    except ValueError:  # e.g. a NUL byte in the path
        raise ConfigError(repr(str(path)), None, "not a valid file path") from None
    try:
        text = raw_bytes.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(shown, None, "not UTF-8 text") from None
    try:
        raw = yamlread.load(text)
    except yamlread.YamlProblem as exc:
        raise ConfigError(shown, None, exc.problem) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        if isinstance(exc, yaml.constructor.ConstructorError):
            raise ConfigError(shown, None, f"unsupported YAML{where}: {problem} "
                                           "(only plain values, lists and mappings)") from None
        raise ConfigError(shown, None, f"YAML syntax error{where}: {problem}") from None
    except RecursionError:
        raise ConfigError(shown, None, "YAML nested too deeply") from None
    return parse(raw, path=path)


def parse(raw: Any, *, path: Path) -> Config:
    v = _Validator(_display(path))
    top = v.mapping(raw, None)
    _refuse_ambiguous(v, top)
    v.only(top, None, {"project", "region", "allow_regions", "repository", "accounts", "state", "environments",
                       "masks", "drift"})
    project = v.match(v.require(top, None, "project"), "project", _PROJECT_RE,
                      "must be 3-32 lowercase letters, digits or '-', starting with a letter")
    region, partition = _region(v, v.require(top, None, "region"), top.get("allow_regions"))

    repo_raw = v.mapping(v.require(top, None, "repository"), "repository")
    v.only(repo_raw, "repository", {"name", "branch", "connection_name", "connection_arn"})
    repo_name = v.match(v.require(repo_raw, "repository", "name"), "repository.name", _REPO_RE,
                        "must be owner/repo")
    branch = v.match(repo_raw.get("branch", "main"), "repository.branch", _BRANCH_RE,
                     "is not a valid branch name")
    conn_name = v.match(repo_raw.get("connection_name", f"{project}-github"),
                        "repository.connection_name", r"[A-Za-z0-9.@_-]{1,32}",
                        "must be 1-32 characters: letters, digits, '.', '@', '_' or '-'")
    conn_arn = repo_raw.get("connection_arn")
    if conn_arn is not None:
        conn_arn = v.match(conn_arn, "repository.connection_arn", _CONNECTION_ARN_RE,
                           "is not a CodeConnections/CodeStar connection ARN")
    repository = Repository(repo_name, branch, conn_name, conn_arn)

    acc_raw = v.mapping(v.require(top, None, "accounts"), "accounts")
    v.only(acc_raw, "accounts", set(ACCOUNT_ROLES))
    accounts = {}
    for role in ACCOUNT_ROLES:
        value = v.require(acc_raw, "accounts", role)
        accounts[role] = _account_id(v, value, f"accounts.{role}")

    state = _state(v, top.get("state"), project, accounts["devops"], region)
    environments = _environments(v, top.get("environments"), accounts, path.parent.resolve())
    masks = _masks(v, top.get("masks"))
    return Config(
        path=path,
        root=path.parent.resolve(),
        project=project,
        region=region,
        repository=repository,
        accounts=MappingProxyType(accounts),
        state=state,
        environments=MappingProxyType(environments),
        masks=masks,
        partition=partition,
        drift=_drift(v, top.get("drift")),
    )


def _display(path: Path) -> str:
    return str(path)


def _state(v: _Validator, raw: Any, project: str, devops: str, region: str) -> StateConfig:
    raw = {} if raw is None else v.mapping(raw, "state")
    v.only(raw, "state", {"bucket", "lock", "lock_table", "kms_key", "tls_policy", "logging_bucket"})
    default_bucket = f"{project}-tfstate-{devops}-{region}"[:63].rstrip("-.")
    bucket = v.match(raw.get("bucket", default_bucket), "state.bucket", _BUCKET_RE,
                     "is not a valid S3 bucket name")
    lock = raw.get("lock", "s3")
    if not isinstance(lock, str) or lock not in ("s3", "dynamodb"):
        raise ConfigError(v.path, "state.lock", f"{_short(lock)} must be 's3' or 'dynamodb'")
    table = v.match(raw.get("lock_table", f"{project}-tflock"), "state.lock_table",
                    r"[A-Za-z0-9_.-]{3,255}", "is not a valid DynamoDB table name")
    kms_key = v.string(raw.get("kms_key", "create"), "state.kms_key")
    if kms_key not in ("create", "aws-managed") and not kms_key.startswith(("arn:", "alias/")):
        raise ConfigError(v.path, "state.kms_key",
                          f"{_short(kms_key)} must be 'create', 'aws-managed', a key ARN or alias/NAME")
    tls = raw.get("tls_policy", True)
    if not isinstance(tls, bool):
        raise ConfigError(v.path, "state.tls_policy", f"{_short(tls)} must be true or false")
    logging_bucket = raw.get("logging_bucket")
    if logging_bucket is not None:
        logging_bucket = v.match(logging_bucket, "state.logging_bucket", _BUCKET_RE,
                                 "is not a valid S3 bucket name")
    return StateConfig(bucket, lock, table, kms_key, tls, logging_bucket)


def _environments(
    v: _Validator, raw: Any, accounts: dict[str, str], root: Path
) -> dict[str, Environment]:
    merged: dict[str, dict[str, Any]] = {k: dict(d) for k, d in DEFAULT_ENVIRONMENTS.items()}
    if raw is not None:
        for name, body in v.mapping(raw, "environments").items():
            key = f"environments.{name}"
            if not isinstance(name, str) or not re.fullmatch(_ENV_RE, name):
                raise ConfigError(v.path, f"environments.{_keyname(name)}",
                                  "environment names are lowercase letters, digits and '-' "
                                  "(at most 32), starting with a letter")
            if name in RESERVED_ENV_NAMES:
                raise ConfigError(v.path, key, f"{name!r} is reserved: mlcicd keeps its own files under "
                                               f".mlcicd/ beside the environments' (reserved: "
                                               f"{', '.join(sorted(RESERVED_ENV_NAMES))})")
            body = {} if body is None else v.mapping(body, key)
            v.only(body, key, {"account", "dir", "vars", "depends_on", "assume_role"})
            merged[name] = {**merged.get(name, {"depends_on": []}), **body}

    envs: dict[str, Environment] = {}
    for name, body in merged.items():
        key = f"environments.{name}"
        account = body.get("account", name if name in ACCOUNT_ROLES else None)
        if account is None:
            raise ConfigError(v.path, f"{key}.account",
                              "missing (one of devops, dev, staging, prod, data, or a 12-digit id)")
        if isinstance(account, str) and account in accounts:
            role, account_id = account, accounts[account]
        else:
            role, account_id = None, _account_id(v, account, f"{key}.account")
        dir_ = _env_dir(v, body.get("dir", f"terraform/envs/{name}"), f"{key}.dir", root)
        vars_raw = {} if body.get("vars") is None else v.mapping(body["vars"], f"{key}.vars")
        vars_: dict[str, Any] = {}
        for var, value in vars_raw.items():
            if not isinstance(var, str) or not re.fullmatch(_VAR_RE, var):
                raise ConfigError(v.path, f"{key}.vars.{_keyname(var)}",
                                  "variable names are letters, digits, '_' or '-', "
                                  "starting with a letter or '_'")
            if var in RESERVED_VARS:
                raise ConfigError(v.path, f"{key}.vars.{var}",
                                  "is set by mlcicd itself and cannot be overridden here")
            vars_[var] = v.value(value, f"{key}.vars.{var}")
        deps = body.get("depends_on") or []
        if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
            raise ConfigError(v.path, f"{key}.depends_on", "must be a list of environment names")
        assume = body.get("assume_role", True)
        if not isinstance(assume, bool):
            raise ConfigError(v.path, f"{key}.assume_role", f"{_short(assume)} must be true or false")
        envs[name] = Environment(
            name=name,
            account_role=role,
            account_id=account_id,
            dir=dir_,
            vars=MappingProxyType(vars_),
            depends_on=tuple(deps),
            assume_role=assume,
        )
    for env in envs.values():
        for dep in env.depends_on:
            if dep not in envs:
                import difflib  # only for this message

                close = difflib.get_close_matches(dep, list(envs), n=1, cutoff=0.6)
                raise ConfigError(v.path, f"environments.{env.name}.depends_on",
                                  f"{_short(dep)} is not a known environment",
                                  hint=f"did you mean {close[0]!r}?" if close else None)
    _check_acyclic(v, envs)
    return envs


def _env_dir(v: _Validator, raw: Any, key: str, root: Path) -> Path:
    text = v.string(raw, key)
    if not text or "\x00" in text:
        raise ConfigError(v.path, key, "must be a directory path")
    # Lexical normalisation (no filesystem calls): cheap for configs with many environments.
    resolved = Path(os.path.normpath(os.path.join(root, text)))
    # Linux and macOS file systems refuse longer names (ENAMETOOLONG): say so here, once.
    longest = max(len(os.fsencode(part)) for part in resolved.parts)
    if longest > _NAME_MAX or len(os.fsencode(str(resolved))) > _PATH_MAX:
        raise ConfigError(v.path, key, f"{_short(text)} is too long for a directory path (at most "
                                       f"{_NAME_MAX} bytes per directory name, {_PATH_MAX} in all)")
    if resolved != root and root not in resolved.parents:
        raise ConfigError(v.path, key, f"{_short(text)} points outside the project directory {root}")
    return resolved


def _check_acyclic(v: _Validator, envs: dict[str, Environment]) -> None:
    state: dict[str, int] = {}

    def visit(name: str, trail: tuple[str, ...]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = " -> ".join((*trail[trail.index(name):], name))
            raise ConfigError(v.path, f"environments.{name}.depends_on", f"dependency cycle: {cycle}")
        state[name] = 1
        for dep in envs[name].depends_on:
            visit(dep, (*trail, name))
        state[name] = 2

    for name in envs:
        visit(name, ())


def _masks(v: _Validator, raw: Any) -> Masks:
    if raw is None:
        return Masks()
    raw = v.mapping(raw, "masks")
    v.only(raw, "masks", {"env", "patterns"})
    env = raw.get("env") or []
    pats = raw.get("patterns") or []
    if not isinstance(env, list) or not all(isinstance(e, str) and e for e in env):
        raise ConfigError(v.path, "masks.env", "must be a list of environment variable names")
    if not isinstance(pats, list) or not all(isinstance(p, str) for p in pats):
        raise ConfigError(v.path, "masks.patterns", "must be a list of regular expressions")
    for i, p in enumerate(pats):
        try:
            re.compile(p)
        except re.error as exc:
            raise ConfigError(v.path, f"masks.patterns[{i}]", f"invalid regular expression: {exc}") from None
    return Masks(tuple(env), tuple(pats))


def _drift(v: _Validator, raw: Any) -> Drift:
    """`drift: {schedule: EXPR}`; `schedule: null` turns the scheduled check off."""
    if raw is None:
        return Drift()
    raw = v.mapping(raw, "drift")
    v.only(raw, "drift", {"schedule"})
    if "schedule" in raw and raw["schedule"] is None:
        return Drift(None)
    schedule = v.match(raw.get("schedule", DEFAULT_DRIFT_SCHEDULE), "drift.schedule", _SCHEDULE_RE,
                       "must be an EventBridge schedule such as rate(6 hours) or cron(0 */6 * * ? *), or null")
    return Drift(schedule)


def to_jsonable(value: Any) -> Any:
    """Turn frozen config values (tuples, mapping proxies) back into JSON types."""
    if isinstance(value, Mapping):
        return {k: to_jsonable(x) for k, x in value.items()}
    if isinstance(value, tuple | list):
        return [to_jsonable(x) for x in value]
    return value


def fingerprint(*parts: bytes) -> str:
    import hashlib  # here, not at the top: loading OpenSSL costs ~5 ms at import

    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


__all__ = [
    "ACCOUNT_ROLES",
    "Config",
    "Drift",
    "Environment",
    "Masks",
    "Repository",
    "StateConfig",
    "fingerprint",
    "load",
    "parse",
    "resolve_path",
    "to_jsonable",
]
