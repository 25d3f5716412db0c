# One CodeBuild project per action so each has its own timeout (training takes far longer
# than planning); all run the repository's buildspec.yml, which dispatches on MLCICD_ACTION.
locals {
  cache_prefix = "codebuild-cache"
}

resource "aws_cloudwatch_log_group" "codebuild" {
  name              = local.log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = module.key.arn
}

resource "aws_codebuild_project" "this" {
  for_each = var.build_timeouts

  name           = "${var.project}-${each.key}"
  description    = "Runs `${each.key}` of the ${local.name} (buildspec.yml with MLCICD_ACTION=${each.key})."
  service_role   = aws_iam_role.codebuild.arn
  encryption_key = module.key.arn
  build_timeout  = each.value
  queued_timeout = 60

  source {
    type      = "CODEPIPELINE"
    buildspec = "buildspec.yml"
  }

  artifacts {
    type = "CODEPIPELINE"
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

    environment_variable {
      name  = "MLCICD_ACTION"
      value = each.key
    }

    environment_variable {
      name  = "MLCICD_PROJECT"
      value = var.project
    }

    environment_variable {
      name  = "MLCICD_ARTIFACT_BUCKET"
      value = module.artifacts.id
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
