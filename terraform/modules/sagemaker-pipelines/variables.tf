variable "project" {
  description = "Project name; prefixes every resource name (checked by the naming module)."
  type        = string
}

variable "accounts" {
  description = "Account id of each role: devops, dev, staging, prod and data (checked by the naming module)."
  type        = map(string)
}

variable "environment" {
  description = "The ML environment these pipelines run in: dev, staging or prod."
  type        = string

  validation {
    condition     = contains(["dev", "staging", "prod"], var.environment)
    error_message = "environment must be one of dev, staging, prod."
  }
}

variable "training_enabled" {
  description = "Whether this environment gets the training pipeline (prod only runs inference on a model trained in staging)."
  type        = bool
  default     = true
}

variable "metric_threshold" {
  description = "Lowest evaluation metric (between 0 and 1) at which the training pipeline registers the model."
  type        = number
  default     = 0.75

  validation {
    condition     = var.metric_threshold >= 0 && var.metric_threshold <= 1
    error_message = "metric_threshold must be between 0 and 1."
  }
}

variable "processing_instance_type" {
  description = "Instance type of the preprocessing and evaluation jobs."
  type        = string
  default     = "ml.m5.large"

  validation {
    condition     = can(regex("^ml\\.[a-z0-9]+\\.[a-z0-9]+$", var.processing_instance_type))
    error_message = "processing_instance_type must be a SageMaker instance type such as ml.m5.large."
  }
}

variable "training_instance_type" {
  description = "Instance type of the training job."
  type        = string
  default     = "ml.m5.large"

  validation {
    condition     = can(regex("^ml\\.[a-z0-9]+\\.[a-z0-9]+$", var.training_instance_type))
    error_message = "training_instance_type must be a SageMaker instance type such as ml.m5.large."
  }
}

variable "inference_instance_type" {
  description = "Instance type of the batch transform job."
  type        = string
  default     = "ml.m5.large"

  validation {
    condition     = can(regex("^ml\\.[a-z0-9]+\\.[a-z0-9]+$", var.inference_instance_type))
    error_message = "inference_instance_type must be a SageMaker instance type such as ml.m5.large."
  }
}

variable "sklearn_image_tag" {
  description = "Tag of the SageMaker prebuilt scikit-learn image the jobs run in."
  type        = string
  default     = "1.2-1-cpu-py3"

  validation {
    condition     = can(regex("^[0-9][0-9a-z.-]*$", var.sklearn_image_tag))
    error_message = "sklearn_image_tag must be an image tag such as 1.2-1-cpu-py3."
  }
}

variable "model_package_reader_arns" {
  description = "IAM role ARNs in other accounts (prod) allowed to read this environment's registered model packages."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.model_package_reader_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$", arn))])
    error_message = "model_package_reader_arns must be IAM role ARNs."
  }
}

variable "force_destroy" {
  description = "Whether destroying the code bucket also deletes its objects (for throwaway environments only)."
  type        = bool
  default     = false
}
