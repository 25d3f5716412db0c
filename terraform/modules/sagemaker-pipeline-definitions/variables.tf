variable "project" {
  description = "Project name; tags every SageMaker job the pipelines start and names the registered model's origin."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9-]{0,62}$", var.project))
    error_message = "project must be 1-63 letters, digits or hyphens, starting with a letter or digit."
  }
}

variable "environment" {
  description = "Environment the pipelines run in (dev, staging, prod, ...); tags every job."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9-]{0,62}$", var.environment))
    error_message = "environment must be 1-63 letters, digits or hyphens, starting with a letter or digit."
  }
}

variable "role_arn" {
  description = "ARN of the IAM role the processing and training jobs run as."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$", var.role_arn))
    error_message = "role_arn must be an IAM role ARN (arn:PARTITION:iam::123456789012:role/NAME)."
  }
}

variable "code_s3_uri" {
  description = "S3 prefix holding every file of ml/ under its own name (see the code_files output); mounted as each job's code input."
  type        = string

  validation {
    condition     = can(regex("^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$", var.code_s3_uri))
    error_message = "code_s3_uri must be an s3://BUCKET/PREFIX URI."
  }
}

variable "input_data_uri" {
  description = "S3 URI (object or prefix) of the raw training data: census-style CSV files with an income label. Default of the training pipeline's InputDataUri parameter."
  type        = string

  validation {
    condition     = can(regex("^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$", var.input_data_uri))
    error_message = "input_data_uri must be an s3://BUCKET/KEY URI."
  }
}

variable "inference_data_uri" {
  description = "S3 URI (object or prefix) of the rows to score; default of the inference pipeline's InputDataUri parameter. Defaults to input_data_uri."
  type        = string
  default     = null

  validation {
    condition     = var.inference_data_uri == null || can(regex("^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$", var.inference_data_uri))
    error_message = "inference_data_uri must be an s3://BUCKET/KEY URI."
  }
}

variable "model_s3_uri" {
  description = "S3 prefix for the training pipeline's artefacts: model.tar.gz from training, and per execution the train/test splits, the fitted transform and the evaluation report."
  type        = string

  validation {
    condition     = can(regex("^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$", var.model_s3_uri))
    error_message = "model_s3_uri must be an s3://BUCKET/PREFIX URI."
  }
}

variable "predictions_s3_uri" {
  description = "S3 prefix the inference pipeline writes to: PREFIX/EXECUTION_ID/predictions/predictions.csv (and the transformed features beside it)."
  type        = string

  validation {
    condition     = can(regex("^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$", var.predictions_s3_uri))
    error_message = "predictions_s3_uri must be an s3://BUCKET/PREFIX URI."
  }
}

variable "model_package_group_name" {
  description = "Model package group the training pipeline registers passing models in (status PendingManualApproval)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9](-*[A-Za-z0-9]){0,62}$", var.model_package_group_name))
    error_message = "model_package_group_name must be 1-63 letters, digits or single hyphens, as SageMaker requires."
  }
}

variable "output_kms_key_arn" {
  description = "ARN of the KMS key every job encrypts its S3 outputs with (shared with the roles that read them)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.output_kms_key_arn))
    error_message = "output_kms_key_arn must be a KMS key ARN, not an alias: an alias resolves in the account of whoever uses it."
  }
}

variable "metric_threshold" {
  description = "Minimum test-set AUC a model needs to be registered; default of the MetricThreshold parameter."
  type        = number

  validation {
    condition     = var.metric_threshold >= 0 && var.metric_threshold <= 1
    error_message = "metric_threshold is an AUC and must be between 0 and 1."
  }
}

variable "processing_instance_type" {
  description = "Instance type of the preprocessing and evaluation jobs; default of the ProcessingInstanceType parameter."
  type        = string

  validation {
    condition     = can(regex("^ml\\.[a-z0-9-]+\\.[a-z0-9]+$", var.processing_instance_type))
    error_message = "processing_instance_type must be a SageMaker instance type such as ml.m5.large."
  }
}

variable "training_instance_type" {
  description = "Instance type of the training job; default of the TrainingInstanceType parameter."
  type        = string

  validation {
    condition     = can(regex("^ml\\.[a-z0-9-]+\\.[a-z0-9]+$", var.training_instance_type))
    error_message = "training_instance_type must be a SageMaker instance type such as ml.m5.large."
  }
}

variable "inference_instance_type" {
  description = "Instance type of the prediction job; default of the inference pipeline's InferenceInstanceType parameter, and the transform instance type recorded on registered models."
  type        = string

  validation {
    condition     = can(regex("^ml\\.[a-z0-9-]+\\.[a-z0-9]+$", var.inference_instance_type))
    error_message = "inference_instance_type must be a SageMaker instance type such as ml.m5.large."
  }
}

variable "sklearn_image_uri" {
  description = "SageMaker scikit-learn container image (framework 1.2-1 or later) every job runs in."
  type        = string

  validation {
    condition     = can(regex("^[^\\s/]+/[^\\s]+$", var.sklearn_image_uri))
    error_message = "sklearn_image_uri must be a container image URI (REGISTRY/REPOSITORY:TAG)."
  }
}

variable "max_runtime_in_seconds" {
  description = "Time limit of each processing and training job."
  type        = number
  default     = 3600

  validation {
    condition     = var.max_runtime_in_seconds >= 60 && var.max_runtime_in_seconds <= 86400
    error_message = "max_runtime_in_seconds must be between 60 and 86400."
  }
}

variable "ml_code_dir" {
  description = "Directory holding the ML entry points, for the code_files output. Defaults to this repository's ml/."
  type        = string
  default     = null
}
