"""Inference: score the rows preprocess.py --mode transform prepared and write predictions.csv.

predictions.csv has one row per input row, in input order, with the columns `id`, `score` (the
probability of the positive class, income >50K) and `prediction` (0/1 at the 0.5 cut-off).

Defaults are the SageMaker Processing paths; every path can be given explicitly to run locally.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from common import (
    FEATURES_FILE,
    ID_COLUMN,
    METADATA_FILE,
    MODEL_FILE,
    PREDICTIONS_FILE,
    csv_writer,
    load_bundle_file,
    read_csv,
    run,
    write_outputs,
)

PROCESSING = Path("/opt/ml/processing")
CUTOFF = 0.5


def infer(args: argparse.Namespace) -> int:
    model = load_bundle_file(args.model, MODEL_FILE)
    features = load_bundle_file(args.model, METADATA_FILE)["features"]
    source = args.features / FEATURES_FILE if (args.features / FEATURES_FILE).is_file() else args.features
    data = read_csv(source, required=(ID_COLUMN, *features), dtype={ID_COLUMN: str})
    scores = model.predict_proba(data[features].to_numpy())[:, 1]
    predictions = pd.DataFrame({
        ID_COLUMN: data[ID_COLUMN], "score": scores, "prediction": (scores >= CUTOFF).astype(int),
    })
    write_outputs({args.output / PREDICTIONS_FILE: csv_writer(predictions)})
    print(f"infer: {len(predictions)} predictions, {int(predictions['prediction'].sum())} positive")
    return 0


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=PROCESSING / "model",
                        help="model bundle: directory, model.tar.gz, or directory holding model.tar.gz")
    parser.add_argument("--features", type=Path, default=PROCESSING / "features", help="features.csv or its directory")
    parser.add_argument("--output", type=Path, default=PROCESSING / "predictions")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return infer(parse(argv))


if __name__ == "__main__":
    raise SystemExit(run(main))
