# The execution role the pipelines' jobs run as: read the code and the data lake, write model
# artefacts and predictions (to the data account, with its key), pull the scikit-learn image,
# log, and register models in this environment's group.
data "aws_iam_policy_document" "trust" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["sagemaker.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

resource "aws_iam_role" "sagemaker" {
  name               = "${local.prefix}-sagemaker"
  description        = "Execution role of the ${local.prefix} SageMaker pipelines and their jobs."
  assume_role_policy = data.aws_iam_policy_document.trust.json
}

# The registry of SageMaker's scikit-learn image in this region (no AWS call).
data "aws_sagemaker_prebuilt_ecr_image" "sklearn" {
  repository_name = "sagemaker-scikit-learn"
}

locals {
  sagemaker_arn   = "arn:${local.partition}:sagemaker:${local.region}:${local.account}"
  code_bucket_arn = "arn:${local.partition}:s3:::${local.code_bucket}"
  data_bucket_arns = {
    for purpose, bucket in module.names.data_buckets : purpose => ["arn:${local.partition}:s3:::${bucket}", "arn:${local.partition}:s3:::${bucket}/*"]
  }
  # Keys are matched by their aliases, not named by ARN: the data key lives in the data account,
  # which may be applied after this, and the code key's ARN is known only after apply (naming
  # neither keeps this policy known while planning, so it can be checked then).
  data_key_arn = "arn:${local.partition}:kms:${local.region}:${var.accounts["data"]}:key/*"
  own_key_arn  = "arn:${local.partition}:kms:${local.region}:${local.account}:key/*"
  # The model package group the ML environment creates, by its conventional name.
  model_package_group_arn = "${local.sagemaker_arn}:model-package-group/${local.prefix}-models"

  # What the jobs may do besides using the data key, writing model artefacts (training only),
  # emitting metrics and passing this role (conditioned): below.
  sagemaker_grants = {
    ReadCode = { actions = ["s3:GetObject", "s3:ListBucket"], resources = [local.code_bucket_arn, "${local.code_bucket_arn}/*"] }
    # Inference reads the model artefacts the training pipelines (dev's, staging's) wrote.
    ReadDataAndModels = { actions = ["s3:GetObject", "s3:ListBucket"], resources = concat(local.data_bucket_arns["datalake"], local.data_bucket_arns["models"]) }
    # Inference writes the features it scores and the predictions, and reads the features back.
    WritePredictions = {
      actions   = ["s3:GetObject", "s3:ListBucket", "s3:PutObject", "s3:AbortMultipartUpload"]
      resources = local.data_bucket_arns["predictions"]
    }
    PullImage = { actions = ["ecr:GetAuthorizationToken"], resources = ["*"] }
    PullScikitLearnImage = {
      actions   = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
      resources = ["arn:${local.partition}:ecr:${local.region}:${data.aws_sagemaker_prebuilt_ecr_image.sklearn.registry_id}:repository/sagemaker-scikit-learn"]
    }
    Logs = {
      actions   = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"]
      resources = ["arn:${local.partition}:logs:${local.region}:${local.account}:log-group:/aws/sagemaker/*"]
    }
    # The pipelines start their steps' jobs as this role; job names are generated per execution.
    RunJobs = {
      actions = [
        "sagemaker:AddTags",
        "sagemaker:CreateModel",
        "sagemaker:CreateProcessingJob",
        "sagemaker:CreateTrainingJob",
        "sagemaker:CreateTransformJob",
        "sagemaker:DescribeModel",
        "sagemaker:DescribeProcessingJob",
        "sagemaker:DescribeTrainingJob",
        "sagemaker:DescribeTransformJob",
        "sagemaker:StopProcessingJob",
        "sagemaker:StopTrainingJob",
        "sagemaker:StopTransformJob",
      ]
      resources = [for kind in ["model", "processing-job", "training-job", "transform-job"] : "${local.sagemaker_arn}:${kind}/*"]
    }
    RegisterModels = {
      actions   = ["sagemaker:AddTags", "sagemaker:CreateModelPackage", "sagemaker:DescribeModelPackage"]
      resources = ["${local.sagemaker_arn}:model-package/${local.prefix}-models/*", local.model_package_group_arn]
    }
  }
}

data "aws_iam_policy_document" "sagemaker" {
  dynamic "statement" {
    for_each = local.sagemaker_grants

    content {
      sid       = statement.key
      actions   = statement.value.actions
      resources = statement.value.resources
    }
  }

  dynamic "statement" {
    for_each = var.training_enabled ? ["models"] : []

    content {
      sid       = "WriteModelArtefacts"
      actions   = ["s3:PutObject", "s3:AbortMultipartUpload"]
      resources = local.data_bucket_arns[statement.value]
    }
  }

  statement {
    sid       = "ReadCodeKey"
    actions   = ["kms:Decrypt"]
    resources = [local.own_key_arn]

    condition {
      test     = "ForAnyValue:StringEquals"
      variable = "kms:ResourceAliases"
      values   = [module.key.alias_name]
    }
  }

  statement {
    sid       = "UseDataKey"
    actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*", "kms:DescribeKey"]
    resources = [local.data_key_arn]

    condition {
      test     = "ForAnyValue:StringEquals"
      variable = "kms:ResourceAliases"
      values   = [module.names.data_kms_alias]
    }
  }

  statement {
    sid       = "Metrics"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"]

    condition {
      test     = "StringLike"
      variable = "cloudwatch:namespace"
      values   = ["/aws/sagemaker/*"]
    }
  }

  statement {
    sid       = "PassOwnRoleToSageMaker"
    actions   = ["iam:PassRole"]
    resources = [local.execution_role_arn]

    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["sagemaker.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "sagemaker" {
  name   = "pipelines"
  role   = aws_iam_role.sagemaker.id
  policy = data.aws_iam_policy_document.sagemaker.json
}
