locals {
  # The CodeBuild actions after Source, in stage order. Each runs the project of its key with
  # MLCICD_ACTION and REVIEW_FAIL_ON set, plus the variables in `env`, on the source artifact
  # unless it names its `inputs`.
  build_actions = {
    build = { stage = "Build", name = "PlanReviewApplyStaging" }
    train = { stage = "Train", name = "TrainInStaging", namespace = "Train" }
    # "Inference/Test" in the design; stage names may not contain "/".
    test = { stage = "Test", name = "InferenceInStaging", env = { MODEL_PACKAGE_ARN = "#{Train.MODEL_PACKAGE_ARN}" } }
    # The approver sees the prod plan's review: PlanProd plans prod and exports its headline
    # and a link to the full review, which the approval after it shows. The review page is
    # stored under this execution's id, so the approval links to this plan's page.
    plan-prod = {
      stage     = "Approval"
      name      = "PlanProd"
      run_order = 1
      namespace = "PlanProd"
      outputs   = ["prodplan"]
      env       = { PIPELINE_EXECUTION_ID = "#{codepipeline.PipelineExecutionId}" }
    }
    # The sha256 the approver was shown: apply refuses any other plan.
    deploy = {
      stage         = "Deploy"
      name          = "ApplyReviewedProdPlan"
      inputs        = ["source", "prodplan"]
      configuration = { PrimarySource = "source" }
      env           = { PLAN_SHA256 = "#{PlanProd.PLAN_SHA256}" }
    }
  }
  build_stages = ["Build", "Train", "Test", "Approval", "Deploy"]
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

  dynamic "stage" {
    for_each = local.build_stages

    content {
      name = stage.value

      dynamic "action" {
        for_each = { for key, spec in local.build_actions : key => spec if spec.stage == stage.value }

        content {
          name             = action.value.name
          category         = "Build"
          owner            = "AWS"
          provider         = "CodeBuild"
          version          = "1"
          run_order        = try(action.value.run_order, null)
          namespace        = try(action.value.namespace, null)
          input_artifacts  = try(action.value.inputs, ["source"])
          output_artifacts = try(action.value.outputs, null)

          configuration = merge(try(action.value.configuration, {}), {
            ProjectName = aws_codebuild_project.this[action.key].name
            EnvironmentVariables = jsonencode(concat(
              [
                { name = "MLCICD_ACTION", value = action.key, type = "PLAINTEXT" },
                { name = "MLCICD_REVIEW_FAIL_ON", value = "#{variables.REVIEW_FAIL_ON}", type = "PLAINTEXT" },
              ],
              [for name, value in try(action.value.env, {}) : { name = name, value = value, type = "PLAINTEXT" }],
            ))
          })
        }
      }

      # After PlanProd, in the same stage.
      dynamic "action" {
        for_each = stage.value == "Approval" ? [aws_sns_topic.this.arn] : []

        content {
          name      = "ApproveProdPlan"
          category  = "Approval"
          owner     = "AWS"
          provider  = "Manual"
          version   = "1"
          run_order = 2

          configuration = {
            NotificationArn    = action.value
            CustomData         = "Prod plan for commit #{SourceVariables.CommitId}: #{PlanProd.PLAN_HEADLINE} (plan sha256 #{PlanProd.PLAN_SHA256}; Deploy applies only this plan)"
            ExternalEntityLink = "#{PlanProd.REVIEW_URL}"
          }
        }
      }
    }
  }
}
