output "training_pipeline_name" {
  description = "Name of the training pipeline; null when training_enabled is false."
  value       = try(aws_sagemaker_pipeline.this["training"].pipeline_name, null)
}

output "inference_pipeline_name" {
  description = "Name of the inference pipeline."
  value       = aws_sagemaker_pipeline.this["inference"].pipeline_name
}

output "model_package_group_name" {
  description = "Name of the model package group the training pipeline registers models in."
  value       = aws_sagemaker_model_package_group.this.model_package_group_name
}

output "execution_role_arn" {
  description = "ARN of the SageMaker execution role the pipelines run as (ml-baseline's, applied with roles-ENV)."
  value       = local.execution_role_arn
}

output "code_bucket" {
  description = "Name of the bucket holding the uploaded ML code (ml-baseline's, applied with roles-ENV)."
  value       = local.code_bucket
}
