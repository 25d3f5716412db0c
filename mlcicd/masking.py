"""Keep secrets out of everything mlcicd prints or writes in readable form."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from mlcicd.config import Masks

MASK = "***"

# Environment variables whose values are secrets whatever the config says.
ALWAYS_SECRET_ENV = (
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "CODEBUILD_GITHUB_TOKEN",
)
_MIN_SECRET_LEN = 4  # shorter values would mask ordinary words


class Masker:
    """Replaces known secret values and configured patterns with ***."""

    def __init__(self, values: Iterable[str] = (), patterns: Iterable[str] = ()) -> None:
        secrets = sorted({v for v in values if v and len(v) >= _MIN_SECRET_LEN}, key=len, reverse=True)
        parts = [re.escape(s) for s in secrets] + [f"(?:{p})" for p in patterns]
        self._regex = re.compile("|".join(parts)) if parts else None

    @classmethod
    def from_settings(
        cls, masks: Masks, environ: Mapping[str, str], extra: Iterable[str] = ()
    ) -> Masker:
        names = set(ALWAYS_SECRET_ENV) | set(masks.env)
        values = [environ[n] for n in names if environ.get(n)]
        return cls([*values, *extra], masks.patterns)

    def with_values(self, values: Iterable[str]) -> Masker:
        """A masker that also hides `values` (e.g. sensitive tfvars found in a plan)."""
        new = Masker(values)
        if self._regex is None:
            return new
        if new._regex is None:
            return self
        merged = Masker()
        merged._regex = re.compile(f"{new._regex.pattern}|{self._regex.pattern}")
        return merged

    def __call__(self, text: str) -> str:
        if self._regex is None or not text:
            return text
        return self._regex.sub(MASK, text)
