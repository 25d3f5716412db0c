# The data account: data lake, model artefacts and predictions, encrypted with one
# customer-managed key. The SageMaker roles of dev/staging/prod and the pipeline-runner roles
# of staging/prod are named by convention (modules/naming), so this account can be applied
# before any of them exist.
module "names" {
  source = "../naming"

  project  = var.project
  region   = var.region
  accounts = var.accounts
}

locals {
  sagemaker = module.names.sagemaker_role_arns
  runners   = module.names.runner_role_arns

  # Who reads and writes each bucket: the staging training pipeline writes model artefacts,
  # prod's inference reads them; every ML environment writes predictions, and the pipeline
  # runners read them to check a test run.
  access = {
    datalake = {
      read  = values(local.sagemaker)
      write = []
    }
    models = {
      read  = [local.sagemaker["prod"], local.runners["staging"], local.runners["prod"]]
      write = [local.sagemaker["dev"], local.sagemaker["staging"]]
    }
    predictions = {
      read  = [local.runners["staging"], local.runners["prod"]]
      write = values(local.sagemaker)
    }
  }
  key_users = distinct(concat(values(local.sagemaker), [local.runners["staging"], local.runners["prod"]]))
}

data "aws_caller_identity" "current" {}

data "aws_iam_policy_document" "key" {
  #checkov:skip=CKV_AWS_109:In a key policy, Resource "*" is this key; the account statement is the AWS default that lets IAM policies grant use.
  #checkov:skip=CKV_AWS_111:In a key policy, Resource "*" is this key; the account statement is the AWS default that lets IAM policies grant use.
  #checkov:skip=CKV_AWS_356:In a key policy, Resource "*" is this key, not every resource.
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:aws:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }

  statement {
    sid       = "NamedRolesUse"
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = distinct([for arn in local.key_users : "arn:aws:iam::${split(":", arn)[4]}:root"])
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:PrincipalArn"
      values   = local.key_users
    }
  }
}

resource "aws_kms_key" "this" {
  description             = "${var.project} data: data lake, model artefacts and predictions"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.key.json
}

resource "aws_kms_alias" "this" {
  name          = module.names.data_kms_alias
  target_key_id = aws_kms_key.this.key_id
}

module "bucket" {
  source   = "../secure-bucket"
  for_each = local.access

  name                 = module.names.data_buckets[each.key]
  kms_key_arn          = aws_kms_key.this.arn
  read_principal_arns  = each.value.read
  write_principal_arns = each.value.write
  force_destroy        = var.force_destroy
}
