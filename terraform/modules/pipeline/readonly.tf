# The two CodeBuild projects that only ever read: the pull-request preview (plans the changed
# environments and posts the review on the pull request) and the scheduled drift check. Neither
# is part of the pipeline, so no stage that applies can follow them. Each has its own role that
# may assume only the read-only plan roles of the target environments (`PROJECT-ENV-plan`, made
# by account-roles), never a deploy or runner role, and its own cache prefix, so a pull request
# cannot poison the caches the deploying projects read.

locals {
  plan_role_arns = [
    for env in ["dev", "staging", "prod", "data"] :
    "arn:${local.partition}:iam::${var.accounts[env]}:role/${var.project}-${env}-plan"
  ]

  # The read-only projects, as codebuild.tf defines every project: they get no artifacts from
  # the pipeline and clone the repository themselves.
  readonly = {
    for action, spec in {
      pr = {
        name        = "${var.project}-pr-preview"
        description = "Plans the environments a pull request changes with the read-only plan roles and posts the review on it; never applies."
        # The merge base with `branch` decides what changed: the whole history is needed.
        clone_depth = 0
        # Set by the webhook: the pull request's head.
        source_version = null
        enabled        = var.pr_preview
        environment = concat(
          [{ name = "MLCICD_ROLE", value = "plan", type = "PLAINTEXT" }],
          [for arn in compact([var.github_token_secret_arn]) : { name = "GITHUB_TOKEN", value = arn, type = "SECRETS_MANAGER" }],
        )
      }
      drift = {
        name           = "${var.project}-drift"
        description    = "Runs `mlcicd drift --all` on ${var.branch} with the read-only plan roles and notifies ${aws_sns_topic.this.name} of drifted resources."
        clone_depth    = 1
        source_version = "refs/heads/${var.branch}"
        enabled        = anytrue([for expression in compact([var.drift_schedule]) : true])
        environment = [
          { name = "MLCICD_ROLE", value = "plan", type = "PLAINTEXT" },
          { name = "TOPIC_ARN", value = aws_sns_topic.this.arn, type = "PLAINTEXT" },
        ]
      }
    } :
    action => merge(spec, {
      build_timeout = var.build_timeouts["plan-prod"]
      source_type   = "GITHUB"
      location      = "https://github.com/${var.repository}.git"
      artifacts     = "NO_ARTIFACTS"
    }) if spec.enabled
  }
}

resource "aws_iam_role" "readonly" {
  for_each = local.readonly

  name               = each.value.name
  description        = "Runs ${each.value.name}: may assume only the read-only plan roles."
  assume_role_policy = local.service_trust["codebuild"]
}

locals {
  # What every read-only project may do; the preview also reads the GitHub token and the drift
  # check notifies the topic (readonly_own_grants).
  readonly_grants = {
    AssumePlanRoles  = { actions = ["sts:AssumeRole"], resources = local.plan_role_arns }
    ReadState        = { actions = ["s3:ListBucket", "s3:GetBucketVersioning"], resources = ["arn:${local.partition}:s3:::${var.state_bucket}"] }
    ReadStateObjects = { actions = ["s3:GetObject"], resources = ["arn:${local.partition}:s3:::${var.state_bucket}/*"] }
    # Plans take the S3-native state lock; the lock file is the only object written.
    StateLock   = { actions = ["s3:PutObject", "s3:DeleteObject"], resources = ["arn:${local.partition}:s3:::${var.state_bucket}/*.tflock"] }
    PipelineKey = { actions = ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey*"], resources = [module.key.arn] }
    Logs        = { actions = ["logs:CreateLogStream", "logs:PutLogEvents"], resources = ["${aws_cloudwatch_log_group.codebuild.arn}:*"] }
    # CodeBuild clones through the GitHub connection; either service name is checked, depending
    # on the ARN's prefix.
    UseConnection = {
      actions = [
        "codeconnections:GetConnection", "codeconnections:GetConnectionToken", "codeconnections:UseConnection",
        "codestar-connections:GetConnection", "codestar-connections:GetConnectionToken", "codestar-connections:UseConnection",
      ]
      resources = [var.connection_arn]
    }

    # The devops environment has no plan role: it is planned with this role itself, which may
    # read this module's resources (what Terraform's refresh of them calls) and change none.
    ReadPipeline = { actions = ["codepipeline:GetPipeline", "codepipeline:ListTagsForResource"], resources = [aws_codepipeline.this.arn] }
    ReadProjects = { actions = ["codebuild:BatchGetProjects"], resources = ["arn:${local.partition}:codebuild:${var.region}:${local.account}:project/${var.project}-*"] }
    ReadRoles = {
      actions   = ["iam:GetRole", "iam:GetRolePolicy", "iam:ListAttachedRolePolicies", "iam:ListRolePolicies", "iam:ListRoleTags"]
      resources = ["arn:${local.partition}:iam::${local.account}:role/${var.project}-*"]
    }
    ReadKey = { actions = ["kms:DescribeKey", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus", "kms:ListResourceTags"], resources = [module.key.arn] }
    # kms:ListAliases has no resource to scope to.
    ListAliases = { actions = ["kms:ListAliases"], resources = ["*"] }
    # Bucket-level reads only: the bucket's ARN, not its objects.
    ReadArtifactBucket = { actions = ["s3:GetBucket*", "s3:Get*Configuration"], resources = [module.artifacts.arn] }
    ReadTopic = {
      actions   = ["sns:GetSubscriptionAttributes", "sns:GetTopicAttributes", "sns:ListTagsForResource"]
      resources = [aws_sns_topic.this.arn, "${aws_sns_topic.this.arn}:*"]
    }
    ReadRules = {
      actions   = ["events:DescribeRule", "events:ListTagsForResource", "events:ListTargetsByRule"]
      resources = ["arn:${local.partition}:events:${var.region}:${local.account}:rule/${var.project}-*"]
    }
    ReadLogGroups = {
      actions   = ["logs:DescribeLogGroups", "logs:ListTagsForResource", "logs:ListTagsLogGroup"]
      resources = ["arn:${local.partition}:logs:${var.region}:${local.account}:log-group:*"]
    }
  }

  readonly_own_grants = {
    pr    = { for arn in compact([var.github_token_secret_arn]) : "GitHubToken" => { actions = ["secretsmanager:GetSecretValue"], resources = [arn] } }
    drift = { NotifyDrift = { actions = ["sns:Publish"], resources = [aws_sns_topic.this.arn] } }
  }
}

data "aws_iam_policy_document" "readonly" {
  #checkov:skip=CKV_AWS_356:kms:ListAliases has no resource to scope to.
  for_each = local.readonly

  dynamic "statement" {
    for_each = merge(local.readonly_grants, local.readonly_own_grants[each.key])

    content {
      sid       = statement.key
      actions   = statement.value.actions
      resources = statement.value.resources
    }
  }

  # Its own cache prefix only: a pull request cannot poison the caches other projects read.
  statement {
    sid       = "OwnCache"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = ["${module.artifacts.arn}/${local.cache_prefix}/${each.key}/*"]
  }

  statement {
    sid       = "StateKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
    resources = ["arn:${local.partition}:kms:${var.region}:${local.account}:key/*"]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "readonly" {
  for_each = local.readonly

  name   = "readonly"
  role   = aws_iam_role.readonly[each.key].id
  policy = data.aws_iam_policy_document.readonly[each.key].json
}

# A CodeBuild webhook through the same connection rather than a CodePipeline pull-request
# trigger: a trigger would start this pipeline, whose Build stage applies staging; the webhook
# starts only the preview project, gives it the pull request's number, and can hold pull
# requests from people without write access until a writer comments `/codebuild_run(SHA)`.
resource "aws_codebuild_webhook" "pr" {
  count = var.pr_preview ? 1 : 0

  project_name = aws_codebuild_project.this["pr"].name
  build_type   = "BUILD"

  filter_group {
    filter {
      type    = "EVENT"
      pattern = "PULL_REQUEST_CREATED, PULL_REQUEST_UPDATED, PULL_REQUEST_REOPENED"
    }

    filter {
      type    = "BASE_REF"
      pattern = "^refs/heads/${replace(var.branch, ".", "\\.")}$"
    }
  }

  pull_request_build_policy {
    requires_comment_approval = var.pr_preview_comment_approval
    approver_roles            = lookup({ DISABLED = null }, var.pr_preview_comment_approval, ["GITHUB_WRITE", "GITHUB_MAINTAIN", "GITHUB_ADMIN"])
  }
}
