"""Training: fit a logistic-regression classifier on the preprocessed train split.

Writes the model bundle into the model directory: the classifier (model.joblib), the fitted
transform from preprocessing (preprocessor.joblib, copied unchanged so inference reuses it) and
model.json (the feature order and label encoding). SageMaker tars the model directory into
model.tar.gz when the job ends.

Defaults follow the SageMaker training layout (SM_MODEL_DIR, SM_CHANNEL_TRAIN and
SM_CHANNEL_PREPROCESSOR when the training toolkit sets them, else the /opt/ml paths); every path
can be given explicitly to run locally.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import sklearn
from common import (
    ID_COLUMN,
    LABEL_COLUMN,
    METADATA_FILE,
    MODEL_FILE,
    PREPROCESSOR_FILE,
    TARGET_COLUMN,
    DataError,
    env_path,
    joblib_writer,
    json_writer,
    read_csv,
    run,
    write_outputs,
)


def train(args: argparse.Namespace) -> int:
    from sklearn.linear_model import LogisticRegression

    data = read_csv(args.train, required=(TARGET_COLUMN,))
    non_numeric = [c for c in data.columns if data[c].dtype.kind not in "biuf"]
    if non_numeric:
        raise DataError(f"{args.train}: column(s) {', '.join(non_numeric)} are not numeric; "
                        "is this the output of preprocess.py --mode fit?")
    labels = data.pop(TARGET_COLUMN)
    if labels.nunique() < 2:
        raise DataError(f"{args.train}: the train split holds only one class")
    transform = args.preprocessor / PREPROCESSOR_FILE
    if not transform.is_file():
        raise DataError(f"{transform}: no such file (the preprocess step writes it)")
    model = LogisticRegression(C=args.c, max_iter=args.max_iter).fit(data.to_numpy(), labels.to_numpy())
    metadata = {
        "features": list(data.columns),
        "id_column": ID_COLUMN,
        "label_column": LABEL_COLUMN,
        "positive_class": 1,
        "train_rows": len(data),
        "sklearn_version": sklearn.__version__,
    }
    write_outputs({
        args.model_dir / MODEL_FILE: joblib_writer(model),
        args.model_dir / PREPROCESSOR_FILE: lambda fh: fh.write(transform.read_bytes()),
        args.model_dir / METADATA_FILE: json_writer(metadata),
    })
    print(f"train: fitted on {len(data)} rows, {data.shape[1]} features")
    return 0


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=Path, default=Path(env_path("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train")))
    parser.add_argument("--preprocessor", type=Path,
                        default=Path(env_path("SM_CHANNEL_PREPROCESSOR", "/opt/ml/input/data/preprocessor")))
    parser.add_argument("--model-dir", type=Path, default=Path(env_path("SM_MODEL_DIR", "/opt/ml/model")))
    parser.add_argument("--c", type=float, default=1.0, help="inverse regularisation strength")
    parser.add_argument("--max-iter", type=int, default=1000)
    args = parser.parse_args(argv)
    if args.c <= 0:
        parser.error("--c must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    return train(parse(argv))


if __name__ == "__main__":
    raise SystemExit(run(main))
