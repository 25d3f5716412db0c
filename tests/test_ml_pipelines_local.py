"""Both SageMaker pipeline definitions, executed locally step by step on the real ML scripts.

The definitions come from the Terraform module (evaluated by the bundled core, as in
test_pipeline_definitions.py). A small executor plays SageMaker: s3:// URIs map to a local
directory, each job gets its own /opt/ml tree with its inputs copied in, the entry point the
definition names runs (from the job's code input) with the definition's arguments, outputs are
"uploaded", and Get / Std:Join / Std:JsonGet are resolved from what earlier steps produced. So the
wiring between steps, the container paths and the scripts' command lines are tested together.
"""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import pytest

from tests.test_ml_chain import load_script, synthetic_census
from tests.test_pipeline_definitions import INPUTS, evaluate_module


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    return evaluate_module(tmp_path_factory.mktemp("definitions"))


class LocalPipelineRun:
    """Runs a definition's steps on this machine the way SageMaker would: s3:// URIs map to a
    local directory, each job gets its /opt/ml tree with inputs copied in, the entry point named
    in the definition (taken from the job's own code input) runs with the definition's arguments,
    and outputs are "uploaded" back. Step properties are recorded for later Get references."""

    def __init__(self, s3_root: Path, work: Path, execution_id: str) -> None:
        self.s3_root, self.work, self.execution_id = s3_root, work, execution_id
        self.properties: dict[str, object] = {}
        self.property_files: dict[str, dict] = {}
        self.registered: list[dict] = []
        self.failed: str | None = None

    def local(self, uri: str) -> Path:
        assert uri.startswith("s3://") and "//" not in uri.removeprefix("s3://"), uri
        return self.s3_root / uri.removeprefix("s3://").rstrip("/")

    def resolve(self, value, parameters: dict):
        if isinstance(value, list):
            return [self.resolve(v, parameters) for v in value]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Get"}:
            kind, _, rest = value["Get"].partition(".")
            if kind == "Parameters":
                return parameters[rest]
            if kind == "Execution":
                return self.execution_id
            return self.properties[value["Get"]]
        if "Std:Join" in value:
            join = value["Std:Join"]
            return join["On"].join(str(self.resolve(v, parameters)) for v in join["Values"])
        if "Std:JsonGet" in value:
            document = self.property_files[value["Std:JsonGet"]["PropertyFile"]["Get"]]
            for key in value["Std:JsonGet"]["Path"].split("."):
                document = document[key]
            return document
        return {k: self.resolve(v, parameters) for k, v in value.items()}

    def copy_in(self, uri: str, destination: Path) -> None:
        source = self.local(uri)
        if source.is_dir():
            shutil.copytree(source, destination)
        else:
            destination.mkdir(parents=True)
            shutil.copy(source, destination / source.name)

    def execute(self, steps: list[dict], parameters: dict) -> None:
        for step in steps:
            args = self.resolve(step["Arguments"], parameters)
            getattr(self, step["Type"].lower())(step, args, parameters)

    def container(self, name: str) -> Path:
        return self.work / self.execution_id / name

    def run_entrypoint(self, root: Path, spec: dict) -> None:
        _, script = spec["ContainerEntrypoint"]
        code = root / script.removeprefix("/")
        assert code.is_file(), f"{script} is not in the job's code input"
        arguments = [str(root / a.removeprefix("/")) if a.startswith("/opt/ml/") else a
                     for a in spec["ContainerArguments"]]
        module = load_script(code.stem, code.parent)
        assert module.run(module.main, arguments) == 0, f"{code.name} {arguments}"

    def processing(self, step: dict, args: dict, parameters: dict) -> None:
        root = self.container(step["Name"])
        for item in args["ProcessingInputs"]:
            self.copy_in(item["S3Input"]["S3Uri"], root / item["S3Input"]["LocalPath"].removeprefix("/"))
        self.run_entrypoint(root, args["AppSpecification"])
        for output in args["ProcessingOutputConfig"]["Outputs"]:
            uri = output["S3Output"]["S3Uri"]
            shutil.copytree(root / output["S3Output"]["LocalPath"].removeprefix("/"), self.local(uri))
            self.properties[f"Steps.{step['Name']}.ProcessingOutputConfig.Outputs['{output['OutputName']}']"
                            ".S3Output.S3Uri"] = uri
        for pf in step.get("PropertyFiles", []):
            [output] = [o for o in args["ProcessingOutputConfig"]["Outputs"] if o["OutputName"] == pf["OutputName"]]
            path = self.local(output["S3Output"]["S3Uri"]) / pf["FilePath"]
            self.property_files[f"Steps.{step['Name']}.PropertyFiles.{pf['PropertyFileName']}"] = json.loads(
                path.read_text())

    def training(self, step: dict, args: dict, parameters: dict) -> None:
        root = self.container(step["Name"])
        for channel in args["InputDataConfig"]:
            self.copy_in(channel["DataSource"]["S3DataSource"]["S3Uri"],
                         root / "opt/ml/input/data" / channel["ChannelName"])
        self.run_entrypoint(root, args["AlgorithmSpecification"])
        uri = f"{args['OutputDataConfig']['S3OutputPath']}/{step['Name']}-{self.execution_id}/output/model.tar.gz"
        self.local(uri).parent.mkdir(parents=True)
        with tarfile.open(self.local(uri), "w:gz") as tar:
            for path in sorted((root / "opt/ml/model").iterdir()):
                tar.add(path, arcname=path.name)
        self.properties[f"Steps.{step['Name']}.ModelArtifacts.S3ModelArtifacts"] = uri

    def condition(self, step: dict, args: dict, parameters: dict) -> None:
        compare = {"GreaterThanOrEqualTo": lambda a, b: a >= b}
        passed = all(compare[c["Type"]](c["LeftValue"], c["RightValue"]) for c in args["Conditions"])
        self.execute(step["Arguments"]["IfSteps" if passed else "ElseSteps"], parameters)

    def registermodel(self, step: dict, args: dict, parameters: dict) -> None:
        self.registered.append(args)

    def fail(self, step: dict, args: dict, parameters: dict) -> None:
        self.failed = args["ErrorMessage"]


def test_both_pipelines_run_locally_end_to_end(outputs, tmp_path):
    """Training on 1500 synthetic rows registers a model; inference with that model's data scores
    every row; a threshold above the reached AUC fails the run instead of registering."""
    s3 = tmp_path / "s3"
    code = INPUTS["code_s3_uri"].removeprefix("s3://")
    for name, path in outputs["code_files"].items():
        (s3 / code).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, s3 / code / name)
    train_dir = s3 / INPUTS["input_data_uri"].removeprefix("s3://")
    train_dir.mkdir(parents=True)
    synthetic_census(1500, seed=7).to_csv(train_dir / "part-0.csv", index=False)
    score_dir = s3 / INPUTS["inference_data_uri"].removeprefix("s3://")
    score_dir.mkdir(parents=True)
    scored = synthetic_census(120, seed=8).drop(columns=["income"])
    scored.to_csv(score_dir / "part-0.csv", index=False)

    defaults = {p["Name"]: p.get("DefaultValue") for p in outputs["training"]["Parameters"]}
    training = LocalPipelineRun(s3, tmp_path / "jobs", "exec-train")
    training.execute(outputs["training"]["Steps"], defaults)
    assert training.failed is None
    [registered] = training.registered
    assert registered["ModelApprovalStatus"] == "PendingManualApproval"
    assert registered["ModelPackageGroupName"] == "demo-census"
    model_data = registered["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    assert training.local(model_data).is_file()
    statistics = json.loads(training.local(registered["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"])
                            .read_text())
    auc = statistics["binary_classification_metrics"]["auc"]["value"]
    assert 0.75 <= auc <= 1.0

    # The same evaluation against a threshold the model cannot reach: no registration, a failed run.
    [gate] = [s for s in outputs["training"]["Steps"] if s["Type"] == "Condition"]
    strict = LocalPipelineRun(s3, tmp_path / "jobs", "exec-train")
    strict.property_files = training.property_files
    strict.properties = training.properties
    strict.execute([gate], {**defaults, "MetricThreshold": 0.999})
    assert strict.registered == [] and "below MetricThreshold 0.999" in strict.failed

    inference_defaults = {p["Name"]: p.get("DefaultValue") for p in outputs["inference"]["Parameters"]}
    inference = LocalPipelineRun(s3, tmp_path / "jobs", "exec-infer")
    inference.execute(outputs["inference"]["Steps"], {**inference_defaults, "ModelDataUri": model_data})
    predictions = inference.local(f"{INPUTS['predictions_s3_uri']}/exec-infer/predictions") / "predictions.csv"
    lines = predictions.read_text().splitlines()
    assert lines[0] == "id,score,prediction"
    assert [line.split(",")[0] for line in lines[1:]] == scored["id"].tolist()
