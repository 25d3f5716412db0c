# The data account: data lake, model artefacts and predictions, encrypted with one
# customer-managed key. The SageMaker roles of dev/staging/prod and the pipeline-runner roles
# of staging/prod are named by convention (modules/naming), so this account can be applied
# before any of them exist.
module "names" {
  source = "../naming"

  project  = var.project
  accounts = var.accounts
}

locals {
  sagemaker = module.names.sagemaker_role_arns
  runners   = module.names.runner_role_arns

  # Who reads and writes each bucket: the dev and staging training pipelines write model
  # artefacts, which every environment's inference reads; every ML environment writes
  # predictions, and the staging and prod pipeline runners read them to check a run.
  access = {
    datalake = {
      read  = values(local.sagemaker)
      write = []
    }
    models = {
      read  = [local.sagemaker["prod"]]
      write = [local.sagemaker["dev"], local.sagemaker["staging"]]
    }
    predictions = {
      read  = [local.runners["staging"], local.runners["prod"]]
      write = values(local.sagemaker)
    }
  }
  key_users = distinct(concat(values(local.sagemaker), [local.runners["staging"], local.runners["prod"]]))
  # The ML environments' deploy and plan roles look the key up by its alias (data.aws_kms_key)
  # to hand SageMaker its full ARN: an alias resolves in the caller's account.
  key_readers = flatten([for env in ["dev", "staging", "prod"] : [module.names.deploy_role_arns[env], module.names.plan_role_arns[env]]])
}

module "key_users" {
  source = "../role-grants"

  grants = {
    NamedRolesUse = {
      actions   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
      resources = ["*"]
      roles     = local.key_users
    }
    PlanningRolesDescribe = {
      actions   = ["kms:DescribeKey"]
      resources = ["*"]
      roles     = local.key_readers
    }
  }
}

module "key" {
  source = "../kms-key"

  alias            = trimprefix(module.names.data_kms_alias, "alias/")
  description      = "${var.project} data: data lake, model artefacts and predictions"
  policy_documents = [module.key_users.json]
}

module "bucket" {
  source   = "../secure-bucket"
  for_each = local.access

  name                 = module.names.data_buckets[each.key]
  kms_key_arn          = module.key.arn
  read_principal_arns  = each.value.read
  write_principal_arns = each.value.write
  force_destroy        = var.force_destroy
}
