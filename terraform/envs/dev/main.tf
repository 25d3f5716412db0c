# A sandbox where data scientists run the same ML pipelines by hand.
module "ml" {
  source = "../../modules/sagemaker-pipelines"

  project                  = var.project
  region                   = var.region
  accounts                 = var.accounts
  environment              = var.environment
  training_enabled         = true
  metric_threshold         = var.metric_threshold
  processing_instance_type = var.processing_instance_type
  training_instance_type   = var.training_instance_type
  inference_instance_type  = var.inference_instance_type
  force_destroy            = var.force_destroy
}
