locals {
  # Environment variables of a CodeBuild action, in the JSON form the action expects.
  action_env = {
    for action in keys(var.build_timeouts) : action => [
      { name = "MLCICD_ACTION", value = action, type = "PLAINTEXT" },
      { name = "MLCICD_REVIEW_FAIL_ON", value = "#{variables.REVIEW_FAIL_ON}", type = "PLAINTEXT" },
    ]
  }
}

resource "aws_codepipeline" "this" {
  name          = local.name
  role_arn      = aws_iam_role.codepipeline.arn
  pipeline_type = "V2"
  # Every pushed commit is trained and tested; a newer one waits rather than cancelling it.
  execution_mode = "QUEUED"

  artifact_store {
    type     = "S3"
    location = module.artifacts.id

    encryption_key {
      type = "KMS"
      id   = module.key.arn
    }
  }

  variable {
    name          = "REVIEW_FAIL_ON"
    default_value = "destructive"
    description   = "Change kinds (mlcicd review --fail-on) that stop the pipeline at a plan, e.g. destructive, delete, replace, or none."
  }

  trigger {
    provider_type = "CodeStarSourceConnection"

    git_configuration {
      source_action_name = "Source"

      push {
        branches {
          includes = [var.branch]
        }
      }
    }
  }

  stage {
    name = "Source"

    action {
      name             = "Source"
      category         = "Source"
      owner            = "AWS"
      provider         = "CodeStarSourceConnection"
      version          = "1"
      namespace        = "SourceVariables"
      output_artifacts = ["source"]

      configuration = {
        ConnectionArn        = var.connection_arn
        FullRepositoryId     = var.repository
        BranchName           = var.branch
        OutputArtifactFormat = "CODE_ZIP"
      }
    }
  }

  stage {
    name = "Build"

    action {
      name            = "PlanReviewApplyStaging"
      category        = "Build"
      owner           = "AWS"
      provider        = "CodeBuild"
      version         = "1"
      input_artifacts = ["source"]

      configuration = {
        ProjectName          = aws_codebuild_project.this["build"].name
        EnvironmentVariables = jsonencode(local.action_env["build"])
      }
    }
  }

  stage {
    name = "Train"

    action {
      name            = "TrainInStaging"
      category        = "Build"
      owner           = "AWS"
      provider        = "CodeBuild"
      version         = "1"
      namespace       = "Train"
      input_artifacts = ["source"]

      configuration = {
        ProjectName          = aws_codebuild_project.this["train"].name
        EnvironmentVariables = jsonencode(local.action_env["train"])
      }
    }
  }

  # "Inference/Test" in the design; stage names may not contain "/".
  stage {
    name = "Test"

    action {
      name            = "InferenceInStaging"
      category        = "Build"
      owner           = "AWS"
      provider        = "CodeBuild"
      version         = "1"
      input_artifacts = ["source"]

      configuration = {
        ProjectName = aws_codebuild_project.this["test"].name
        EnvironmentVariables = jsonencode(concat(local.action_env["test"], [
          { name = "MODEL_PACKAGE_ARN", value = "#{Train.MODEL_PACKAGE_ARN}", type = "PLAINTEXT" },
        ]))
      }
    }
  }

  # The approver sees the prod plan's review: PlanProd plans prod and exports its headline
  # and a link to the full review, which the approval shows.
  stage {
    name = "Approval"

    action {
      name             = "PlanProd"
      category         = "Build"
      owner            = "AWS"
      provider         = "CodeBuild"
      version          = "1"
      run_order        = 1
      namespace        = "PlanProd"
      input_artifacts  = ["source"]
      output_artifacts = ["prodplan"]

      configuration = {
        ProjectName = aws_codebuild_project.this["plan-prod"].name
        # The review page is stored under this execution's id, so the approval links to this plan's page.
        EnvironmentVariables = jsonencode(concat(local.action_env["plan-prod"], [
          { name = "PIPELINE_EXECUTION_ID", value = "#{codepipeline.PipelineExecutionId}", type = "PLAINTEXT" },
        ]))
      }
    }

    action {
      name      = "ApproveProdPlan"
      category  = "Approval"
      owner     = "AWS"
      provider  = "Manual"
      version   = "1"
      run_order = 2

      configuration = {
        NotificationArn    = aws_sns_topic.this.arn
        CustomData         = "Prod plan for commit #{SourceVariables.CommitId}: #{PlanProd.PLAN_HEADLINE} (plan sha256 #{PlanProd.PLAN_SHA256}; Deploy applies only this plan)"
        ExternalEntityLink = "#{PlanProd.REVIEW_URL}"
      }
    }
  }

  stage {
    name = "Deploy"

    action {
      name            = "ApplyReviewedProdPlan"
      category        = "Build"
      owner           = "AWS"
      provider        = "CodeBuild"
      version         = "1"
      input_artifacts = ["source", "prodplan"]

      configuration = {
        ProjectName   = aws_codebuild_project.this["deploy"].name
        PrimarySource = "source"
        # The sha256 the approver was shown: apply refuses any other plan.
        EnvironmentVariables = jsonencode(concat(local.action_env["deploy"], [
          { name = "PLAN_SHA256", value = "#{PlanProd.PLAN_SHA256}", type = "PLAINTEXT" },
        ]))
      }
    }
  }
}
