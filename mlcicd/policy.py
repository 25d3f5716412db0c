"""Policy checks on a plan: checkov's terraform_plan framework on plan.json, when installed.

Optional by design: the review lists checkov's failures (and `--fail-on policy` can block on
them), but a missing or crashing checkov never stops a review.

One configuration for both scans: the `#checkov:skip=CHECK:reason` comments in the Terraform
sources. checkov reads them itself when it scans the modules; for a plan it reads them when
given the root module the plan was made from (`--repo-root-for-plan-enrichment`), so a check
the modules justify is listed as skipped, with its reason, not as a failure of every release.

checkov takes seconds to minutes, so it runs as a subprocess started before the review is
built (`start`), and `Scan.wait` reports progress until it ends.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mlcicd.masking import Masker
from mlcicd.printable import escape

Runner = Callable[[list[str]], tuple[int, str, str]]


@dataclass(frozen=True)
class Finding:
    check_id: str
    name: str
    address: str
    reason: str = ""  # why the sources skip it (skipped checks only)


@dataclass(frozen=True)
class Policy:
    """checkov's verdict on plan.json."""

    passed: int
    failed: tuple[Finding, ...]
    skipped: tuple[Finding, ...] = ()
    error: str = ""


def checkov_available() -> bool:
    import importlib.util
    import shutil

    return shutil.which("checkov") is not None or importlib.util.find_spec("checkov") is not None


def argv(plan_json: Path, root_module: Path | None = None) -> list[str]:
    # --skip-download: no calls to the vendor's API (CodeBuild may have no internet; nothing to fetch).
    # Not --quiet: it drops the skipped checks, and with them the reasons the review shows.
    args = ["-f", str(plan_json), "--framework", "terraform_plan", "-o", "json", "--compact", "--skip-download"]
    if root_module is not None:
        args += ["--repo-root-for-plan-enrichment", str(root_module)]
    return args


def run_checkov(plan_json: Path, masker: Masker, runner: Runner | None = None,
                root_module: Path | None = None) -> Policy:
    """checkov's terraform_plan checks on `plan_json`. A checkov crash is reported, not raised."""
    return parse(*(runner or _run_checkov)(argv(plan_json, root_module)), masker)


class Scan:
    """A checkov run in the background: `start` it, do other work, then `wait` for the verdict."""

    def __init__(self, args: list[str], runner: Runner | None = None) -> None:
        self._result: tuple[int, str, str] | None = None
        self._thread = threading.Thread(target=self._run, args=(args, runner or _run_checkov), name="checkov",
                                        daemon=True)
        self._thread.start()

    def _run(self, args: list[str], runner: Runner) -> None:
        try:
            self._result = runner(args)
        except Exception as exc:  # reported in the review like any checkov failure, never raised
            self._result = (-1, "", f"{type(exc).__name__}: {exc}")

    def wait(self, masker: Masker, progress: Callable[[float], None] | None = None,
             every: float = 5.0) -> Policy:
        """The verdict; `progress(seconds so far)` is called every `every` seconds meanwhile."""
        start = time.monotonic()
        while self._thread.is_alive():
            self._thread.join(every)
            if self._thread.is_alive() and progress is not None:
                progress(time.monotonic() - start)
        return parse(*(self._result or (-1, "", "checkov did not report")), masker)


def start(plan_json: Path, root_module: Path | None = None, runner: Runner | None = None) -> Scan:
    return Scan(argv(plan_json, root_module), runner)


def parse(code: int, out: str, err: str, masker: Masker) -> Policy:
    def clean(value: object) -> str:
        return escape(masker(str(value or "")), one_line=True)

    try:
        data = json.loads(out) if out.strip() else {}
    except ValueError:
        data = None
    if data is None or code not in (0, 1):
        last = (err or out).strip().splitlines()
        return Policy(0, (), (), error=clean(last[-1] if last else f"checkov exited {code}"))
    reports = data if isinstance(data, list) else [data]
    passed = 0
    failed: list[Finding] = []
    skipped: list[Finding] = []
    for report in reports:
        passed += int(report.get("summary", {}).get("passed", 0))
        results = report.get("results", {})
        for found, key in ((failed, "failed_checks"), (skipped, "skipped_checks")):
            for check in results.get(key, ()):
                reason = (check.get("check_result") or {}).get("suppress_comment", "")
                found.append(Finding(clean(check.get("check_id")), clean(check.get("check_name")),
                                     clean(check.get("resource_address") or check.get("resource")), clean(reason)))
    failed.sort(key=lambda f: (f.address, f.check_id))
    skipped.sort(key=lambda f: (f.address, f.check_id))
    return Policy(passed, tuple(failed), tuple(skipped))


def _run_checkov(args: list[str]) -> tuple[int, str, str]:
    import shutil
    import subprocess
    import sys

    exe = shutil.which("checkov")
    argv = [exe, *args] if exe else [sys.executable, "-m", "checkov.main", *args]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    return proc.returncode, proc.stdout, proc.stderr
