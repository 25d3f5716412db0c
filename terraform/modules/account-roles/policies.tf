# The three roles' policies. Every action is one Terraform or mlcicd calls for the resource
# types the environment's modules manage (modules/data, modules/sagemaker-pipelines,
# modules/kms-key, modules/secure-bucket), on those resources only.

locals {
  # What Terraform reads to refresh a bucket and its settings (aws_s3_bucket and the
  # aws_s3_bucket_* resources of modules/secure-bucket).
  bucket_reads = [
    "s3:GetAccelerateConfiguration",
    "s3:GetBucketAcl",
    "s3:GetBucketCORS",
    "s3:GetBucketLocation",
    "s3:GetBucketLogging",
    "s3:GetBucketObjectLockConfiguration",
    "s3:GetBucketOwnershipControls",
    "s3:GetBucketPolicy",
    "s3:GetBucketPublicAccessBlock",
    "s3:GetBucketRequestPayment",
    "s3:GetBucketTagging",
    "s3:GetBucketVersioning",
    "s3:GetBucketWebsite",
    "s3:GetEncryptionConfiguration",
    "s3:GetLifecycleConfiguration",
    "s3:GetReplicationConfiguration",
    "s3:ListBucket",
  ]
}

# -- deploy: what Terraform needs to manage the environment ----------------------------------

data "aws_iam_policy_document" "deploy" {
  #checkov:skip=CKV_AWS_356:kms:CreateKey and kms:ListAliases have no resource to scope to; CreateKey is pinned to the environment's tags instead.
  #checkov:skip=CKV_AWS_111:kms:CreateKey has no resource to scope to; it is pinned to the environment's tags instead.
  source_policy_documents = data.aws_iam_policy_document.deploy_ml[*].json

  statement {
    sid       = "CreateKeys"
    actions   = ["kms:CreateKey", "kms:TagResource"] # CreateKey with tags needs TagResource too
    resources = ["*"]

    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/Project"
      values   = [var.project]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/Environment"
      values   = [local.env]
    }
  }

  # Tagging at creation is allowed on "*": a key tagged for another environment cannot be
  # re-tagged into this one, and the state key (tagged mlcicd:project by `mlcicd bootstrap`)
  # is out of reach whatever its tags.
  statement {
    sid       = "NoOtherEnvironmentsKeys"
    effect    = "Deny"
    actions   = ["kms:TagResource", "kms:UntagResource"]
    resources = ["*"]

    condition {
      test     = "Null"
      variable = "aws:ResourceTag/Environment"
      values   = ["false"]
    }

    condition {
      test     = "StringNotEquals"
      variable = "aws:ResourceTag/Environment"
      values   = [local.env]
    }
  }

  statement {
    sid       = "NoStateKey"
    effect    = "Deny"
    actions   = ["kms:*"]
    resources = ["*"]

    condition {
      test     = "Null"
      variable = "aws:ResourceTag/mlcicd:project"
      values   = ["false"]
    }
  }

  statement {
    sid       = "ListAliases"
    actions   = ["kms:ListAliases"]
    resources = ["*"]
  }

  statement {
    sid = "ManageOwnKeys"
    actions = [
      "kms:DescribeKey",
      "kms:EnableKeyRotation",
      "kms:GetKeyPolicy",
      "kms:GetKeyRotationStatus",
      "kms:ListResourceTags",
      "kms:PutKeyPolicy",
      "kms:ScheduleKeyDeletion",
      "kms:TagResource",
      "kms:UntagResource",
      "kms:UpdateKeyDescription",
      # An ML environment uploads its code objects encrypted with its key.
      "kms:Decrypt",
      "kms:GenerateDataKey",
    ]
    resources = ["${local.kms_arn}:key/*"]

    dynamic "condition" {
      for_each = local.own_key

      content {
        test     = "StringEquals"
        variable = condition.key
        values   = [condition.value]
      }
    }
  }

  # An alias operation is checked on the alias and on the key it points to; the alias is
  # the environment's own.
  statement {
    sid       = "OwnAlias"
    actions   = ["kms:CreateAlias", "kms:DeleteAlias", "kms:UpdateAlias"]
    resources = ["${local.kms_arn}:alias/${local.prefix}", "${local.kms_arn}:key/*"]
  }

  statement {
    sid = "ManageBuckets"
    actions = concat(local.bucket_reads, [
      "s3:CreateBucket",
      "s3:DeleteBucket",
      "s3:DeleteBucketPolicy",
      "s3:PutBucketOwnershipControls",
      "s3:PutBucketPolicy",
      "s3:PutBucketPublicAccessBlock",
      "s3:PutBucketTagging",
      "s3:PutBucketVersioning",
      "s3:PutEncryptionConfiguration",
      "s3:PutLifecycleConfiguration",
    ])
    resources = local.managed_bucket_arns
  }
}

# An ML environment also uploads its code, creates its SageMaker resources and the one
# execution role they run as, and reads the data key's ARN.
data "aws_iam_policy_document" "deploy_ml" {
  count = local.ml ? 1 : 0

  statement {
    sid = "CodeObjects"
    actions = [
      "s3:DeleteObject",
      "s3:DeleteObjectVersion",
      "s3:GetObject",
      "s3:GetObjectTagging",
      "s3:ListBucketVersions",
      "s3:PutObject",
      "s3:PutObjectTagging",
    ]
    resources = flatten([for arn in local.managed_bucket_arns : [arn, "${arn}/*"]])
  }

  # Key metadata only: the data key's ARN, looked up by its alias.
  statement {
    sid       = "FindDataKey"
    actions   = ["kms:DescribeKey"]
    resources = [local.data_key_arn]
  }

  statement {
    sid = "SageMakerResources"
    actions = [
      "sagemaker:AddTags",
      "sagemaker:CreateModelPackageGroup",
      "sagemaker:CreatePipeline",
      "sagemaker:DeleteModelPackageGroup",
      "sagemaker:DeleteModelPackageGroupPolicy",
      "sagemaker:DeletePipeline",
      "sagemaker:DeleteTags",
      "sagemaker:DescribeModelPackageGroup",
      "sagemaker:DescribePipeline",
      "sagemaker:GetModelPackageGroupPolicy",
      "sagemaker:ListTags",
      "sagemaker:PutModelPackageGroupPolicy",
      "sagemaker:UpdatePipeline",
    ]
    resources = [
      "${local.sagemaker_arn}:model-package-group/${local.prefix}-models",
      "${local.sagemaker_arn}:pipeline/${local.prefix}-*",
    ]
  }

  statement {
    sid = "ExecutionRole"
    actions = [
      "iam:CreateRole",
      "iam:DeleteRole",
      "iam:DeleteRolePolicy",
      "iam:GetRole",
      "iam:GetRolePolicy",
      "iam:ListAttachedRolePolicies",
      "iam:ListInstanceProfilesForRole",
      "iam:ListRolePolicies",
      "iam:PutRolePolicy",
      "iam:TagRole",
      "iam:UntagRole",
      "iam:UpdateAssumeRolePolicy",
      "iam:UpdateRoleDescription",
    ]
    resources = [local.execution_role_arn]
  }

  # The pipeline definitions name the execution role, so SageMaker must be allowed to receive
  # it — and only SageMaker.
  statement {
    sid       = "PassExecutionRole"
    actions   = ["iam:PassRole"]
    resources = [local.execution_role_arn]

    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["sagemaker.amazonaws.com"]
    }
  }
}

# -- pipeline-runner: exactly the calls `mlcicd run-pipeline` makes (mlcicd/sagemaker.py) ------

locals {
  # Prod runs inference on models registered in staging; staging's model package group
  # policy allows prod's runner, and this identity policy is the other side of that grant.
  model_package_groups = {
    for env in distinct(local.env == "prod" ? ["prod", "staging"] : [local.env]) :
    env => "arn:${local.partition}:sagemaker:${local.region}:${var.accounts[env]}:model-package/${var.project}-${env}-models/*"
  }
  predictions = module.names.data_buckets["predictions"]
}

data "aws_iam_policy_document" "runner" {
  statement {
    sid = "RunPipelines"
    actions = [
      "sagemaker:DescribePipelineExecution",
      "sagemaker:ListPipelineExecutionSteps",
      "sagemaker:StartPipelineExecution",
    ]
    resources = [
      "${local.sagemaker_arn}:pipeline/${local.prefix}-*",
      "${local.sagemaker_arn}:pipeline/${local.prefix}-*/execution/*",
    ]
  }

  # Where a run wrote its predictions: the pipelines name their jobs per execution.
  statement {
    sid       = "ReadJobs"
    actions   = ["sagemaker:DescribeProcessingJob", "sagemaker:DescribeTransformJob"]
    resources = ["${local.sagemaker_arn}:processing-job/*", "${local.sagemaker_arn}:transform-job/*"]
  }

  statement {
    sid       = "ReadModelPackages"
    actions   = ["sagemaker:DescribeModelPackage"]
    resources = values(local.model_package_groups)
  }

  statement {
    sid       = "ListPredictions"
    actions   = ["s3:ListBucket"]
    resources = ["arn:${local.partition}:s3:::${local.predictions}"]
  }

  statement {
    sid       = "ReadPredictions"
    actions   = ["s3:GetObject"]
    resources = ["arn:${local.partition}:s3:::${local.predictions}/${local.env}/*"]
  }

  statement {
    sid       = "DecryptPredictions"
    actions   = ["kms:Decrypt"]
    resources = [local.data_key_arn]

    condition {
      test     = "ForAnyValue:StringEquals"
      variable = "kms:ResourceAliases"
      values   = [module.names.data_kms_alias]
    }
  }
}

# -- plan: read what the environment's resources are, write only the state lock --------------

locals {
  state_bucket_arn = "arn:${local.partition}:s3:::${coalesce(var.state_bucket, module.names.state_bucket)}"
  # The environment's own state, and that of its account's roles (roles-ENV): drift and
  # pull-request previews plan both with this role.
  state_keys = ["${local.env}/terraform.tfstate", "roles-${local.env}/terraform.tfstate"]
  # The roles this configuration manages in the account, which planning roles-ENV reads back.
  # (Named here, not read from local.roles: those roles' policies include this one.)
  account_role_arns = [
    for role in concat(["deploy", "plan"], local.ml ? ["pipeline-runner"] : []) :
    "arn:${local.partition}:iam::${local.account}:role/${local.prefix}-${role}"
  ]
}

data "aws_iam_policy_document" "plan" {
  #checkov:skip=CKV_AWS_356:kms:ListAliases has no resource to scope to.
  source_policy_documents = data.aws_iam_policy_document.plan_ml[*].json

  statement {
    sid       = "ReadState"
    actions   = ["s3:GetObject"]
    resources = [for key in local.state_keys : "${local.state_bucket_arn}/${key}"]
  }

  statement {
    sid       = "ListState"
    actions   = ["s3:ListBucket"]
    resources = [local.state_bucket_arn]
  }

  dynamic "statement" {
    for_each = var.state_lock_table == null ? ["lockfile"] : []

    content {
      sid       = "StateLockFile"
      actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
      resources = [for key in local.state_keys : "${local.state_bucket_arn}/${key}.tflock"]
    }
  }

  # The lock table's items are keyed by "BUCKET/KEY" (and "BUCKET/KEY-md5" for the digest).
  dynamic "statement" {
    for_each = var.state_lock_table == null ? [] : [var.state_lock_table]

    content {
      sid       = "StateLockTable"
      actions   = ["dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem"]
      resources = ["arn:${local.partition}:dynamodb:${local.region}:${var.accounts["devops"]}:table/${statement.value}"]

      condition {
        test     = "ForAllValues:StringLike"
        variable = "dynamodb:LeadingKeys"
        values   = flatten([for key in local.state_keys : ["*/${key}", "*/${key}-md5"]])
      }
    }
  }

  # The state key is used only through S3, on the state bucket's objects.
  statement {
    sid       = "StateKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = ["arn:${local.partition}:kms:${local.region}:${var.accounts["devops"]}:key/*"]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }

    condition {
      test     = "StringLike"
      variable = "kms:EncryptionContext:aws:s3:arn"
      values   = ["${local.state_bucket_arn}/*"]
    }
  }

  statement {
    sid       = "ReadKeys"
    actions   = ["kms:DescribeKey", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus", "kms:ListResourceTags"]
    resources = ["${local.kms_arn}:key/*", local.data_key_arn]
  }

  statement {
    sid       = "ListAliases"
    actions   = ["kms:ListAliases"]
    resources = ["*"]
  }

  statement {
    sid       = "ReadBuckets"
    actions   = local.bucket_reads
    resources = local.managed_bucket_arns
  }

  statement {
    sid       = "ReadAccountRoles"
    actions   = ["iam:GetRole", "iam:GetRolePolicy", "iam:ListAttachedRolePolicies", "iam:ListRolePolicies"]
    resources = local.account_role_arns
  }
}

data "aws_iam_policy_document" "plan_ml" {
  count = local.ml ? 1 : 0

  # aws_s3_object reads its object's metadata and tags; the code is no secret to a planner.
  statement {
    sid       = "ReadCodeObjects"
    actions   = ["s3:GetObject", "s3:GetObjectTagging"]
    resources = [for arn in local.managed_bucket_arns : "${arn}/*"]
  }

  statement {
    sid       = "DecryptCodeObjects"
    actions   = ["kms:Decrypt"]
    resources = ["${local.kms_arn}:key/*"]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }
  }

  statement {
    sid = "ReadSageMaker"
    actions = [
      "sagemaker:DescribeModelPackageGroup",
      "sagemaker:DescribePipeline",
      "sagemaker:GetModelPackageGroupPolicy",
      "sagemaker:ListTags",
    ]
    resources = [
      "${local.sagemaker_arn}:model-package-group/${local.prefix}-models",
      "${local.sagemaker_arn}:pipeline/${local.prefix}-*",
    ]
  }

  statement {
    sid       = "ReadExecutionRole"
    actions   = ["iam:GetRole", "iam:GetRolePolicy", "iam:ListAttachedRolePolicies", "iam:ListRolePolicies"]
    resources = [local.execution_role_arn]
  }
}
