"""The ML entry points (ml/*.py) run as the pipelines run them: separate processes, files in between.

A synthetic census-style dataset is generated here (no downloads): preprocess (fit) -> train ->
evaluate -> preprocess (transform, with the transform from the model bundle) -> infer. Broken
input must fail with one clear line on stderr and leave no output behind.
"""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import io
import json
import math
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ML_DIR = Path(__file__).resolve().parent.parent / "ml"
EDUCATION = ["Preschool", "1st-4th", "5th-6th", "7th-8th", "9th", "10th", "11th", "12th", "HS-grad",
             "Some-college", "Assoc-voc", "Assoc-acdm", "Bachelors", "Masters", "Prof-school", "Doctorate"]


def synthetic_census(rows: int, seed: int = 0) -> pd.DataFrame:
    """Census-income style rows whose label follows a known logistic model, so a fitted
    classifier has real signal to find (and a broken pipeline would show as AUC near 0.5)."""
    rng = np.random.default_rng(seed)
    age = rng.integers(17, 80, rows)
    education_num = rng.integers(1, 17, rows)
    hours = np.clip(rng.normal(40, 12, rows).round(), 1, 99).astype(int)
    gain = np.where(rng.random(rows) < 0.08, rng.integers(1000, 99999, rows), 0)
    loss = np.where(rng.random(rows) < 0.04, rng.integers(100, 4000, rows), 0)
    marital = rng.choice(["Married-civ-spouse", "Never-married", "Divorced", "Widowed"], rows, p=[.45, .33, .15, .07])
    sex = rng.choice(["Male", "Female"], rows)
    workclass = rng.choice(["Private", "Self-emp-not-inc", "Local-gov", "State-gov", "?"], rows,
                           p=[.7, .1, .08, .07, .05])
    occupation = rng.choice(["Exec-managerial", "Prof-specialty", "Craft-repair", "Sales", "Other-service", "?"], rows)
    logit = (-9 + 0.04 * age + 0.35 * education_num + 0.03 * hours + 0.00004 * gain
             + 1.5 * (marital == "Married-civ-spouse") + 0.3 * (sex == "Male")
             + 0.8 * np.isin(occupation, ["Exec-managerial", "Prof-specialty"]))
    income = np.where(rng.random(rows) < 1 / (1 + np.exp(-logit)), ">50K", "<=50K")
    return pd.DataFrame({
        "id": [f"p{seed}-{i:05d}" for i in range(rows)], "age": age, "workclass": workclass,
        "education": np.array(EDUCATION)[education_num - 1], "education_num": education_num,
        "marital_status": marital, "occupation": occupation, "sex": sex, "capital_gain": gain,
        "capital_loss": loss, "hours_per_week": hours, "income": income,
    })


def load_script(name: str, directory: Path = ML_DIR):
    """An entry point imported in-process (faster than a process per case); `common` resolves
    from ml/ as it does beside the script in the container."""
    if str(ML_DIR) not in sys.path:
        sys.path.insert(0, str(ML_DIR))
    spec = importlib.util.spec_from_file_location(f"ml_{name}", directory / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_script(name: str, *args: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    """The entry point as its own process, started the way the pipeline starts it."""
    return subprocess.run([sys.executable, str(ML_DIR / f"{name}.py"), *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=120)


def call(name: str, *args: str | Path) -> int:
    script = load_script(name)
    return script.run(script.main, [str(a) for a in args])


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, result.stderr
    return result


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.exists() else []


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """The whole chain once, on 2000 training rows and 300 rows to score. The last step runs as a
    separate process from another working directory, as SageMaker starts it; the others run
    in-process through the same `run(main)` entry, because each process start costs seconds of imports."""
    root = tmp_path_factory.mktemp("chain")
    synthetic_census(2000, seed=1).to_csv(root / "census.csv", index=False)
    score = synthetic_census(300, seed=2).drop(columns=["income"])
    score.loc[0, "occupation"] = "Astronaut"  # a category training never saw
    score["age"] = score["age"].astype(object)
    score.loc[1, "age"] = "?"  # a missing number
    score.to_csv(root / "score.csv", index=False)
    out = root / "out"
    assert call("preprocess", "--mode", "fit", "--input", root / "census.csv", "--train-output", out / "train",
                "--test-output", out / "test", "--preprocessor-output", out / "preprocessor") == 0
    # Training finds its paths the way SageMaker's training toolkit passes them: SM_* variables.
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SM_CHANNEL_TRAIN", str(out / "train"))
        env.setenv("SM_CHANNEL_PREPROCESSOR", str(out / "preprocessor"))
        env.setenv("SM_MODEL_DIR", str(out / "model"))
        assert call("train") == 0
    # SageMaker hands later steps the model directory as model.tar.gz.
    (out / "artifacts").mkdir()
    with tarfile.open(out / "artifacts" / "model.tar.gz", "w:gz") as tar:
        for path in files_under(out / "model"):
            tar.add(path, arcname=path.name)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert call("evaluate", "--model", out / "artifacts", "--test", out / "test",
                    "--output", out / "evaluation") == 0
    assert call("preprocess", "--mode", "transform", "--input", root / "score.csv",
                "--model", out / "artifacts" / "model.tar.gz", "--features-output", out / "features") == 0
    inferred = ok(run_script("infer", "--model", out / "artifacts" / "model.tar.gz", "--features", out / "features",
                             "--output", out / "predictions", cwd=tmp_path_factory.mktemp("elsewhere")))
    return {"out": out, "score": score, "evaluate_stdout": printed.getvalue(), "infer_stdout": inferred.stdout}


def test_chain_reaches_a_real_metric(chain):
    report = json.loads((chain["out"] / "evaluation" / "evaluation.json").read_text())
    metrics = {name: entry["value"] for name, entry in report["binary_classification_metrics"].items()}
    assert set(metrics) == {"auc", "accuracy", "precision", "recall", "f1"}
    assert all(isinstance(v, float) and math.isfinite(v) and 0.0 <= v <= 1.0 for v in metrics.values())
    # The labels follow a logistic model of the features: a working chain finds it, a broken one
    # (shuffled rows, a transform fitted on the wrong columns) lands near 0.5.
    assert metrics["auc"] > 0.8
    assert report["test_rows"] == 400  # the default 20% hold-out of 2000 rows
    assert f"auc={metrics['auc']:.4f}" in chain["evaluate_stdout"]


def test_predictions_have_one_row_per_input_row_with_id_and_score(chain):
    predictions = pd.read_csv(chain["out"] / "predictions" / "predictions.csv", dtype={"id": str})
    assert list(predictions.columns) == ["id", "score", "prediction"]
    assert predictions["id"].tolist() == chain["score"]["id"].tolist()  # same rows, same order
    assert predictions["score"].between(0.0, 1.0).all()
    assert (predictions["prediction"] == (predictions["score"] >= 0.5).astype(int)).all()
    assert 0 < predictions["prediction"].sum() < len(predictions)
    assert chain["infer_stdout"] == f"infer: 300 predictions, {predictions['prediction'].sum()} positive\n"


def test_inference_reuses_the_transform_fitted_at_training_time(chain):
    out = chain["out"]
    fitted = (out / "preprocessor" / "preprocessor.joblib").read_bytes()
    with tarfile.open(out / "artifacts" / "model.tar.gz") as tar:
        bundled = tar.extractfile("preprocessor.joblib").read()
        metadata = json.load(tar.extractfile("model.json"))
    assert bundled == fitted
    features = pd.read_csv(out / "features" / "features.csv", nrows=1)
    assert list(features.columns) == ["id", *metadata["features"]]
    train_columns = pd.read_csv(out / "train" / "train.csv", nrows=1).columns.tolist()
    assert train_columns == ["label", *metadata["features"]]


def test_outputs_are_readable_files_without_leftover_temporaries(chain):
    written = files_under(chain["out"])
    assert not [p for p in written if p.name.endswith(".tmp")]
    assert all(p.stat().st_mode & 0o044 == 0o044 for p in written)


def test_rows_without_an_id_column_are_numbered(tmp_path, chain):
    synthetic_census(5, seed=3).drop(columns=["id", "income"]).to_csv(tmp_path / "score.csv", index=False)
    model = chain["out"] / "artifacts" / "model.tar.gz"
    assert call("preprocess", "--mode", "transform", "--input", tmp_path / "score.csv", "--model", model,
                "--features-output", tmp_path / "features") == 0
    assert call("infer", "--model", model, "--features", tmp_path / "features", "--output", tmp_path / "out") == 0
    assert pd.read_csv(tmp_path / "out" / "predictions.csv")["id"].tolist() == [0, 1, 2, 3, 4]


def good_rows() -> str:
    return synthetic_census(60, seed=4).to_csv(index=False)


BROKEN_INPUTS = {
    "empty file": (b"", "the file is empty"),
    "header only": (good_rows().splitlines()[0].encode() + b"\n", "header but no rows"),
    "missing column": (synthetic_census(60, seed=4).drop(columns=["age"]).to_csv(index=False).encode(),
                       "missing column(s) age"),
    "text in a number column": (good_rows().replace(",40,", ",forty,", 1).encode(), "is not a number"),
    "unknown label": (good_rows().replace(">50K", "rich", 1).encode(), "unknown label(s) 'rich'"),
    "one class only": (good_rows().replace("<=50K", ">50K").encode(), "need at least 2 rows of each class"),
    "too few rows to split": (pd.concat([synthetic_census(60, seed=4).groupby("income").head(2)]).to_csv(
        index=False).encode(), "cannot split 4 rows into train and test"),
    "binary garbage": (bytes(range(256)) * 8, "not a readable CSV file"),
    "ragged rows": (good_rows().encode() + b"1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n", "not a readable CSV file"),
}


@pytest.mark.parametrize("case", BROKEN_INPUTS, ids=list(BROKEN_INPUTS))
def test_broken_training_input_fails_clearly_and_writes_nothing(tmp_path, capsys, case):
    data, message = BROKEN_INPUTS[case]
    if case == "text in a number column":
        assert b"forty" in data  # the corruption really happened
    (tmp_path / "census.csv").write_bytes(data)
    out = tmp_path / "out"
    assert call("preprocess", "--input", tmp_path / "census.csv", "--train-output", out / "train",
                "--test-output", out / "test", "--preprocessor-output", out / "preprocessor") == 2
    stderr = capsys.readouterr().err
    assert stderr.startswith("error: ") and message in stderr
    assert files_under(out) == []


def test_corrupt_model_archive_fails_clearly_and_writes_nothing(tmp_path, capsys, chain):
    (tmp_path / "model.tar.gz").write_bytes((chain["out"] / "artifacts" / "model.tar.gz").read_bytes()[:200])
    assert call("infer", "--model", tmp_path / "model.tar.gz", "--features", chain["out"] / "features",
                "--output", tmp_path / "out") == 2
    assert "not a readable model archive" in capsys.readouterr().err
    assert files_under(tmp_path / "out") == []


def test_scoring_input_with_missing_feature_fails_clearly(tmp_path, capsys, chain):
    synthetic_census(5, seed=5).drop(columns=["sex"]).to_csv(tmp_path / "score.csv", index=False)
    assert call("preprocess", "--mode", "transform", "--input", tmp_path / "score.csv",
                "--model", chain["out"] / "artifacts", "--features-output", tmp_path / "features") == 2
    assert "missing column(s) sex" in capsys.readouterr().err
    assert files_under(tmp_path / "features") == []


def test_a_failing_writer_leaves_none_of_the_outputs(tmp_path):
    common = load_script("common")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "old.csv").write_text("kept\n")

    def explode(fh):
        fh.write(b"half a file")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        common.write_outputs({
            tmp_path / "a" / "first.csv": lambda fh: fh.write(b"complete\n"),
            tmp_path / "b" / "second.csv": explode,
        })
    assert files_under(tmp_path) == [tmp_path / "a" / "old.csv"]


@pytest.mark.parametrize("script", sorted(p.name for p in ML_DIR.glob("*.py")))
def test_scripts_parse_as_the_containers_python(script):
    # The SageMaker scikit-learn 1.2-1 image runs Python 3.8/3.9, older than this test's Python.
    ast.parse((ML_DIR / script).read_text(), filename=script, feature_version=(3, 8))
