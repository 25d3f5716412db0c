# The production inference pipeline; models are trained in staging, so no training pipeline here.
module "ml" {
  source = "../../modules/sagemaker-pipelines"

  project                  = var.project
  region                   = var.region
  accounts                 = var.accounts
  environment              = var.environment
  training_enabled         = false
  metric_threshold         = var.metric_threshold
  processing_instance_type = var.processing_instance_type
  training_instance_type   = var.training_instance_type
  inference_instance_type  = var.inference_instance_type
  force_destroy            = var.force_destroy
}
