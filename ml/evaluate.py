"""Evaluation: score the trained model on the held-out test split and write evaluation.json.

The report follows SageMaker's model-quality layout (`binary_classification_metrics.<name>.value`),
so the training pipeline's condition step reads `binary_classification_metrics.auc.value` from it
(a PropertyFile) and the model registry shows it as the model's quality metrics.

Defaults are the SageMaker Processing paths; every path can be given explicitly to run locally.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from common import (
    EVALUATION_FILE,
    METADATA_FILE,
    MODEL_FILE,
    TARGET_COLUMN,
    TEST_FILE,
    DataError,
    json_writer,
    load_bundle_file,
    read_csv,
    run,
    write_outputs,
)

PROCESSING = Path("/opt/ml/processing")


def metrics(labels, scores, cutoff: float = 0.5) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

    predicted = (scores >= cutoff).astype(int)
    return {
        "auc": float(roc_auc_score(labels, scores)),
        "accuracy": float(accuracy_score(labels, predicted)),
        "precision": float(precision_score(labels, predicted, zero_division=0)),
        "recall": float(recall_score(labels, predicted, zero_division=0)),
        "f1": float(f1_score(labels, predicted, zero_division=0)),
    }


def evaluate(args: argparse.Namespace) -> int:
    model = load_bundle_file(args.model, MODEL_FILE)
    features = load_bundle_file(args.model, METADATA_FILE)["features"]
    test = read_csv(args.test / TEST_FILE if args.test.is_dir() else args.test, required=(TARGET_COLUMN, *features))
    labels = test[TARGET_COLUMN]
    if labels.nunique() < 2:
        raise DataError(f"{args.test}: the test split holds only one class; AUC is undefined")
    scores = model.predict_proba(test[features].to_numpy())[:, 1]
    values = metrics(labels.to_numpy(), scores)
    report = {
        "binary_classification_metrics": {name: {"value": value} for name, value in values.items()},
        "test_rows": len(test),
    }
    write_outputs({args.output / EVALUATION_FILE: json_writer(report)})
    print("evaluate: " + ", ".join(f"{name}={value:.4f}" for name, value in values.items()))
    return 0


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=PROCESSING / "model",
                        help="model bundle: directory, model.tar.gz, or directory holding model.tar.gz")
    parser.add_argument("--test", type=Path, default=PROCESSING / "test", help="test.csv or its directory")
    parser.add_argument("--output", type=Path, default=PROCESSING / "evaluation")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return evaluate(parse(argv))


if __name__ == "__main__":
    raise SystemExit(run(main))
