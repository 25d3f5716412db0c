output "training_definition" {
  description = "JSON definition of the training pipeline (Preprocess, Train, Evaluate, CheckMetric -> RegisterModel or MetricBelowThreshold), for aws_sagemaker_pipeline.pipeline_definition."
  value       = jsonencode(local.training_pipeline)
}

output "inference_definition" {
  description = "JSON definition of the inference pipeline (Preprocess, Predict); every execution must pass ModelDataUri. For aws_sagemaker_pipeline.pipeline_definition."
  value       = jsonencode(local.inference_pipeline)
}

output "code_files" {
  description = "The files to upload under code_s3_uri, each under its own name: map of file name to local path (relative to the root module, like path.module)."
  value       = { for name in sort(tolist(fileset(local.ml_code_dir, "*.py"))) : name => "${local.ml_code_dir}/${name}" }

  precondition {
    condition     = alltrue([for script in ["common.py", "preprocess.py", "train.py", "evaluate.py", "infer.py"] : fileexists("${local.ml_code_dir}/${script}")])
    error_message = "ml_code_dir must hold common.py, preprocess.py, train.py, evaluate.py and infer.py."
  }
}
