"""Preprocessing: clean raw census-style rows and turn them into model features.

`--mode fit` (training pipeline): validate the raw data, split it into train and test sets
(stratified), fit the feature transform on the train split only, and write train.csv, test.csv
and the fitted transform (preprocessor.joblib). Training copies the transform into the model
bundle, so inference applies exactly the transform the model was trained with.

`--mode transform` (inference pipeline): load that transform from the model bundle and write
features.csv (the id column plus the transformed features) for the prediction step.

Defaults are the SageMaker Processing paths; every path can be given explicitly to run locally.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from common import (
    CATEGORICAL_FEATURES,
    FEATURES,
    FEATURES_FILE,
    ID_COLUMN,
    LABEL_COLUMN,
    MISSING_MARKERS,
    NEGATIVE_LABELS,
    NUMERIC_FEATURES,
    POSITIVE_LABELS,
    PREPROCESSOR_FILE,
    TARGET_COLUMN,
    TEST_FILE,
    TRAIN_FILE,
    DataError,
    csv_writer,
    joblib_writer,
    load_bundle_file,
    read_csv,
    run,
    write_outputs,
)

PROCESSING = Path("/opt/ml/processing")


def clean_features(raw: pd.DataFrame) -> pd.DataFrame:
    """The feature columns with numbers parsed and missing markers turned into NaN.

    A value that is present but not a number is an error, not a missing value: it means the
    file is not what the pipeline expects (shifted columns, wrong file), and guessing would
    train or score on garbage.
    """
    frame = pd.DataFrame(index=raw.index)
    for column in NUMERIC_FEATURES:
        text = raw[column].astype(str).str.strip()
        missing = text.isin(MISSING_MARKERS)
        numbers = pd.to_numeric(text.where(~missing), errors="coerce")
        bad = numbers.isna() & ~missing
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(f"column {column!r}: {text.iloc[row]!r} in data row {row + 1} is not a number")
        frame[column] = numbers.astype(float)
    for column in CATEGORICAL_FEATURES:
        text = raw[column].astype(str).str.strip()
        frame[column] = text.where(~text.isin(MISSING_MARKERS), np.nan)
    return frame


def encode_labels(raw: pd.DataFrame) -> pd.Series:
    text = raw[LABEL_COLUMN].astype(str).str.strip()
    positive, negative = text.isin(POSITIVE_LABELS), text.isin(NEGATIVE_LABELS)
    unknown = sorted(set(text[~(positive | negative)]))
    if unknown:
        raise DataError(f"column {LABEL_COLUMN!r}: unknown label(s) {', '.join(map(repr, unknown[:5]))}; "
                        f"expected one of {', '.join(sorted(POSITIVE_LABELS | NEGATIVE_LABELS))}")
    return positive.astype(int).rename(TARGET_COLUMN)


def build_transform():
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    return ColumnTransformer([
        ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), list(NUMERIC_FEATURES)),
        ("categorical", make_pipeline(
            SimpleImputer(strategy="constant", fill_value="missing"),
            OneHotEncoder(handle_unknown="ignore", sparse_output=False),
        ), list(CATEGORICAL_FEATURES)),
    ])


def transformed(transform, features: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(transform.transform(features), columns=transform.get_feature_names_out(),
                        index=features.index)


def fit(args: argparse.Namespace) -> int:
    from sklearn.model_selection import train_test_split

    raw = read_csv(args.input, required=(*FEATURES, LABEL_COLUMN), dtype=str)
    features, labels = clean_features(raw), encode_labels(raw)
    counts = labels.value_counts()
    if len(counts) < 2 or counts.min() < 2:
        raise DataError(f"{args.input}: need at least 2 rows of each class to train and evaluate, "
                        f"got {counts.get(1, 0)} positive and {counts.get(0, 0)} negative")
    try:
        x_train, x_test, y_train, y_test = train_test_split(
            features, labels, test_size=args.test_size, stratify=labels, random_state=args.seed)
    except ValueError as exc:  # too few rows for a stratified split of this size
        raise DataError(f"{args.input}: cannot split {len(labels)} rows into train and test ({exc})") from None
    transform = build_transform().fit(x_train)
    write_outputs({
        args.train_output / TRAIN_FILE: csv_writer(pd.concat([y_train, transformed(transform, x_train)], axis=1)),
        args.test_output / TEST_FILE: csv_writer(pd.concat([y_test, transformed(transform, x_test)], axis=1)),
        args.preprocessor_output / PREPROCESSOR_FILE: joblib_writer(transform),
    })
    print(f"preprocess: {len(x_train)} train rows, {len(x_test)} test rows, "
          f"{len(transform.get_feature_names_out())} features")
    return 0


def transform(args: argparse.Namespace) -> int:
    raw = read_csv(args.input, required=FEATURES, dtype=str)
    fitted = load_bundle_file(args.model, PREPROCESSOR_FILE)
    ids = (raw[ID_COLUMN].astype(str).str.strip() if ID_COLUMN in raw.columns
           else pd.Series(range(len(raw)), index=raw.index).astype(str))  # no id column: the row number
    features = pd.concat([ids.rename(ID_COLUMN), transformed(fitted, clean_features(raw))], axis=1)
    write_outputs({args.features_output / FEATURES_FILE: csv_writer(features)})
    print(f"preprocess: {len(features)} rows transformed for inference")
    return 0


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("fit", "transform"), default="fit")
    parser.add_argument("--input", type=Path, default=PROCESSING / "input", help="raw CSV file or directory")
    parser.add_argument("--train-output", type=Path, default=PROCESSING / "train")
    parser.add_argument("--test-output", type=Path, default=PROCESSING / "test")
    parser.add_argument("--preprocessor-output", type=Path, default=PROCESSING / "preprocessor")
    parser.add_argument("--test-size", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--model", type=Path, default=PROCESSING / "model", help="model bundle (transform mode)")
    parser.add_argument("--features-output", type=Path, default=PROCESSING / "features")
    args = parser.parse_args(argv)
    if not 0.0 < args.test_size < 1.0:
        parser.error("--test-size must be between 0 and 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    return fit(args) if args.mode == "fit" else transform(args)


if __name__ == "__main__":
    raise SystemExit(run(main))
