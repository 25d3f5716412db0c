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

locals {
  account   = module.names.account_id
  partition = module.names.partition
  name      = "${var.project}-pipeline"

  # The roles in the target accounts the CodeBuild role may assume, and nothing else: deploy
  # (apply), pipeline-runner (SageMaker runs) and the read-only plan role (previews, drift).
  # The data account has only a plan role: an administrator applies it.
  target_role_arns = concat(
    [for env in var.target_environments : module.names.deploy_role_arns[env] if env != "data"],
    [for env in var.target_environments : module.names.runner_role_arns[env] if env != "data"],
    [for env in var.target_environments : module.names.plan_role_arns[env]],
  )
  log_group_name = "/aws/codebuild/${var.project}"
}

# Build logs and failure notifications are encrypted with the pipeline's key; the target
# accounts' roles never touch artifacts (CodeBuild reads them with its own role).
data "aws_iam_policy_document" "key_services" {
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
      values   = ["arn:${local.partition}:logs:${var.region}:${local.account}:log-group:${local.log_group_name}"]
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

module "key" {
  source = "../kms-key"

  alias            = local.name
  description      = "${local.name}: artifacts, build logs and notifications"
  policy_documents = [data.aws_iam_policy_document.key_services.json]
}

module "artifacts" {
  source = "../secure-bucket"

  name          = "${var.project}-artifacts-${local.account}"
  kms_key_arn   = module.key.arn
  force_destroy = var.force_destroy
}

resource "aws_sns_topic" "this" {
  name              = "${local.name}-notifications"
  display_name      = "${var.project} pipeline"
  kms_master_key_id = module.key.arn
}

# The CodePipeline role publishes approval requests through its own identity policy (same
# account); the topic policy adds only EventBridge, which has no role here.
data "aws_iam_policy_document" "topic" {
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
