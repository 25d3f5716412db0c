# The devops side of the system: one CodePipeline (V2) whose every code-running action is a
# CodeBuild project running the repository's buildspec.yml with MLCICD_ACTION set, an artifact
# bucket and key the target accounts' roles may use, and notifications for approvals and
# failures.
module "names" {
  source = "../naming"

  project  = var.project
  region   = var.region
  accounts = var.accounts
}

data "aws_caller_identity" "current" {}

locals {
  account = data.aws_caller_identity.current.account_id
  name    = "${var.project}-pipeline"

  # The roles in the target accounts the CodeBuild role may assume, and nothing else.
  target_role_arns = concat(
    [for env in var.target_environments : module.names.deploy_role_arns[env]],
    [for env in var.target_environments : module.names.runner_role_arns[env]],
  )
  log_group_name = "/aws/codebuild/${var.project}"
}

data "aws_iam_policy_document" "key" {
  #checkov:skip=CKV_AWS_109:In a key policy, Resource "*" is this key; the account statement is the AWS default that lets IAM policies grant use.
  #checkov:skip=CKV_AWS_111:In a key policy, Resource "*" is this key; the account statement is the AWS default that lets IAM policies grant use.
  #checkov:skip=CKV_AWS_356:In a key policy, Resource "*" is this key, not every resource.
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:aws:iam::${local.account}:root"]
    }
  }

  # Matched by aws:PrincipalArn so the key can exist before the target roles do.
  statement {
    sid       = "TargetRolesUse"
    actions   = ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = distinct([for arn in local.target_role_arns : "arn:aws:iam::${split(":", arn)[4]}:root"])
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:PrincipalArn"
      values   = local.target_role_arns
    }
  }

  statement {
    sid       = "LogsEncrypt"
    actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*", "kms:DescribeKey"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["logs.${var.region}.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:aws:logs:${var.region}:${local.account}:log-group:${local.log_group_name}"]
    }
  }

  # EventBridge publishes failure events to the encrypted topic.
  statement {
    sid       = "EventsPublish"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

resource "aws_kms_key" "this" {
  description             = "${local.name}: artifacts, build logs and notifications"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.key.json
}

resource "aws_kms_alias" "this" {
  name          = "alias/${local.name}"
  target_key_id = aws_kms_key.this.key_id
}

module "artifacts" {
  source = "../secure-bucket"

  name                = "${var.project}-artifacts-${local.account}"
  kms_key_arn         = aws_kms_key.this.arn
  read_principal_arns = local.target_role_arns
  force_destroy       = var.force_destroy
}

resource "aws_sns_topic" "this" {
  name              = "${local.name}-notifications"
  display_name      = "${var.project} pipeline"
  kms_master_key_id = aws_kms_key.this.arn
}

data "aws_iam_policy_document" "topic" {
  statement {
    sid       = "PipelinePublishes"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.this.arn]

    principals {
      type        = "AWS"
      identifiers = [aws_iam_role.codepipeline.arn]
    }
  }

  statement {
    sid       = "FailureEventsPublish"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.this.arn]

    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_cloudwatch_event_rule.failed.arn]
    }
  }
}

resource "aws_sns_topic_policy" "this" {
  arn    = aws_sns_topic.this.arn
  policy = data.aws_iam_policy_document.topic.json
}

resource "aws_sns_topic_subscription" "email" {
  for_each = toset(var.notification_emails)

  topic_arn = aws_sns_topic.this.arn
  protocol  = "email"
  endpoint  = each.value
}

resource "aws_cloudwatch_event_rule" "failed" {
  name        = "${local.name}-failed"
  description = "A ${local.name} execution failed."
  event_pattern = jsonencode({
    source        = ["aws.codepipeline"]
    "detail-type" = ["CodePipeline Pipeline Execution State Change"]
    detail = {
      pipeline = [aws_codepipeline.this.name]
      state    = ["FAILED"]
    }
  })
}

resource "aws_cloudwatch_event_target" "failed" {
  rule      = aws_cloudwatch_event_rule.failed.name
  target_id = "notify"
  arn       = aws_sns_topic.this.arn

  input_transformer {
    input_paths = {
      pipeline  = "$.detail.pipeline"
      execution = "$.detail.execution-id"
    }
    input_template = "\"Pipeline <pipeline> execution <execution> failed: https://console.aws.amazon.com/codesuite/codepipeline/pipelines/<pipeline>/executions/<execution>/timeline\""
  }
}
