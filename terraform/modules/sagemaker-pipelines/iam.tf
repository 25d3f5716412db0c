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

locals {
  sagemaker_arn = "arn:${local.partition}:sagemaker:${local.region}:${local.account}"
  data_bucket_arns = {
    for purpose, bucket in local.data_buckets : purpose => ["arn:${local.partition}:s3:::${bucket}", "arn:${local.partition}:s3:::${bucket}/*"]
  }

  # What the jobs may do besides writing model artefacts (training only), emitting metrics and
  # passing this role (conditioned): below.
  sagemaker_grants = {
    ReadCode = { actions = ["s3:GetObject", "s3:ListBucket"], resources = [module.code_bucket.arn, "${module.code_bucket.arn}/*"] }
    # Inference reads the model artefacts the training pipelines (dev's, staging's) wrote.
    ReadDataAndModels = { actions = ["s3:GetObject", "s3:ListBucket"], resources = concat(local.data_bucket_arns["datalake"], local.data_bucket_arns["models"]) }
    # Inference writes the features it scores and the predictions, and reads the features back.
    WritePredictions = {
      actions   = ["s3:GetObject", "s3:ListBucket", "s3:PutObject", "s3:AbortMultipartUpload"]
      resources = local.data_bucket_arns["predictions"]
    }
    ReadCodeKey = { actions = ["kms:Decrypt"], resources = [module.key.arn] }
    UseDataKey  = { actions = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*", "kms:DescribeKey"], resources = [data.aws_kms_key.data.arn] }
    PullImage   = { actions = ["ecr:GetAuthorizationToken"], resources = ["*"] }
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
      resources = ["${local.sagemaker_arn}:model-package/${local.prefix}-models/*", aws_sagemaker_model_package_group.this.arn]
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
    resources = [aws_iam_role.sagemaker.arn]

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
