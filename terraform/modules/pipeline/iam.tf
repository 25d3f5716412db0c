# Two roles. CodePipeline moves artifacts, starts the CodeBuild projects, uses the one GitHub
# connection and notifies approvers. CodeBuild runs mlcicd: it keeps Terraform state in the
# state bucket and reaches the target accounts only by assuming their named roles.
locals {
  # Each service role (the pipeline's, the CodeBuild projects', EventBridge's for the drift
  # schedule) trusts its service, for this account only. A single principal string (not a
  # list): a list here is rejected by some tooling.
  service_trust = {
    for service in ["codepipeline", "codebuild", "events"] : service => jsonencode({
      Version = "2012-10-17"
      Statement = [{
        Effect    = "Allow"
        Action    = "sts:AssumeRole"
        Principal = { Service = "${service}.amazonaws.com" }
        Condition = { StringEquals = { "aws:SourceAccount" = local.account } }
      }]
    })
  }
}

resource "aws_iam_role" "codepipeline" {
  name               = "${local.name}-codepipeline"
  description        = "Service role of the ${local.name} CodePipeline."
  assume_role_policy = local.service_trust["codepipeline"]
}

# The connection's service was renamed; depending on the ARN's prefix either name is checked.
data "aws_iam_policy_document" "codepipeline_source" {
  statement {
    sid       = "UseConnection"
    actions   = ["codestar-connections:UseConnection", "codeconnections:UseConnection"]
    resources = [var.connection_arn]
  }
}

# Both roles move artifacts: CodePipeline between actions, CodeBuild in and out of a build.
data "aws_iam_policy_document" "artifacts" {
  statement {
    sid       = "Artifacts"
    actions   = ["s3:GetObject", "s3:GetObjectVersion", "s3:GetBucketVersioning", "s3:GetBucketLocation", "s3:ListBucket", "s3:PutObject"]
    resources = [module.artifacts.arn, "${module.artifacts.arn}/*"]
  }

  statement {
    sid       = "ArtifactKey"
    actions   = ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*"]
    resources = [module.key.arn]
  }
}

data "aws_iam_policy_document" "codepipeline" {
  source_policy_documents = [data.aws_iam_policy_document.codepipeline_source.json, data.aws_iam_policy_document.artifacts.json]

  statement {
    sid       = "StartBuilds"
    actions   = ["codebuild:BatchGetBuilds", "codebuild:StartBuild"]
    resources = [for action in keys(var.build_timeouts) : aws_codebuild_project.this[action].arn]
  }

  statement {
    sid       = "NotifyApprovers"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.this.arn]
  }
}

resource "aws_iam_role_policy" "codepipeline" {
  name   = "pipeline"
  role   = aws_iam_role.codepipeline.id
  policy = data.aws_iam_policy_document.codepipeline.json
}

resource "aws_iam_role" "codebuild" {
  name               = module.names.codebuild_role_name
  description        = "Runs mlcicd in the ${local.name} CodeBuild projects; the only principal the target accounts' roles trust."
  assume_role_policy = local.service_trust["codebuild"]
}

# What CodeBuild reaches outside the pipeline's own resources: the target roles and the state.
data "aws_iam_policy_document" "codebuild_reach" {
  statement {
    sid       = "AssumeTargetRoles"
    actions   = ["sts:AssumeRole"]
    resources = local.target_role_arns
  }

  statement {
    sid     = "TerraformState"
    actions = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket", "s3:GetBucketVersioning"]
    resources = [
      "arn:${local.partition}:s3:::${var.state_bucket}",
      "arn:${local.partition}:s3:::${var.state_bucket}/*",
    ]
  }

  # The state bucket's key is created by `mlcicd bootstrap`, outside Terraform; it is used
  # only through S3.
  statement {
    sid       = "TerraformStateKey"
    actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*", "kms:DescribeKey"]
    resources = ["arn:${local.partition}:kms:${var.region}:${local.account}:key/*"]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.region}.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "codebuild" {
  source_policy_documents = [data.aws_iam_policy_document.codebuild_reach.json, data.aws_iam_policy_document.artifacts.json]

  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.codebuild.arn}:*"]
  }
}

resource "aws_iam_role_policy" "codebuild" {
  name   = "codebuild"
  role   = aws_iam_role.codebuild.id
  policy = data.aws_iam_policy_document.codebuild.json
}
