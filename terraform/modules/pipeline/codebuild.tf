# Every CodeBuild project runs the repository's buildspec.yml, which dispatches on MLCICD_ACTION.
# The pipeline's actions get one project each so each has its own timeout (training takes far
# longer than planning); CodePipeline hands them their source and takes their artifacts. The
# read-only projects (readonly.tf) clone from GitHub themselves and run as their own roles.
locals {
  cache_prefix = "codebuild-cache"

  projects = merge(
    {
      for action, timeout in var.build_timeouts : action => {
        name           = "${var.project}-${action}"
        description    = "Runs `${action}` of the ${local.name} (buildspec.yml with MLCICD_ACTION=${action})."
        build_timeout  = timeout
        source_type    = "CODEPIPELINE"
        location       = null
        clone_depth    = null
        source_version = null
        artifacts      = "CODEPIPELINE"
        environment    = [{ name = "MLCICD_ARTIFACT_BUCKET", value = module.artifacts.id, type = "PLAINTEXT" }]
      }
    },
    local.readonly,
  )
}

resource "aws_cloudwatch_log_group" "codebuild" {
  name              = local.log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = module.key.arn
}

resource "aws_codebuild_project" "this" {
  for_each = local.projects

  name           = each.value.name
  description    = each.value.description
  service_role   = contains(keys(local.readonly), each.key) ? aws_iam_role.readonly[each.key].arn : aws_iam_role.codebuild.arn
  encryption_key = module.key.arn
  build_timeout  = each.value.build_timeout
  queued_timeout = 60
  source_version = each.value.source_version

  source {
    type            = each.value.source_type
    location        = each.value.location
    git_clone_depth = each.value.clone_depth
    buildspec       = "buildspec.yml"

    dynamic "auth" {
      for_each = each.value.source_type == "GITHUB" ? [var.connection_arn] : []

      content {
        type     = "CODECONNECTIONS"
        resource = auth.value
      }
    }
  }

  artifacts {
    type = each.value.artifacts
  }

  # pip's wheels and Terraform's plugin cache (the paths buildspec.yml lists under `cache`),
  # kept in the artifact bucket between builds: one prefix per project.
  cache {
    type     = "S3"
    location = "${module.artifacts.id}/${local.cache_prefix}/${each.key}"
  }

  environment {
    type            = "LINUX_CONTAINER"
    compute_type    = var.compute_type
    image           = var.build_image
    privileged_mode = false

    dynamic "environment_variable" {
      for_each = concat(
        [
          { name = "MLCICD_ACTION", value = each.key, type = "PLAINTEXT" },
          { name = "MLCICD_PROJECT", value = var.project, type = "PLAINTEXT" },
        ],
        each.value.environment,
      )

      content {
        name  = environment_variable.value.name
        value = environment_variable.value.value
        type  = environment_variable.value.type
      }
    }
  }

  logs_config {
    cloudwatch_logs {
      group_name = aws_cloudwatch_log_group.codebuild.name
      status     = "ENABLED"
    }

    s3_logs {
      status = "DISABLED"
    }
  }
}
