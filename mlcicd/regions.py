"""AWS regions and partitions, from the endpoint data botocore ships (partitions.json).

mlcicd supports the partitions whose IAM, S3 and CodePipeline it was written against: aws,
aws-cn and aws-us-gov. A region newer than the installed botocore can be allowed in the config
(`allow_regions`), as long as its name fits a supported partition.
"""

from __future__ import annotations

import importlib.util
import json
import re
from functools import cache
from pathlib import Path

SUPPORTED_PARTITIONS = ("aws", "aws-cn", "aws-us-gov")


@cache
def _partitions() -> tuple[tuple[str, re.Pattern, frozenset[str]], ...]:
    """(partition id, region-name pattern, known regions) from botocore's data, read without
    importing botocore (a config load stays fast)."""
    spec = importlib.util.find_spec("botocore")
    for location in (spec.submodule_search_locations or []) if spec else []:
        path = Path(location, "data", "partitions.json")
        if path.is_file():
            data = json.loads(path.read_bytes())
            return tuple(
                (p["id"], re.compile(p["regionRegex"]), frozenset(r for r in p["regions"] if not r.endswith("-global")))
                for p in data["partitions"]
            )
    return ()


def partition_of(region: str) -> str | None:
    """The partition a region name belongs to (by botocore's known regions, else by its
    partition's name pattern), or None."""
    parts = _partitions()
    for pid, _pattern, known in parts:
        if region in known:
            return pid
    for pid, pattern, _known in parts:
        if pattern.fullmatch(region):
            return pid
    return None


def known(region: str) -> bool:
    return any(region in regions for _pid, _pattern, regions in _partitions())


def suggestions(region: str) -> list[str]:
    import difflib  # only for a message about a mistyped region

    candidates = sorted(r for pid, _p, regions in _partitions() if pid in SUPPORTED_PARTITIONS for r in regions)
    return difflib.get_close_matches(region, candidates, n=3, cutoff=0.75)


def available() -> bool:
    """Whether the region data could be read at all (botocore is a dependency, so normally yes)."""
    return bool(_partitions())
