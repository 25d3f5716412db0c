"""The SageMaker pipeline definitions, evaluated by the bundled Terraform core and checked before AWS.

A tiny root module calls terraform/modules/sagemaker-pipeline-definitions the way an environment
does (relative source), `init` + `apply` with local state, and `output -json` gives the JSON that
aws_sagemaker_pipeline would receive. The checks: every reference (Get, Std:Join, Std:JsonGet,
parameters, step properties) resolves; step types carry their required fields; the condition gates
registration on the evaluation metric; the inference pipeline scores with the model it is given.
tests/test_ml_pipelines_local.py executes both definitions step by step on the real ML scripts.
"""

from __future__ import annotations

import json
import os
import re
import textwrap
from pathlib import Path

import pytest

from mlcicd.errors import TerraformError
from mlcicd.terraform import Terraform, resolve_executable
from tests.test_ml_chain import ML_DIR, load_script

MODULE = Path(__file__).resolve().parent.parent / "terraform" / "modules" / "sagemaker-pipeline-definitions"
KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ROLE = "arn:aws:iam::123456789012:role/demo-sagemaker"
INPUTS = {
    "project": "demo",
    "environment": "staging",
    "role_arn": ROLE,
    "code_s3_uri": "s3://demo-data/code",
    "input_data_uri": "s3://demo-data/census/train/",
    "inference_data_uri": "s3://demo-data/census/score/",
    "model_s3_uri": "s3://demo-data/models/",  # the trailing slash must not double up in joined URIs
    "predictions_s3_uri": "s3://demo-data/predictions",
    "model_package_group_name": "demo-census",
    "output_kms_key_arn": KMS_KEY,
    "metric_threshold": 0.75,
    "processing_instance_type": "ml.m5.large",
    "training_instance_type": "ml.m5.xlarge",
    "inference_instance_type": "ml.c5.large",
    "sklearn_image_uri": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3",
}
NAME = re.compile(r"^[A-Za-z0-9\-_]{1,64}$")
PARAMETER_TYPES = {"String": str, "Integer": int, "Float": (int, float), "Boolean": bool}
EXECUTION_VARIABLES = {"PipelineExecutionId", "PipelineExecutionArn", "PipelineName", "StartDateTime",
                       "CurrentDateTime", "PipelineArn"}


def terraform(workdir: Path, lines: list[str] | None = None) -> Terraform:
    (workdir / "terraformrc").write_text("")
    sink = (lambda line, err: lines.append(line)) if lines is not None else (lambda line, err: None)
    return Terraform(executable=resolve_executable("bundled"), environ={"PATH": os.environ.get("PATH", "/usr/bin")},
                     data_dir=workdir / "tfdata", cli_config=workdir / "terraformrc", sink=sink)


def write_root(root: Path, inputs: dict) -> None:
    """A root module calling ours by relative path, as terraform/envs/* do."""
    root.mkdir(parents=True)
    source = os.path.relpath(MODULE, root)
    arguments = "\n".join(f"  {name} = {json.dumps(value)}" for name, value in inputs.items())
    (root / "main.tf").write_text(textwrap.dedent("""\
        module "definitions" {
          source = "%s"
        %s
        }
        output "training" { value = module.definitions.training_definition }
        output "inference" { value = module.definitions.inference_definition }
        output "code_files" { value = module.definitions.code_files }
        """) % (source, arguments))


def evaluate_module(work: Path) -> dict:
    """The module's outputs for INPUTS, decoded: both definitions and the code files."""
    write_root(work / "root", INPUTS)
    tf = terraform(work)
    tf.check(["init", "-input=false", "-no-color"], cwd=work / "root", what="init")
    tf.check(["apply", "-auto-approve", "-input=false", "-no-color"], cwd=work / "root", what="apply")
    result = tf.check(["output", "-json"], cwd=work / "root", what="output", capture=True)
    values = {name: entry["value"] for name, entry in json.loads(result.stdout).items()}
    return {
        "training": json.loads(values["training"]),
        "inference": json.loads(values["inference"]),
        "code_files": {name: (work / "root" / path).resolve() for name, path in values["code_files"].items()},
    }


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    return evaluate_module(tmp_path_factory.mktemp("definitions"))


@pytest.fixture(params=["training", "inference"])
def definition(request, outputs):
    return outputs[request.param]


# ------------------------------------------------------------------ a checker for definitions

def all_steps(definition: dict) -> list[dict]:
    """Every step, including those nested in a condition's IfSteps/ElseSteps."""
    found = []
    for step in definition["Steps"]:
        found.append(step)
        if step["Type"] == "Condition":
            found += step["Arguments"].get("IfSteps", []) + step["Arguments"].get("ElseSteps", [])
    return found


def references(node, owner: str | None = None):
    """(owning top-level-or-nested step, Get string) for every Get in the document."""
    if isinstance(node, dict):
        if set(node) == {"Get"}:
            yield owner, node["Get"]
            return
        if "Type" in node and "Name" in node and isinstance(node.get("Arguments"), dict):
            owner = node["Name"]
        for value in node.values():
            yield from references(value, owner)
    elif isinstance(node, list):
        for value in node:
            yield from references(value, owner)


def step_property(step: dict, path: str) -> str | None:
    """None when `path` is a property this step really has, else what is wrong."""
    args = step["Arguments"]
    if step["Type"] == "Processing":
        outputs = {o["OutputName"] for o in args.get("ProcessingOutputConfig", {}).get("Outputs", [])}
        match = re.fullmatch(r"ProcessingOutputConfig\.Outputs\['([^']+)'\]\.S3Output\.S3Uri", path)
        if match:
            return None if match[1] in outputs else f"no output {match[1]!r}"
        match = re.fullmatch(r"PropertyFiles\.(.+)", path)
        if match:
            files = {p["PropertyFileName"]: p for p in step.get("PropertyFiles", [])}
            if match[1] not in files:
                return f"no property file {match[1]!r}"
            return None if files[match[1]]["OutputName"] in outputs else "property file on a missing output"
    if step["Type"] == "Training" and path == "ModelArtifacts.S3ModelArtifacts":
        return None
    if step["Type"] == "RegisterModel" and path == "ModelPackageArn":
        return None
    return f"{step['Type']} step has no property {path!r}"


def problems(definition: dict) -> list[str]:
    """Everything that would make SageMaker reject the definition or fail a run on a bad reference."""
    found = []
    if definition.get("Version") != "2020-12-01":
        found.append(f"Version {definition.get('Version')!r}")
    parameters = {p["Name"]: p for p in definition.get("Parameters", [])}
    if len(parameters) != len(definition.get("Parameters", [])):
        found.append("duplicate parameter names")
    for name, p in parameters.items():
        if not NAME.match(name) or p.get("Type") not in PARAMETER_TYPES:
            found.append(f"parameter {name!r}: bad name or type")
        elif "DefaultValue" in p and not isinstance(p["DefaultValue"], PARAMETER_TYPES[p["Type"]]):
            found.append(f"parameter {name!r}: default is not a {p['Type']}")
    steps = {s["Name"]: s for s in all_steps(definition)}
    if len(steps) != len(all_steps(definition)):
        found.append("duplicate step names")
    found += [f"step name {n!r}" for n in steps if not NAME.match(n)]
    used_parameters, depends = set(), {name: set() for name in steps}
    for owner, ref in references(definition):
        kind, _, rest = ref.partition(".")
        if kind == "Parameters":
            used_parameters.add(rest)
            if rest not in parameters:
                found.append(f"{owner}: unknown parameter {rest!r}")
        elif kind == "Execution":
            if rest not in EXECUTION_VARIABLES:
                found.append(f"{owner}: unknown execution variable {rest!r}")
        elif kind == "Steps":
            target, _, path = rest.partition(".")
            if target not in steps:
                found.append(f"{owner}: unknown step {target!r}")
            elif target == owner:
                found.append(f"{owner}: refers to itself")
            else:
                depends[owner].add(target)
                problem = step_property(steps[target], path)
                if problem:
                    found.append(f"{owner} -> {target}: {problem}")
        else:
            found.append(f"{owner}: reference {ref!r} is neither Parameters, Execution nor Steps")
    found += [f"parameter {name!r} is never used" for name in set(parameters) - used_parameters]
    found += join_problems(definition)
    # Data dependencies must form a DAG, or SageMaker cannot order the steps.
    done: set[str] = set()
    while len(done) < len(steps):
        ready = {n for n in steps if n not in done and depends[n] <= done}
        if not ready:
            found.append(f"dependency cycle among {sorted(set(steps) - done)}")
            break
        done |= ready
    return found


def join_problems(node) -> list[str]:
    found = []
    if isinstance(node, dict):
        if "Std:Join" in node:
            join = node["Std:Join"]
            if set(node) != {"Std:Join"} or not isinstance(join.get("On"), str) or not isinstance(
                    join.get("Values"), list) or not join["Values"]:
                found.append(f"malformed Std:Join {node}")
        if "Std:JsonGet" in node:
            json_get = node["Std:JsonGet"]
            if set(json_get) != {"PropertyFile", "Path"} or not re.fullmatch(r"[\w.\[\]']+", json_get["Path"]):
                found.append(f"malformed Std:JsonGet {node}")
        for value in node.values():
            found += join_problems(value)
    elif isinstance(node, list):
        for value in node:
            found += join_problems(value)
    return found


REQUIRED = {
    "Processing": [("AppSpecification", "ImageUri"), ("AppSpecification", "ContainerEntrypoint"), ("RoleArn",),
                   ("ProcessingResources", "ClusterConfig", "InstanceCount"),
                   ("ProcessingResources", "ClusterConfig", "InstanceType"),
                   ("ProcessingResources", "ClusterConfig", "VolumeSizeInGB"),
                   ("ProcessingOutputConfig", "Outputs"), ("ProcessingOutputConfig", "KmsKeyId"),
                   ("StoppingCondition", "MaxRuntimeInSeconds")],
    "Training": [("AlgorithmSpecification", "TrainingImage"), ("AlgorithmSpecification", "TrainingInputMode"),
                 ("RoleArn",), ("InputDataConfig",), ("OutputDataConfig", "S3OutputPath"),
                 ("OutputDataConfig", "KmsKeyId"), ("ResourceConfig", "InstanceCount"),
                 ("ResourceConfig", "InstanceType"), ("ResourceConfig", "VolumeSizeInGB"),
                 ("StoppingCondition", "MaxRuntimeInSeconds")],
    "RegisterModel": [("ModelPackageGroupName",), ("ModelApprovalStatus",), ("InferenceSpecification", "Containers"),
                      ("InferenceSpecification", "SupportedContentTypes"),
                      ("InferenceSpecification", "SupportedResponseMIMETypes")],
    "Condition": [("Conditions",), ("IfSteps",), ("ElseSteps",)],
    "Fail": [("ErrorMessage",)],
}


def missing_fields(step: dict) -> list[str]:
    missing = []
    for path in REQUIRED[step["Type"]]:
        node = step["Arguments"]
        for key in path:
            if not isinstance(node, dict) or key not in node:
                missing.append(f"{step['Name']}: {'.'.join(path)}")
                break
            node = node[key]
    return missing


# ------------------------------------------------------------------ the checks

def test_every_reference_resolves(definition):
    assert problems(definition) == []


def cycle(definition: dict) -> None:
    """Preprocess reads what Train produces, and Train reads what Preprocess produces."""
    inputs = definition["Steps"][0]["Arguments"]["ProcessingInputs"]
    [raw] = [i for i in inputs if i["InputName"] == "input"]
    raw["S3Input"]["S3Uri"] = {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}


BREAKAGES = {
    "renamed step": (lambda d: d["Steps"][1].update(Name="Renamed"), "unknown step 'Train'"),
    "undeclared parameter": (lambda d: d["Parameters"].pop(0), "unknown parameter 'InputDataUri'"),
    "unused parameter": (lambda d: d["Parameters"].append({"Name": "Spare", "Type": "String"}), "never used"),
    "misspelt output": (lambda d: d["Steps"][1].update(Arguments=json.loads(
        json.dumps(d["Steps"][1]["Arguments"]).replace("'train']", "'trian']"))), "no output 'trian'"),
    "cycle": (cycle, "dependency cycle"),
}


@pytest.mark.parametrize("case", BREAKAGES, ids=list(BREAKAGES))
def test_the_checker_catches_broken_references(outputs, case):
    breakage, expected = BREAKAGES[case]
    broken = json.loads(json.dumps(outputs["training"]))
    breakage(broken)
    assert any(expected in p for p in problems(broken)), problems(broken)


def test_steps_carry_their_type_and_required_fields(outputs):
    training = {s["Name"]: s["Type"] for s in all_steps(outputs["training"])}
    assert training == {"Preprocess": "Processing", "Train": "Training", "Evaluate": "Processing",
                        "CheckMetric": "Condition", "RegisterModel": "RegisterModel",
                        "MetricBelowThreshold": "Fail"}
    assert {s["Name"]: s["Type"] for s in all_steps(outputs["inference"])} == {
        "Preprocess": "Processing", "Predict": "Processing"}
    for definition in (outputs["training"], outputs["inference"]):
        assert [m for s in all_steps(definition) for m in missing_fields(s)] == []


def test_every_job_runs_as_the_role_and_encrypts_outputs_with_the_key(definition):
    jobs = [s["Arguments"] for s in all_steps(definition) if s["Type"] in ("Processing", "Training")]
    assert jobs and all(job["RoleArn"] == ROLE for job in jobs)
    # Instance types come from parameters, so an execution can change them without a deploy.
    resources = [job["ProcessingResources"]["ClusterConfig"] if "ProcessingResources" in job else job["ResourceConfig"]
                 for job in jobs]
    assert all(re.fullmatch(r"Parameters\.\w+InstanceType", r["InstanceType"]["Get"]) for r in resources)
    keys = [job.get("ProcessingOutputConfig", job.get("OutputDataConfig"))["KmsKeyId"] for job in jobs]
    assert keys == [KMS_KEY] * len(jobs)
    assert all({"Key": "environment", "Value": "staging"} in job["Tags"] for job in jobs)


def test_parameters_default_to_the_module_inputs(outputs):
    defaults = {p["Name"]: p.get("DefaultValue") for p in outputs["training"]["Parameters"]}
    assert defaults == {
        "InputDataUri": INPUTS["input_data_uri"], "ModelArtifactsUri": "s3://demo-data/models",
        "ProcessingInstanceType": "ml.m5.large", "TrainingInstanceType": "ml.m5.xlarge",
        "MetricThreshold": 0.75, "ModelPackageGroupName": "demo-census",
    }
    defaults = {p["Name"]: p.get("DefaultValue") for p in outputs["inference"]["Parameters"]}
    assert defaults == {
        "ModelDataUri": None, "InputDataUri": INPUTS["inference_data_uri"],
        "PredictionsUri": INPUTS["predictions_s3_uri"], "ProcessingInstanceType": "ml.m5.large",
        "InferenceInstanceType": "ml.c5.large",
    }


def test_condition_registers_only_when_the_evaluation_metric_reaches_the_threshold(outputs):
    [condition_step] = [s for s in outputs["training"]["Steps"] if s["Type"] == "Condition"]
    [condition] = condition_step["Arguments"]["Conditions"]
    assert condition["Type"] == "GreaterThanOrEqualTo"
    assert condition["RightValue"] == {"Get": "Parameters.MetricThreshold"}
    json_get = condition["LeftValue"]["Std:JsonGet"]
    assert json_get["PropertyFile"] == {"Get": "Steps.Evaluate.PropertyFiles.EvaluationReport"}
    assert json_get["Path"] == "binary_classification_metrics.auc.value"
    [evaluate] = [s for s in outputs["training"]["Steps"] if s["Name"] == "Evaluate"]
    assert evaluate["PropertyFiles"] == [
        {"PropertyFileName": "EvaluationReport", "OutputName": "evaluation", "FilePath": "evaluation.json"}]
    [register] = condition_step["Arguments"]["IfSteps"]
    assert register["Arguments"]["ModelApprovalStatus"] == "PendingManualApproval"
    assert register["Arguments"]["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] == {
        "Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}
    assert [s["Type"] for s in condition_step["Arguments"]["ElseSteps"]] == ["Fail"]


def test_inference_reads_the_model_from_its_parameter(outputs):
    model_parameter = {"Get": "Parameters.ModelDataUri"}
    for step in outputs["inference"]["Steps"]:
        inputs = {i["InputName"]: i["S3Input"]["S3Uri"] for i in step["Arguments"]["ProcessingInputs"]}
        assert inputs["model"] == model_parameter
    [parameter] = [p for p in outputs["inference"]["Parameters"] if p["Name"] == "ModelDataUri"]
    assert "DefaultValue" not in parameter  # every execution must say which model it scores with


def test_entrypoints_and_container_paths_line_up_with_the_scripts(outputs):
    assert set(outputs["code_files"]) == {p.name for p in ML_DIR.glob("*.py")}
    assert all(path == ML_DIR / name for name, path in outputs["code_files"].items())
    for definition in (outputs["training"], outputs["inference"]):
        for step in all_steps(definition):
            if step["Type"] == "Processing":
                spec, base = step["Arguments"]["AppSpecification"], "/opt/ml/processing"
                mounts = {i["S3Input"]["LocalPath"] for i in step["Arguments"]["ProcessingInputs"]}
                mounts |= {o["S3Output"]["LocalPath"] for o in step["Arguments"]["ProcessingOutputConfig"]["Outputs"]}
            elif step["Type"] == "Training":
                spec, base = step["Arguments"]["AlgorithmSpecification"], "/opt/ml/input/data"
                channels = step["Arguments"]["InputDataConfig"]
                mounts = {f"{base}/{c['ChannelName']}" for c in channels} | {"/opt/ml/model"}
            else:
                continue
            interpreter, script = spec["ContainerEntrypoint"]
            assert interpreter == "python3" and script == f"{base}/code/{Path(script).name}"
            assert Path(script).name in outputs["code_files"]
            paths = {a for a in spec["ContainerArguments"] if a.startswith("/opt/ml/")}
            assert paths | {f"{base}/code"} == mounts, step["Name"]
            # The scripts' own argument parsers accept exactly what the pipeline passes.
            load_script(Path(script).stem).parse(spec["ContainerArguments"])


def test_optional_inputs_have_working_defaults(tmp_path):
    optional = {"inference_data_uri", "max_runtime_in_seconds", "ml_code_dir"}
    write_root(tmp_path / "root", {k: v for k, v in INPUTS.items() if k not in optional})
    tf = terraform(tmp_path)
    tf.check(["init", "-input=false", "-no-color"], cwd=tmp_path / "root", what="init")
    tf.check(["apply", "-auto-approve", "-input=false", "-no-color"], cwd=tmp_path / "root", what="apply")
    result = tf.check(["output", "-json", "inference"], cwd=tmp_path / "root", what="output", capture=True)
    inference = json.loads(json.loads(result.stdout))
    defaults = {p["Name"]: p.get("DefaultValue") for p in inference["Parameters"]}
    assert defaults["InputDataUri"] == INPUTS["input_data_uri"]
    assert {s["Arguments"]["StoppingCondition"]["MaxRuntimeInSeconds"] for s in inference["Steps"]} == {3600}


def test_invalid_inputs_are_rejected_by_the_module(tmp_path):
    write_root(tmp_path / "root", {**INPUTS, "metric_threshold": 1.5, "role_arn": "not-an-arn",
                                   "inference_data_uri": "https://example.com/data.csv"})
    lines: list[str] = []
    tf = terraform(tmp_path, lines)
    tf.check(["init", "-input=false", "-no-color"], cwd=tmp_path / "root", what="init")
    with pytest.raises(TerraformError, match="Invalid value for variable"):
        tf.check(["plan", "-input=false", "-no-color"], cwd=tmp_path / "root", what="plan")
    printed = " ".join(line.strip(" │") for line in lines)
    assert "metric_threshold is an AUC and must be between 0 and 1" in printed
    assert "role_arn must be an IAM role ARN" in printed
    assert "inference_data_uri must be an s3://BUCKET/KEY URI" in printed
