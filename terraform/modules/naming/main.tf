# The naming conventions of the whole system, in one place. Every module that must find a
# resource in another account (a role to trust, a bucket to read, a key to use) derives its
# name here instead of reading another environment's state. Names carry the environment,
# so single-account mode (all five ids equal) has no collisions. The account, the partition
# and (unless given) the region come from the provider, so the same names hold in aws, aws-cn and aws-us-gov.
data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_region" "current" {}

locals {
  partition = data.aws_partition.current.partition
  region    = coalesce(var.region, data.aws_region.current.region)
  targets   = ["dev", "staging", "prod", "data"]

  # Bucket names are global: the account id keeps them unique across customers.
  data_buckets = {
    for purpose in ["datalake", "models", "predictions"] :
    purpose => "${var.project}-${purpose}-${var.accounts["data"]}"
  }

  data_kms_alias = "alias/${var.project}-data"

  # Each ML environment's bucket for the code its SageMaker jobs run.
  code_buckets = {
    for env in ["dev", "staging", "prod"] : env => "${var.project}-${env}-code-${var.accounts[env]}"
  }

  codebuild_role_name = "${var.project}-codebuild"

  role_arns = {
    for role in ["deploy", "pipeline-runner", "plan", "sagemaker"] : role => {
      for env in local.targets : env => "arn:${local.partition}:iam::${var.accounts[env]}:role/${var.project}-${env}-${role}"
    }
  }
}
