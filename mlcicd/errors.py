"""The error hierarchy. Library code raises these; only cli.py turns them into exit codes."""

from __future__ import annotations

# Exit codes (DESIGN.md): 0 ok, 1 operation failed, 2 bad usage/config, 3 review gate blocked.
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_BLOCKED = 3


class MlcicdError(Exception):
    """Base of every error mlcicd reports to a user."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class ConfigError(MlcicdError):
    """The config file is missing, unreadable or invalid. Names the file and the key."""

    exit_code = EXIT_USAGE

    def __init__(self, path: str, key: str | None, problem: str, *, hint: str | None = None) -> None:
        self.path = path
        self.key = key
        self.problem = problem
        where = f"{path}: {key}" if key else path
        super().__init__(f"{where}: {problem}", hint=hint)


class UsageError(MlcicdError):
    """The command line asks for something that cannot be done as asked."""

    exit_code = EXIT_USAGE


class TerraformError(MlcicdError):
    """Terraform ran and failed. `headline` says what failed; the message adds the gist of
    Terraform's own error, for where Terraform's output was not shown."""

    def __init__(self, message: str, *, returncode: int = 1, hint: str | None = None,
                 excerpt: str = "") -> None:
        super().__init__(message + excerpt, hint=hint)
        self.headline = message
        self.returncode = returncode


# -- Terraform failures, classified from Terraform's (and the AWS SDK's) own error text -------------


class StateLocked(TerraformError):
    """Another run holds the state lock (or held it a moment ago)."""

    def __init__(self, message: str, *, lock_id: str = "", returncode: int = 1, hint: str | None = None) -> None:
        super().__init__(message, returncode=returncode, hint=hint)
        self.lock_id = lock_id


class NeedsInit(TerraformError):
    """The working directory must be initialised again (a module or provider is not installed)."""


class BackendUnreachable(TerraformError):
    """The state backend's endpoint cannot be reached."""


class BackendAccessDenied(TerraformError):
    """The state backend answered 403: the credentials may not read or write the state."""


class ProviderNotInstallable(TerraformError):
    """`init` cannot download a provider (registry unreachable, no mirror)."""


class StateNotSaved(TerraformError):
    """Terraform could not upload the state after applying; it is kept for `mlcicd recover`."""


# -- plan custody ------------------------------------------------------------------------------------


class PlanRefused(MlcicdError):
    """A saved plan directory does not match what it is being applied to, or cannot be trusted."""


class StalePlan(PlanRefused):
    """The state changed after the plan was made."""


class UnrecoveredState(MlcicdError):
    """A failed apply left state that was never pushed back; planning now would ignore it."""


class TerraformNotFound(MlcicdError):
    """No Terraform could be found or loaded."""


class Interrupted(MlcicdError):
    """The user (or CI) interrupted a running operation."""

    exit_code = 130


class AwsError(MlcicdError):
    """An AWS call failed for a reason the user can act on."""


class ReviewBlocked(MlcicdError):
    """A review gate (--fail-on) found changes it was told to block."""

    exit_code = EXIT_BLOCKED

    def __init__(self, message: str, addresses: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.addresses = addresses


# -- the project's work directory (.mlcicd/) and the cache ------------------------------------


class UnsafeWorkdir(MlcicdError):
    """A path under .mlcicd/ is a symlink, a file, or outside the project: nothing is written."""

    exit_code = EXIT_USAGE

    def __init__(self, path, problem: str) -> None:
        self.path = path
        super().__init__(f"refusing to write under {path}: it {problem}",
                         hint=f"remove {path} (mlcicd recreates it as a directory inside the project)")


class WorkdirNotWritable(MlcicdError):
    """A file mlcicd generates cannot be written (read-only checkout, no permission, disk full)."""

    def __init__(self, path, reason: str) -> None:
        self.path = path
        super().__init__(f"cannot write {path}: {reason}",
                         hint="mlcicd writes generated files under .mlcicd/ in the project: make it writable, "
                              "or run from a writable copy of the checkout")


class CacheNotWritable(MlcicdError):
    """The cache directory (XDG_CACHE_HOME/mlcicd, else ~/.cache/mlcicd) cannot be written."""

    def __init__(self, path, reason: str) -> None:
        self.path = path
        super().__init__(f"cannot write the cache {path}: {reason}",
                         hint="set XDG_CACHE_HOME to a writable directory")


class PathUnusable(MlcicdError):
    """A path the file system refuses to look up at all (name too long, a symlink loop): a path
    given on the command line or in the config, never a fault of the operation."""

    exit_code = EXIT_USAGE

    def __init__(self, path, reason: str) -> None:
        self.path = path
        super().__init__(f"cannot use the path {path}: {reason}")


class PathFailed(MlcicdError):
    """Any other file-system failure on a named path (I/O error, a file vanished meanwhile)."""

    def __init__(self, path, reason: str) -> None:
        self.path = path
        super().__init__(f"{path}: {reason}")
