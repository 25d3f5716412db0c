# Where the pipeline trains and tests every commit. Prod's roles may read the model packages registered here.
module "names" {
  source = "../../modules/naming"

  project  = var.project
  region   = var.region
  accounts = var.accounts
}

module "ml" {
  source = "../../modules/sagemaker-pipelines"

  project                   = var.project
  region                    = var.region
  accounts                  = var.accounts
  environment               = var.environment
  training_enabled          = true
  metric_threshold          = var.metric_threshold
  processing_instance_type  = var.processing_instance_type
  training_instance_type    = var.training_instance_type
  inference_instance_type   = var.inference_instance_type
  force_destroy             = var.force_destroy
  model_package_reader_arns = [module.names.sagemaker_role_arns["prod"], module.names.runner_role_arns["prod"]]
}
