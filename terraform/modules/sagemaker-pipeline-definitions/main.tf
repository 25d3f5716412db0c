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

  execution_id = { Get = "Execution.PipelineExecutionId" }
  tags = [
    { Key = "project", Value = var.project },
    { Key = "environment", Value = var.environment },
  ]

  # What every job shares; each step adds what it runs and reads and writes.
  job = {
    RoleArn           = var.role_arn
    StoppingCondition = { MaxRuntimeInSeconds = var.max_runtime_in_seconds }
    Tags              = local.tags
  }
  s3_input = { S3DataType = "S3Prefix", S3InputMode = "File", S3DataDistributionType = "FullyReplicated" }

  # The processing steps of both pipelines (below), each run by the scikit-learn image with one
  # of the entry points on one instance. Every input and output is NAME under /opt/ml/processing
  # in the container; the code comes first.
  processing_step = {
    for key, step in merge(local.training_processing, local.inference_processing) : key => {
      Name = step.name
      Type = "Processing"
      Arguments = merge(local.job, {
        AppSpecification = {
          ImageUri            = var.sklearn_image_uri
          ContainerEntrypoint = local.entrypoint[step.script]
          ContainerArguments  = step.arguments
        }
        ProcessingResources = { ClusterConfig = { InstanceCount = 1, InstanceType = step.instance_type, VolumeSizeInGB = 30 } }
        ProcessingInputs = [
          for input in concat([{ name = "code", uri = local.code_s3_prefix }], step.inputs) : {
            InputName = input.name
            S3Input   = merge(local.s3_input, { S3Uri = input.uri, LocalPath = "${local.processing}/${input.name}" })
          }
        ]
        ProcessingOutputConfig = {
          KmsKeyId = var.output_kms_key_arn
          Outputs = [
            for output in step.outputs : {
              OutputName = output.name
              S3Output   = { S3Uri = output.uri, LocalPath = "${local.processing}/${output.name}", S3UploadMode = "EndOfJob" }
            }
          ]
        }
      })
    }
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

  training_processing = {
    train_preprocess = {
      name          = "Preprocess"
      script        = "preprocess"
      instance_type = local.train_param.processing_type
      arguments = [
        "--mode", "fit",
        "--input", "${local.processing}/input",
        "--train-output", "${local.processing}/train",
        "--test-output", "${local.processing}/test",
        "--preprocessor-output", "${local.processing}/preprocessor",
      ]
      inputs  = [{ name = "input", uri = local.train_param.input_data }]
      outputs = [for output in ["train", "test", "preprocessor"] : { name = output, uri = local.train_work_uri[output] }]
    }
    evaluate = {
      name          = "Evaluate"
      script        = "evaluate"
      instance_type = local.train_param.processing_type
      arguments = [
        "--model", "${local.processing}/model",
        "--test", "${local.processing}/test",
        "--output", "${local.processing}/evaluation",
      ]
      inputs = [
        { name = "model", uri = local.trained_model },
        { name = "test", uri = local.preprocess_output.test },
      ]
      outputs = [{ name = "evaluation", uri = local.train_work_uri.evaluation }]
    }
  }

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
      local.processing_step.train_preprocess,
      {
        Name = "Train"
        Type = "Training"
        Arguments = merge(local.job, {
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
          OutputDataConfig = { S3OutputPath = local.train_param.model_artifacts, KmsKeyId = var.output_kms_key_arn }
          ResourceConfig   = { InstanceCount = 1, InstanceType = local.train_param.training_type, VolumeSizeInGB = 30 }
        })
      },
      merge(local.processing_step.evaluate, {
        PropertyFiles = [{ PropertyFileName = local.evaluation_report, OutputName = "evaluation", FilePath = "evaluation.json" }]
      }),
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

  # PREDICTIONS/EXECUTION_ID/{features,predictions}: executions never overwrite each other.
  infer_output_uri = {
    for output in ["features", "predictions"] : output => {
      "Std:Join" = { On = "/", Values = [local.infer_param.predictions, local.execution_id, output] }
    }
  }

  inference_processing = {
    infer_preprocess = {
      name          = "Preprocess"
      script        = "preprocess"
      instance_type = local.infer_param.processing_type
      arguments = [
        "--mode", "transform",
        "--input", "${local.processing}/input",
        "--model", "${local.processing}/model",
        "--features-output", "${local.processing}/features",
      ]
      inputs = [
        { name = "model", uri = local.infer_param.model_data },
        { name = "input", uri = local.infer_param.input_data },
      ]
      outputs = [{ name = "features", uri = local.infer_output_uri.features }]
    }
    predict = {
      name          = "Predict"
      script        = "infer"
      instance_type = local.infer_param.inference_type
      arguments = [
        "--model", "${local.processing}/model",
        "--features", "${local.processing}/features",
        "--output", "${local.processing}/predictions",
      ]
      inputs = [
        { name = "model", uri = local.infer_param.model_data },
        { name = "features", uri = { Get = "Steps.Preprocess.ProcessingOutputConfig.Outputs['features'].S3Output.S3Uri" } },
      ]
      outputs = [{ name = "predictions", uri = local.infer_output_uri.predictions }]
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
    Steps = [local.processing_step.infer_preprocess, local.processing_step.predict]
  }
}
