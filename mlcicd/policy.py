"""Policy checks on a plan: checkov's terraform_plan framework on plan.json, when installed.

Optional by design: the review lists checkov's failures (and `--fail-on policy` can block on
them), but a missing or crashing checkov never stops a review.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mlcicd.masking import Masker


@dataclass(frozen=True)
class Finding:
    check_id: str
    name: str
    address: str


@dataclass(frozen=True)
class Policy:
    """checkov's verdict on plan.json."""

    passed: int
    failed: tuple[Finding, ...]
    skipped: int
    error: str = ""



def checkov_available() -> bool:
    import importlib.util
    import shutil

    return shutil.which("checkov") is not None or importlib.util.find_spec("checkov") is not None


def run_checkov(plan_json: Path, masker: Masker,
                runner: Callable[[list[str]], tuple[int, str, str]] | None = None) -> Policy:
    """checkov's terraform_plan checks on `plan_json`. A checkov crash is reported, not raised."""
    # --skip-download: no calls to the vendor's API (CodeBuild may have no internet; nothing to fetch).
    argv = ["-f", str(plan_json), "--framework", "terraform_plan", "-o", "json", "--compact", "--quiet",
            "--skip-download"]
    code, out, err = (runner or _run_checkov)(argv)
    try:
        data = json.loads(out) if out.strip() else {}
    except ValueError:
        data = None
    if data is None or code not in (0, 1):
        last = (err or out).strip().splitlines()
        return Policy(0, (), 0, error=masker(last[-1] if last else f"checkov exited {code}"))
    reports = data if isinstance(data, list) else [data]
    passed = skipped = 0
    failed: list[Finding] = []
    for report in reports:
        summary = report.get("summary", {})
        passed += int(summary.get("passed", 0))
        skipped += int(summary.get("skipped", 0))
        for check in report.get("results", {}).get("failed_checks", ()):
            failed.append(Finding(masker(str(check.get("check_id", ""))), masker(str(check.get("check_name", ""))),
                                  masker(str(check.get("resource_address") or check.get("resource", "")))))
    failed.sort(key=lambda f: (f.address, f.check_id))
    return Policy(passed, tuple(failed), skipped)


def _run_checkov(args: list[str]) -> tuple[int, str, str]:
    import shutil
    import subprocess
    import sys

    exe = shutil.which("checkov")
    argv = [exe, *args] if exe else [sys.executable, "-m", "checkov.main", *args]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    return proc.returncode, proc.stdout, proc.stderr
