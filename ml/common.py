"""What the ML entry points share: the data schema, reading CSV input, atomic output, the model bundle.

The entry points run inside the SageMaker scikit-learn container (this directory is uploaded as one
S3 prefix and mounted as the job's code input, so `import common` works beside each script) and
locally with explicit paths. Only scikit-learn, pandas, numpy and joblib are needed. The code stays
within what the scikit-learn 1.2-1 image offers (Python 3.8+, pandas 1.1, scikit-learn 1.2).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import tarfile
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import joblib
import pandas as pd

# Census-income style columns. Raw files may carry more columns; these must be present.
ID_COLUMN = "id"
LABEL_COLUMN = "income"
POSITIVE_LABELS = frozenset({">50K", ">50K.", "1", "True", "true"})
NEGATIVE_LABELS = frozenset({"<=50K", "<=50K.", "0", "False", "false"})
NUMERIC_FEATURES = ("age", "education_num", "capital_gain", "capital_loss", "hours_per_week")
CATEGORICAL_FEATURES = ("workclass", "education", "marital_status", "occupation", "sex")
FEATURES = NUMERIC_FEATURES + CATEGORICAL_FEATURES
# Census files mark unknown categories with "?"; they become missing values and are imputed.
MISSING_MARKERS = ("?", "")

# The model bundle: what training leaves in /opt/ml/model (SageMaker tars it into model.tar.gz).
MODEL_FILE = "model.joblib"
PREPROCESSOR_FILE = "preprocessor.joblib"
METADATA_FILE = "model.json"
MODEL_ARCHIVE = "model.tar.gz"

# Data files the steps hand to each other.
TRAIN_FILE = "train.csv"
TEST_FILE = "test.csv"
FEATURES_FILE = "features.csv"
EVALUATION_FILE = "evaluation.json"
PREDICTIONS_FILE = "predictions.csv"
TARGET_COLUMN = "label"  # the 0/1 label column in train.csv / test.csv


class DataError(Exception):
    """Input the step cannot use: missing, empty, unparsable or with the wrong columns."""


def env_path(variable: str, default: str) -> str:
    """A SageMaker location: the SM_* variable when the training toolkit set it, else the fixed path."""
    return os.environ.get(variable) or default


def csv_files(location: Path) -> list[Path]:
    """The CSV files at `location`: the file itself, or every *.csv in the directory, in name order."""
    if location.is_file():
        return [location]
    if not location.is_dir():
        raise DataError(f"{location}: no such file or directory")
    files = sorted(p for p in location.iterdir() if p.is_file() and p.suffix == ".csv")
    if not files:
        raise DataError(f"{location}: no .csv files found")
    return files


def read_csv(location: Path, *, required: Sequence[str] = (), dtype: type | dict | None = None) -> pd.DataFrame:
    """All CSV files at `location` as one frame; a clear DataError when they are empty or malformed."""
    frames = []
    for path in csv_files(location):
        try:
            frame = pd.read_csv(path, dtype=dtype, keep_default_na=False, skipinitialspace=True)
        except pd.errors.EmptyDataError:
            raise DataError(f"{path}: the file is empty") from None
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
            raise DataError(f"{path}: not a readable CSV file ({_first_line(exc)})") from None
        frame.columns = [str(c).strip() for c in frame.columns]
        missing = [c for c in required if c not in frame.columns]
        if missing:
            raise DataError(f"{path}: missing column(s) {', '.join(missing)}")
        if frame.empty:
            raise DataError(f"{path}: the file has a header but no rows")
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def write_outputs(files: dict[Path, Callable[[io.BufferedWriter], None]]) -> None:
    """Write several output files so that none appears until all are complete.

    Each writer fills a temporary file beside its target; only when every writer has succeeded
    are they renamed into place. A failure leaves no output behind, so a rerun never sees half a
    result and SageMaker never uploads one.
    """
    staged: list[tuple[str, Path]] = []
    try:
        for target, writer in files.items():
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
            staged.append((tmp, target))
            os.fchmod(fd, 0o644)  # mkstemp's 0600 would surprise whoever reads the outputs next
            with os.fdopen(fd, "wb") as fh:
                writer(fh)
                fh.flush()
                os.fsync(fh.fileno())
        for tmp, target in staged:
            os.replace(tmp, target)
    except BaseException:
        for tmp, _ in staged:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise


def csv_writer(frame: pd.DataFrame) -> Callable[[io.BufferedWriter], None]:
    # Rendered to text first: the container's pandas (1.1 in the scikit-learn 1.2-1 image) cannot
    # write CSV to a binary handle.
    return lambda fh: fh.write(frame.to_csv(index=False).encode())


def json_writer(document: dict) -> Callable[[io.BufferedWriter], None]:
    return lambda fh: fh.write((json.dumps(document, indent=2, sort_keys=True) + "\n").encode())


def joblib_writer(obj: object) -> Callable[[io.BufferedWriter], None]:
    return lambda fh: joblib.dump(obj, fh)


def load_bundle_file(location: Path, name: str) -> object:
    """One file of the model bundle, from a directory or from SageMaker's model.tar.gz.

    `location` is a bundle directory, a model.tar.gz, or a directory holding model.tar.gz (what a
    processing job sees when its input is the training job's S3ModelArtifacts). Members are read
    straight from the archive, never extracted, so a hostile archive cannot write files.
    """
    archive = location / MODEL_ARCHIVE if location.is_dir() else location
    if location.is_dir() and not archive.is_file():
        path = location / name
        if not path.is_file():
            raise DataError(f"{location}: not a model bundle (no {name} and no {MODEL_ARCHIVE})")
        return _load(path.read_bytes(), name, path)
    if not archive.is_file():
        raise DataError(f"{location}: no such model file or directory")
    try:
        with tarfile.open(archive, "r:*") as tar:
            member = next((m for m in tar.getmembers() if m.isfile() and m.name in (name, f"./{name}")), None)
            if member is None:
                raise DataError(f"{archive}: the archive has no {name}")
            data = tar.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DataError(f"{archive}: not a readable model archive ({_first_line(exc)})") from None
    return _load(data, name, archive)


def _load(data: bytes, name: str, source: Path) -> object:
    try:
        if name.endswith(".json"):
            return json.loads(data)
        return joblib.load(io.BytesIO(data))
    except Exception as exc:  # a truncated or foreign pickle raises almost anything
        raise DataError(f"{source}: cannot load model file ({_first_line(exc)})") from None


def run(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    """Run an entry point: a DataError becomes one line on stderr and exit code 2, no traceback."""
    try:
        return main(argv)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
