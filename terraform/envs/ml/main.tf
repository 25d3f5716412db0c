# The ML environments dev, staging and prod, one root for the three (mlcicd.yaml maps each to
# terraform/envs/ml): dev is a sandbox where data scientists run the pipelines by hand, staging
# trains and tests every commit, and prod runs inference on the models staging registered.
module "names" {
  source = "../../modules/naming"

  project  = var.project
  region   = var.region
  accounts = var.accounts
}

locals {
  # Prod trains nothing: its models come from staging, whose model packages prod's pipeline
  # runner may read (staging's group policy here, prod's runner identity policy in account-roles).
  training_enabled          = var.environment != "prod"
  model_package_reader_arns = var.environment == "staging" ? [module.names.runner_role_arns["prod"]] : []
}

module "ml" {
  source = "../../modules/sagemaker-pipelines"

  project                   = var.project
  accounts                  = var.accounts
  environment               = var.environment
  training_enabled          = local.training_enabled
  model_package_reader_arns = local.model_package_reader_arns

  jobs = {
    metric_threshold         = var.metric_threshold
    processing_instance_type = var.processing_instance_type
    training_instance_type   = var.training_instance_type
    inference_instance_type  = var.inference_instance_type
  }
}
