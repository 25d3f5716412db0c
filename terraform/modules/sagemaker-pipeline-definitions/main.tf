# The two SageMaker pipeline definitions (schema version 2020-12-01) as plain Terraform values.
# No resources: the caller passes the JSON to aws_sagemaker_pipeline.pipeline_definition, and
# tests evaluate this module with Terraform alone to check every reference before AWS sees it.

locals {
  # A trailing slash keeps the S3 prefix from also matching sibling prefixes (code/ vs code-old/).
  code_s3_prefix = "${trimsuffix(var.code_s3_uri, "/")}/"
  # Output prefixes are joined with "/" at run time, so they must not end in one.
  model_s3_uri       = trimsuffix(var.model_s3_uri, "/")
  predictions_s3_uri = trimsuffix(var.predictions_s3_uri, "/")
  inference_data_uri = coalesce(var.inference_data_uri, var.input_data_uri)
  ml_code_dir        = coalesce(var.ml_code_dir, "${path.module}/../../../ml")

  # Where the ML scripts find their inputs and leave their outputs inside the containers.
  processing = "/opt/ml/processing"
  channels   = "/opt/ml/input/data"
  entrypoint = {
    preprocess = ["python3", "${local.processing}/code/preprocess.py"]
    train      = ["python3", "${local.channels}/code/train.py"]
    evaluate   = ["python3", "${local.processing}/code/evaluate.py"]
    infer      = ["python3", "${local.processing}/code/infer.py"]
  }

  # Processing steps run the scikit-learn image with one of the entry points, on one instance.
  app = { for step, command in local.entrypoint : step => { ImageUri = var.sklearn_image_uri, ContainerEntrypoint = command } }
  cluster = {
    for name, type in {
      train_processing = local.train_param.processing_type
      infer_processing = local.infer_param.processing_type
      infer_inference  = local.infer_param.inference_type
    } : name => { ClusterConfig = { InstanceCount = 1, InstanceType = type, VolumeSizeInGB = 30 } }
  }

  execution_id = { Get = "Execution.PipelineExecutionId" }
  tags = [
    { Key = "project", Value = var.project },
    { Key = "environment", Value = var.environment },
  ]

  s3_input = { S3DataType = "S3Prefix", S3InputMode = "File", S3DataDistributionType = "FullyReplicated" }
  code_input = {
    InputName = "code"
    S3Input   = merge(local.s3_input, { S3Uri = local.code_s3_prefix, LocalPath = "${local.processing}/code" })
  }

  # What every processing job shares; each step adds its command, resources, inputs and outputs.
  processing_job = {
    RoleArn           = var.role_arn
    StoppingCondition = { MaxRuntimeInSeconds = var.max_runtime_in_seconds }
    Tags              = local.tags
  }

  evaluation_report = "EvaluationReport"
  metric_path       = "binary_classification_metrics.auc.value"
}

# ---------------------------------------------------------------- training pipeline
# Preprocess -> Train -> Evaluate -> CheckMetric: RegisterModel (PendingManualApproval) when the
# test AUC reaches MetricThreshold, otherwise the MetricBelowThreshold step fails the execution.

locals {
  train_param = {
    input_data       = { Get = "Parameters.InputDataUri" }
    model_artifacts  = { Get = "Parameters.ModelArtifactsUri" }
    processing_type  = { Get = "Parameters.ProcessingInstanceType" }
    training_type    = { Get = "Parameters.TrainingInstanceType" }
    threshold        = { Get = "Parameters.MetricThreshold" }
    model_group_name = { Get = "Parameters.ModelPackageGroupName" }
  }

  # Each execution keeps its intermediate data under MODEL_ARTIFACTS/EXECUTION_ID/STEP/OUTPUT.
  work_outputs = { train = "preprocess", test = "preprocess", preprocessor = "preprocess", evaluation = "evaluate" }
  train_work_uri = {
    for output, step in local.work_outputs : output => {
      "Std:Join" = { On = "/", Values = [local.train_param.model_artifacts, local.execution_id, step, output] }
    }
  }

  preprocess_output = {
    for output in ["train", "test", "preprocessor"] : output => {
      Get = "Steps.Preprocess.ProcessingOutputConfig.Outputs['${output}'].S3Output.S3Uri"
    }
  }
  trained_model = { Get = "Steps.Train.ModelArtifacts.S3ModelArtifacts" }

  training_pipeline = {
    Version  = "2020-12-01"
    Metadata = {}
    Parameters = [
      { Name = "InputDataUri", Type = "String", DefaultValue = var.input_data_uri },
      { Name = "ModelArtifactsUri", Type = "String", DefaultValue = local.model_s3_uri },
      { Name = "ProcessingInstanceType", Type = "String", DefaultValue = var.processing_instance_type },
      { Name = "TrainingInstanceType", Type = "String", DefaultValue = var.training_instance_type },
      { Name = "MetricThreshold", Type = "Float", DefaultValue = var.metric_threshold },
      { Name = "ModelPackageGroupName", Type = "String", DefaultValue = var.model_package_group_name },
    ]
    Steps = [
      {
        Name = "Preprocess"
        Type = "Processing"
        Arguments = merge(local.processing_job, {
          AppSpecification = merge(local.app.preprocess, {
            ContainerArguments = [
              "--mode", "fit",
              "--input", "${local.processing}/input",
              "--train-output", "${local.processing}/train",
              "--test-output", "${local.processing}/test",
              "--preprocessor-output", "${local.processing}/preprocessor",
            ]
          })
          ProcessingResources = local.cluster.train_processing
          ProcessingInputs = [
            local.code_input,
            {
              InputName = "input"
              S3Input   = merge(local.s3_input, { S3Uri = local.train_param.input_data, LocalPath = "${local.processing}/input" })
            },
          ]
          ProcessingOutputConfig = {
            KmsKeyId = var.output_kms_key_arn
            Outputs = [
              for output in ["train", "test", "preprocessor"] : {
                OutputName = output
                S3Output = {
                  S3Uri        = local.train_work_uri[output]
                  LocalPath    = "${local.processing}/${output}"
                  S3UploadMode = "EndOfJob"
                }
              }
            ]
          }
        })
      },
      {
        Name = "Train"
        Type = "Training"
        Arguments = {
          AlgorithmSpecification = {
            TrainingImage       = var.sklearn_image_uri
            TrainingInputMode   = "File"
            ContainerEntrypoint = local.entrypoint.train
            ContainerArguments = [
              "--train", "${local.channels}/train",
              "--preprocessor", "${local.channels}/preprocessor",
              "--model-dir", "/opt/ml/model",
            ]
          }
          InputDataConfig = [
            for channel, uri in {
              code         = local.code_s3_prefix
              train        = local.preprocess_output.train
              preprocessor = local.preprocess_output.preprocessor
              } : {
              ChannelName = channel
              DataSource = {
                S3DataSource = { S3DataType = "S3Prefix", S3Uri = uri, S3DataDistributionType = "FullyReplicated" }
              }
            }
          ]
          OutputDataConfig  = { S3OutputPath = local.train_param.model_artifacts, KmsKeyId = var.output_kms_key_arn }
          ResourceConfig    = { InstanceCount = 1, InstanceType = local.train_param.training_type, VolumeSizeInGB = 30 }
          RoleArn           = var.role_arn
          StoppingCondition = { MaxRuntimeInSeconds = var.max_runtime_in_seconds }
          Tags              = local.tags
        }
      },
      {
        Name = "Evaluate"
        Type = "Processing"
        Arguments = merge(local.processing_job, {
          AppSpecification = merge(local.app.evaluate, {
            ContainerArguments = [
              "--model", "${local.processing}/model",
              "--test", "${local.processing}/test",
              "--output", "${local.processing}/evaluation",
            ]
          })
          ProcessingResources = local.cluster.train_processing
          ProcessingInputs = [
            local.code_input,
            {
              InputName = "model"
              S3Input   = merge(local.s3_input, { S3Uri = local.trained_model, LocalPath = "${local.processing}/model" })
            },
            {
              InputName = "test"
              S3Input   = merge(local.s3_input, { S3Uri = local.preprocess_output.test, LocalPath = "${local.processing}/test" })
            },
          ]
          ProcessingOutputConfig = {
            KmsKeyId = var.output_kms_key_arn
            Outputs = [{
              OutputName = "evaluation"
              S3Output = {
                S3Uri        = local.train_work_uri.evaluation
                LocalPath    = "${local.processing}/evaluation"
                S3UploadMode = "EndOfJob"
              }
            }]
          }
        })
        PropertyFiles = [{ PropertyFileName = local.evaluation_report, OutputName = "evaluation", FilePath = "evaluation.json" }]
      },
      {
        Name = "CheckMetric"
        Type = "Condition"
        Arguments = {
          Conditions = [{
            Type = "GreaterThanOrEqualTo"
            LeftValue = {
              "Std:JsonGet" = {
                PropertyFile = { Get = "Steps.Evaluate.PropertyFiles.${local.evaluation_report}" }
                Path         = local.metric_path
              }
            }
            RightValue = local.train_param.threshold
          }]
          IfSteps = [{
            Name = "RegisterModel"
            Type = "RegisterModel"
            Arguments = {
              ModelPackageGroupName   = local.train_param.model_group_name
              ModelApprovalStatus     = "PendingManualApproval"
              ModelPackageDescription = "Trained and evaluated by the ${var.project} ${var.environment} training pipeline"
              InferenceSpecification = {
                Containers                      = [{ Image = var.sklearn_image_uri, ModelDataUrl = local.trained_model }]
                SupportedContentTypes           = ["text/csv"]
                SupportedResponseMIMETypes      = ["text/csv"]
                SupportedTransformInstanceTypes = [var.inference_instance_type]
              }
              ModelMetrics = {
                ModelQuality = {
                  Statistics = {
                    ContentType = "application/json"
                    S3Uri = {
                      "Std:Join" = {
                        On     = "/"
                        Values = [{ Get = "Steps.Evaluate.ProcessingOutputConfig.Outputs['evaluation'].S3Output.S3Uri" }, "evaluation.json"]
                      }
                    }
                  }
                }
              }
            }
          }]
          ElseSteps = [{
            Name = "MetricBelowThreshold"
            Type = "Fail"
            Arguments = {
              ErrorMessage = {
                "Std:Join" = {
                  On     = " "
                  Values = ["Model not registered: test AUC is below MetricThreshold", local.train_param.threshold]
                }
              }
            }
          }]
        }
      },
    ]
  }
}

# ---------------------------------------------------------------- inference pipeline
# Preprocess (the transform saved in the model bundle) -> Predict. The model comes from the
# ModelDataUri parameter, which has no default: every execution names the model.tar.gz it scores
# with (the approved model package's ModelDataUrl).

locals {
  infer_param = {
    model_data      = { Get = "Parameters.ModelDataUri" }
    input_data      = { Get = "Parameters.InputDataUri" }
    predictions     = { Get = "Parameters.PredictionsUri" }
    processing_type = { Get = "Parameters.ProcessingInstanceType" }
    inference_type  = { Get = "Parameters.InferenceInstanceType" }
  }

  model_input = {
    InputName = "model"
    S3Input   = merge(local.s3_input, { S3Uri = local.infer_param.model_data, LocalPath = "${local.processing}/model" })
  }

  # PREDICTIONS/EXECUTION_ID/{features,predictions}: executions never overwrite each other.
  infer_output = {
    for output in ["features", "predictions"] : output => {
      OutputName = output
      S3Output = {
        S3Uri        = { "Std:Join" = { On = "/", Values = [local.infer_param.predictions, local.execution_id, output] } }
        LocalPath    = "${local.processing}/${output}"
        S3UploadMode = "EndOfJob"
      }
    }
  }

  inference_pipeline = {
    Version  = "2020-12-01"
    Metadata = {}
    Parameters = [
      { Name = "ModelDataUri", Type = "String" },
      { Name = "InputDataUri", Type = "String", DefaultValue = local.inference_data_uri },
      { Name = "PredictionsUri", Type = "String", DefaultValue = local.predictions_s3_uri },
      { Name = "ProcessingInstanceType", Type = "String", DefaultValue = var.processing_instance_type },
      { Name = "InferenceInstanceType", Type = "String", DefaultValue = var.inference_instance_type },
    ]
    Steps = [
      {
        Name = "Preprocess"
        Type = "Processing"
        Arguments = merge(local.processing_job, {
          AppSpecification = merge(local.app.preprocess, {
            ContainerArguments = [
              "--mode", "transform",
              "--input", "${local.processing}/input",
              "--model", "${local.processing}/model",
              "--features-output", "${local.processing}/features",
            ]
          })
          ProcessingResources = local.cluster.infer_processing
          ProcessingInputs = [
            local.code_input,
            local.model_input,
            {
              InputName = "input"
              S3Input   = merge(local.s3_input, { S3Uri = local.infer_param.input_data, LocalPath = "${local.processing}/input" })
            },
          ]
          ProcessingOutputConfig = { KmsKeyId = var.output_kms_key_arn, Outputs = [local.infer_output.features] }
        })
      },
      {
        Name = "Predict"
        Type = "Processing"
        Arguments = merge(local.processing_job, {
          AppSpecification = merge(local.app.infer, {
            ContainerArguments = [
              "--model", "${local.processing}/model",
              "--features", "${local.processing}/features",
              "--output", "${local.processing}/predictions",
            ]
          })
          ProcessingResources = local.cluster.infer_inference
          ProcessingInputs = [
            local.code_input,
            local.model_input,
            {
              InputName = "features"
              S3Input = merge(local.s3_input, {
                S3Uri     = { Get = "Steps.Preprocess.ProcessingOutputConfig.Outputs['features'].S3Output.S3Uri" }
                LocalPath = "${local.processing}/features"
              })
            },
          ]
          ProcessingOutputConfig = { KmsKeyId = var.output_kms_key_arn, Outputs = [local.infer_output.predictions] }
        })
      },
    ]
  }
}
