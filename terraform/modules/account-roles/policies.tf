# The three roles' policies. Every action is one Terraform or mlcicd calls for the resource
# types the environment's modules manage (modules/sagemaker-pipelines; for the plan role also
# modules/data, modules/ml-baseline, modules/kms-key, modules/secure-bucket), on those resources only.

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

# -- deploy: what Terraform needs to manage an ML environment (modules/sagemaker-pipelines) -----
# It uploads code objects, creates the SageMaker pipelines and the model package group (with its
# resource policy), and reads the data key's ARN. The key, the code bucket and the execution role
# are ml-baseline's, applied by an administrator: this role uses them and changes none of them
# (no IAM write but passing the execution role, no key or bucket management).

data "aws_iam_policy_document" "deploy" {
  count = local.ml ? 1 : 0

  statement {
    sid = "CodeObjects"
    actions = [
      "s3:DeleteObject",
      "s3:DeleteObjectVersion",
      "s3:GetObject",
      "s3:GetObjectTagging",
      "s3:PutObject",
      "s3:PutObjectTagging",
    ]
    resources = [for arn in local.managed_bucket_arns : "${arn}/*"]
  }

  statement {
    sid       = "ListCodeObjects"
    actions   = ["s3:ListBucket", "s3:ListBucketVersions"]
    resources = local.managed_bucket_arns
  }

  # The code bucket encrypts with the environment's key: S3 uses it as the caller, on the
  # environment's key only (found by its alias, as no tag the deploy role could set decides it).
  statement {
    sid       = "UseCodeKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = ["${local.kms_arn}:key/*"]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }

    condition {
      test     = "ForAnyValue:StringEquals"
      variable = "kms:ResourceAliases"
      values   = [local.own_key_alias]
    }
  }

  # The state key (tagged mlcicd:project by `mlcicd bootstrap`) is out of reach, whatever else
  # the role is granted.
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

  # The pipelines are created with the execution role (role_arn), which SageMaker must be
  # allowed to receive — and only SageMaker. The one IAM action this role has.
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
# It plans both the environment and its roles-ENV (for an ML environment, ml-baseline's key,
# code bucket and execution role too).

locals {
  state_bucket_arn = "arn:${local.partition}:s3:::${coalesce(var.state_bucket, module.names.state_bucket)}"
  # The environment's own state, and that of its account's roles (roles-ENV): drift and
  # pull-request previews plan both with this role.
  state_keys = ["${local.env}/terraform.tfstate", "roles-${local.env}/terraform.tfstate"]
  # The roles this configuration manages in the account (an ML environment's execution role
  # included), which planning roles-ENV reads back. (Named here, not read from local.roles:
  # those roles' policies include this one.)
  account_role_arns = [
    for role in concat(["plan"], local.ml ? ["deploy", "pipeline-runner", "sagemaker"] : []) :
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
}
