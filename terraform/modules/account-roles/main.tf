# The roles the pipeline assumes in a target account: `deploy` runs Terraform for the
# environment, `pipeline-runner` starts and inspects its SageMaker pipelines (ML environments
# only), `plan` reads everything a plan needs and writes nothing but the state lock. All trust
# only the devops CodeBuild role. This is the one configuration applied with an
# administrator's credentials, before the pipeline exists.
module "names" {
  source = "../naming"

  project  = var.project
  accounts = var.accounts
}

locals {
  env       = var.target_environment
  ml        = local.env != "data"
  account   = module.names.account_id
  partition = module.names.partition
  region    = module.names.region
  prefix    = "${var.project}-${local.env}"

  sagemaker_arn = "arn:${local.partition}:sagemaker:${local.region}:${local.account}"
  kms_arn       = "arn:${local.partition}:kms:${local.region}:${local.account}"
  # The SageMaker execution role an ML environment creates; the deploy role may manage it and
  # pass it, and no other role (in particular not itself).
  execution_role_arn = "arn:${local.partition}:iam::${local.account}:role/${local.prefix}-sagemaker"
  # The buckets the environment creates: the data account's three, or an ML environment's code
  # bucket. Never the state bucket, even when it lives in this account.
  managed_buckets     = local.ml ? [module.names.code_buckets[local.env]] : values(module.names.data_buckets)
  managed_bucket_arns = [for bucket in local.managed_buckets : "arn:${local.partition}:s3:::${bucket}"]
  # The environment's keys carry the provider's default tags; the deploy role manages those
  # keys and no other (not the state key, not another environment's).
  own_key = {
    "aws:ResourceTag/Project"     = var.project
    "aws:ResourceTag/Environment" = local.env
  }
  # The data key, found by its alias: an ML environment reads its ARN and decrypts predictions.
  data_key_arn = "arn:${local.partition}:kms:${local.region}:${var.accounts["data"]}:key/*"
}

# The CodeBuild role is named by ARN through aws:PrincipalArn rather than as the principal
# itself: IAM rejects a trust policy naming a role that does not exist yet, and these roles
# are applied before the pipeline (and its CodeBuild role) is.
data "aws_iam_policy_document" "trust" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${var.accounts["devops"]}:root"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:PrincipalArn"
      values   = [module.names.codebuild_role_arn]
    }
  }
}

locals {
  roles = merge(
    {
      deploy = {
        description = "Runs Terraform for ${local.env}; assumed by the ${var.project} pipeline's CodeBuild role."
        policy      = data.aws_iam_policy_document.deploy.json
      }
      plan = {
        description = "Plans ${local.env} read-only (pull-request previews, drift checks); writes only the state lock."
        policy      = data.aws_iam_policy_document.plan.json
      }
    },
    local.ml ? {
      pipeline-runner = {
        description = "Starts and inspects ${local.env} SageMaker pipelines; assumed by the ${var.project} pipeline's CodeBuild role."
        policy      = data.aws_iam_policy_document.runner.json
      }
    } : {},
  )
}

resource "aws_iam_role" "this" {
  for_each = local.roles

  name                 = "${local.prefix}-${each.key}"
  description          = each.value.description
  assume_role_policy   = data.aws_iam_policy_document.trust.json
  max_session_duration = var.max_session_duration
}

resource "aws_iam_role_policy" "this" {
  for_each = local.roles

  name   = each.key
  role   = aws_iam_role.this[each.key].id
  policy = each.value.policy
}
