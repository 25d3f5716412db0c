# The two roles the pipeline assumes in a target account: `deploy` runs Terraform for the
# environment, `pipeline-runner` starts and inspects its SageMaker pipelines. Both trust only
# the devops CodeBuild role. This is the one configuration applied with an administrator's
# credentials, before the pipeline exists.
module "names" {
  source = "../naming"

  project  = var.project
  region   = var.region
  accounts = var.accounts
}

data "aws_caller_identity" "current" {}

locals {
  env     = var.target_environment
  account = data.aws_caller_identity.current.account_id
  prefix  = "${var.project}-${local.env}"

  sagemaker_arn = "arn:aws:sagemaker:${var.region}:${local.account}"
  # The SageMaker execution role the environment creates; the deploy role may manage it and
  # pass it, and no other role (in particular not itself).
  managed_role_arn = "arn:aws:iam::${local.account}:role/${local.prefix}-sagemaker"
  # The buckets the environment creates: the data account's three, or an ML environment's code
  # bucket. Never the state bucket, even when it lives in this account.
  managed_buckets = lookup({ data = values(module.names.data_buckets) }, local.env, [lookup(module.names.code_buckets, local.env, "")])
}

# The CodeBuild role is named by ARN through aws:PrincipalArn rather than as the principal
# itself: IAM rejects a trust policy naming a role that does not exist yet, and these roles
# are applied before the pipeline (and its CodeBuild role) is.
data "aws_iam_policy_document" "trust" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "AWS"
      identifiers = ["arn:aws:iam::${var.accounts["devops"]}:root"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:PrincipalArn"
      values   = [module.names.codebuild_role_arn]
    }
  }
}

resource "aws_iam_role" "deploy" {
  name                 = "${local.prefix}-deploy"
  description          = "Runs Terraform for ${local.env}; assumed by the ${var.project} pipeline's CodeBuild role."
  assume_role_policy   = data.aws_iam_policy_document.trust.json
  max_session_duration = var.max_session_duration
}

resource "aws_iam_role" "runner" {
  name                 = "${local.prefix}-pipeline-runner"
  description          = "Starts and inspects ${local.env} SageMaker pipelines; assumed by the ${var.project} pipeline's CodeBuild role."
  assume_role_policy   = data.aws_iam_policy_document.trust.json
  max_session_duration = var.max_session_duration
}

# What Terraform needs to manage an environment: its buckets and their objects, its
# SageMaker resources, its KMS keys, and the one execution role it creates.
data "aws_iam_policy_document" "deploy" {
  #checkov:skip=CKV_AWS_356:kms:CreateKey and the read-only List/Get calls Terraform plans with have no resource to scope to.
  statement {
    sid       = "Identify"
    actions   = ["sts:GetCallerIdentity", "kms:CreateKey", "kms:ListAliases", "kms:ListKeys"]
    resources = ["*"]
  }

  statement {
    sid       = "EnvironmentBuckets"
    actions   = ["s3:*"]
    resources = flatten([for bucket in local.managed_buckets : ["arn:aws:s3:::${bucket}", "arn:aws:s3:::${bucket}/*"]])
  }

  statement {
    sid       = "EnvironmentSageMaker"
    actions   = ["sagemaker:*"]
    resources = ["${local.sagemaker_arn}:*"]
  }

  statement {
    sid     = "AccountKeys"
    actions = ["kms:*"]
    resources = [
      "arn:aws:kms:${var.region}:${local.account}:key/*",
      "arn:aws:kms:${var.region}:${local.account}:alias/${var.project}-*",
    ]
  }

  statement {
    sid = "ExecutionRole"
    actions = [
      "iam:AttachRolePolicy",
      "iam:CreateRole",
      "iam:DeleteRole",
      "iam:DeleteRolePolicy",
      "iam:DetachRolePolicy",
      "iam:GetRole",
      "iam:GetRolePolicy",
      "iam:ListAttachedRolePolicies",
      "iam:ListInstanceProfilesForRole",
      "iam:ListRolePolicies",
      "iam:PutRolePolicy",
      "iam:TagRole",
      "iam:UntagRole",
      "iam:UpdateAssumeRolePolicy",
      "iam:UpdateRole",
      "iam:UpdateRoleDescription",
    ]
    resources = [local.managed_role_arn]
  }

  # The pipeline definitions name the execution role, so SageMaker must be allowed to receive
  # it — and only SageMaker.
  statement {
    sid       = "PassExecutionRole"
    actions   = ["iam:PassRole"]
    resources = [local.managed_role_arn]

    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["sagemaker.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "deploy" {
  name   = "deploy"
  role   = aws_iam_role.deploy.id
  policy = data.aws_iam_policy_document.deploy.json
}

# Starting a pipeline, following it, and reading what it produced; nothing that changes
# the environment's definition.
data "aws_iam_policy_document" "runner" {
  #checkov:skip=CKV_AWS_356:SageMaker's List* calls are not resource-scoped.
  statement {
    sid       = "List"
    actions   = ["sagemaker:ListPipelines", "sagemaker:ListModelPackageGroups", "sagemaker:ListModelPackages"]
    resources = ["*"]
  }

  statement {
    sid = "RunPipelines"
    actions = [
      "sagemaker:DescribePipeline",
      "sagemaker:DescribePipelineDefinitionForExecution",
      "sagemaker:DescribePipelineExecution",
      "sagemaker:ListPipelineExecutions",
      "sagemaker:ListPipelineExecutionSteps",
      "sagemaker:ListPipelineParametersForExecution",
      "sagemaker:StartPipelineExecution",
      "sagemaker:StopPipelineExecution",
    ]
    resources = [
      "${local.sagemaker_arn}:pipeline/${local.prefix}-*",
      "${local.sagemaker_arn}:pipeline/${local.prefix}-*/execution/*",
    ]
  }

  statement {
    sid = "ModelPackages"
    actions = [
      "sagemaker:DescribeModelPackage",
      "sagemaker:DescribeModelPackageGroup",
      "sagemaker:UpdateModelPackage",
    ]
    resources = [
      "${local.sagemaker_arn}:model-package/${local.prefix}-*",
      "${local.sagemaker_arn}:model-package-group/${local.prefix}-*",
    ]
  }

  statement {
    sid     = "ReadPredictions"
    actions = ["s3:GetObject", "s3:ListBucket"]
    resources = [
      "arn:aws:s3:::${module.names.data_buckets["predictions"]}",
      "arn:aws:s3:::${module.names.data_buckets["predictions"]}/*",
      "arn:aws:s3:::${module.names.data_buckets["models"]}",
      "arn:aws:s3:::${module.names.data_buckets["models"]}/*",
    ]
  }

  statement {
    sid       = "DecryptData"
    actions   = ["kms:Decrypt", "kms:DescribeKey"]
    resources = ["arn:aws:kms:${var.region}:${var.accounts["data"]}:key/*"]

    condition {
      test     = "ForAnyValue:StringEquals"
      variable = "kms:ResourceAliases"
      values   = [module.names.data_kms_alias]
    }
  }
}

resource "aws_iam_role_policy" "runner" {
  name   = "pipeline-runner"
  role   = aws_iam_role.runner.id
  policy = data.aws_iam_policy_document.runner.json
}
