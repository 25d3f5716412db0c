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

data "aws_iam_policy_document" "sagemaker" {
  statement {
    sid       = "ReadCode"
    actions   = ["s3:GetObject", "s3:ListBucket"]
    resources = [module.code_bucket.arn, "${module.code_bucket.arn}/*"]
  }

  statement {
    sid     = "ReadDataLake"
    actions = ["s3:GetObject", "s3:ListBucket"]
    resources = [
      "arn:aws:s3:::${local.data_buckets["datalake"]}",
      "arn:aws:s3:::${local.data_buckets["datalake"]}/*",
    ]
  }

  statement {
    sid     = "WriteArtefactsAndPredictions"
    actions = ["s3:GetObject", "s3:ListBucket", "s3:PutObject", "s3:AbortMultipartUpload"]
    resources = [
      "arn:aws:s3:::${local.data_buckets["models"]}",
      "arn:aws:s3:::${local.data_buckets["models"]}/*",
      "arn:aws:s3:::${local.data_buckets["predictions"]}",
      "arn:aws:s3:::${local.data_buckets["predictions"]}/*",
    ]
  }

  statement {
    sid       = "UseEnvironmentKey"
    actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*", "kms:DescribeKey", "kms:CreateGrant"]
    resources = [aws_kms_key.this.arn]
  }

  # The data key lives in the data account; its alias is the name both sides agree on.
  statement {
    sid       = "UseDataKey"
    actions   = ["kms:Decrypt", "kms:Encrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
    resources = ["arn:aws:kms:${var.region}:${var.accounts["data"]}:key/*"]

    condition {
      test     = "ForAnyValue:StringEquals"
      variable = "kms:ResourceAliases"
      values   = [module.names.data_kms_alias]
    }
  }

  statement {
    sid       = "PullImage"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid       = "PullScikitLearnImage"
    actions   = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    resources = ["arn:aws:ecr:${var.region}:${data.aws_sagemaker_prebuilt_ecr_image.sklearn.registry_id}:repository/sagemaker-scikit-learn"]
  }

  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"]
    resources = ["arn:aws:logs:${var.region}:${local.account}:log-group:/aws/sagemaker/*"]
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
    sid = "RunJobs"
    actions = [
      "sagemaker:AddTags",
      "sagemaker:CreateModel",
      "sagemaker:CreateModelPackage",
      "sagemaker:CreateProcessingJob",
      "sagemaker:CreateTrainingJob",
      "sagemaker:CreateTransformJob",
      "sagemaker:DescribeModel",
      "sagemaker:DescribeModelPackage",
      "sagemaker:DescribeProcessingJob",
      "sagemaker:DescribeTrainingJob",
      "sagemaker:DescribeTransformJob",
      "sagemaker:StopProcessingJob",
      "sagemaker:StopTrainingJob",
      "sagemaker:StopTransformJob",
    ]
    resources = ["arn:aws:sagemaker:${var.region}:${local.account}:*"]
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
