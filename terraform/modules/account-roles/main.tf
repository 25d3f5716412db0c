# The roles the pipeline assumes in a target account: `deploy` runs Terraform for an ML
# environment, `pipeline-runner` starts and inspects its SageMaker pipelines, `plan` reads
# everything a plan needs and writes nothing but the state lock (every target, data included).
# All trust the devops CodeBuild role; the plan role also the read-only projects' roles. This is
# the one configuration applied with an administrator's credentials, before the pipeline exists,
# so it also holds what no role the pipeline assumes may change: an ML environment's key, code
# bucket and SageMaker execution role (ml-baseline). The data environment has no deploy role: it
# is nothing but a key, buckets and their policies, and an administrator applies it.
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
  # The SageMaker execution role of an ML environment (ml-baseline): the deploy role may pass it
  # to SageMaker, and no other role (in particular not itself).
  execution_role_arn = "arn:${local.partition}:iam::${local.account}:role/${local.prefix}-sagemaker"
  # The environment's buckets: the data account's three, or an ML environment's code bucket.
  # Never the state bucket, even when it lives in this account.
  managed_buckets     = local.ml ? [module.names.code_buckets[local.env]] : values(module.names.data_buckets)
  managed_bucket_arns = [for bucket in local.managed_buckets : "arn:${local.partition}:s3:::${bucket}"]
  # An ML environment's key (ml-baseline), by its alias.
  own_key_alias = "alias/${local.prefix}"
  # The data key, found by its alias: an ML environment reads its ARN and decrypts predictions.
  data_key_arn = "arn:${local.partition}:kms:${local.region}:${var.accounts["data"]}:key/*"
}

# The CodeBuild role is named by ARN through aws:PrincipalArn rather than as the principal
# itself: IAM rejects a trust policy naming a role that does not exist yet, and these roles
# are applied before the pipeline (and its CodeBuild role) is.
# The plan role also trusts the read-only projects' roles (pull-request preview, drift), which
# may assume nothing else: a pull request's code never runs as a role that can deploy.
data "aws_iam_policy_document" "trust" {
  for_each = {
    deploy = [module.names.codebuild_role_arn]
    plan   = concat([module.names.codebuild_role_arn], module.names.readonly_role_arns)
  }

  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${var.accounts["devops"]}:root"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:PrincipalArn"
      values   = each.value
    }
  }
}

locals {
  roles = merge(
    {
      plan = {
        description = "Plans ${local.env} read-only (pull-request previews, drift checks); writes only the state lock."
        policy      = data.aws_iam_policy_document.plan.json
      }
    },
    local.ml ? {
      deploy = {
        description = "Runs Terraform for ${local.env}; assumed by the ${var.project} pipeline's CodeBuild role."
        policy      = data.aws_iam_policy_document.deploy[0].json
      }
      pipeline-runner = {
        description = "Starts and inspects ${local.env} SageMaker pipelines; assumed by the ${var.project} pipeline's CodeBuild role."
        policy      = data.aws_iam_policy_document.runner.json
      }
    } : {},
  )
}

resource "aws_iam_role" "this" {
  #checkov:skip=CKV_AWS_61:The devops account is the principal only because IAM refuses a trust policy naming a role that does not exist yet; an aws:PrincipalArn condition admits the named CodeBuild roles alone.
  for_each = local.roles

  name                 = "${local.prefix}-${each.key}"
  description          = each.value.description
  assume_role_policy   = data.aws_iam_policy_document.trust[each.key == "plan" ? "plan" : "deploy"].json
  max_session_duration = var.max_session_duration
}

resource "aws_iam_role_policy" "this" {
  for_each = local.roles

  name   = each.key
  role   = aws_iam_role.this[each.key].id
  policy = each.value.policy
}

module "ml_baseline" {
  source = "../ml-baseline"
  count  = local.ml ? 1 : 0

  project          = var.project
  accounts         = var.accounts
  environment      = local.env
  training_enabled = local.env != "prod" # prod runs inference on staging's models (envs/ml)
  force_destroy    = var.force_destroy
}
