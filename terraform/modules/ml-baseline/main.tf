# The security baseline of one ML environment (dev, staging or prod): its KMS key, the bucket
# its code is uploaded to (bucket policy, public access block) and the SageMaker execution role
# with its policy. account-roles applies it with an administrator's credentials, so the deploy
# role the pipeline assumes on every push never needs to create or re-policy keys, buckets or
# roles; the ML environment (modules/sagemaker-pipelines) finds all of it by the naming
# convention and only uses it.
module "names" {
  source = "../naming"

  project  = var.project
  accounts = var.accounts
}

locals {
  prefix    = "${var.project}-${var.environment}"
  account   = module.names.account_id
  partition = module.names.partition
  region    = module.names.region
  # By convention rather than from the resources, so every policy here is known when planning.
  execution_role_arn = module.names.sagemaker_role_arns[var.environment]
  code_bucket        = module.names.code_buckets[var.environment]
}

module "key" {
  source = "../kms-key"

  alias       = local.prefix
  description = "${local.prefix}: ML code"
}

module "code_bucket" {
  source = "../secure-bucket"

  name                = local.code_bucket
  kms_key_arn         = module.key.arn
  read_principal_arns = [local.execution_role_arn]
  force_destroy       = var.force_destroy
}
