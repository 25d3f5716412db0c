output "training_pipeline_name" {
  description = "Name of the training pipeline (null where there is none)."
  value       = module.ml.training_pipeline_name
}

output "inference_pipeline_name" {
  description = "Name of the inference pipeline."
  value       = module.ml.inference_pipeline_name
}

output "model_package_group_name" {
  description = "Name of the model package group."
  value       = module.ml.model_package_group_name
}
