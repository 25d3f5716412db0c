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

variable "jobs" {
  description = "How the pipelines' jobs run, each setting optional: the metric threshold (0-1) at which training registers a model, the processing, training and inference instance types, and the scikit-learn image tag. sagemaker-pipeline-definitions checks them."
  type = object({
    metric_threshold         = optional(number, 0.75)
    processing_instance_type = optional(string, "ml.m5.large")
    training_instance_type   = optional(string, "ml.m5.large")
    inference_instance_type  = optional(string, "ml.m5.large")
    sklearn_image_tag        = optional(string, "1.2-1-cpu-py3")
  })
  default = {}

  validation {
    condition     = can(regex("^[0-9][0-9a-z.-]*$", var.jobs.sklearn_image_tag))
    error_message = "jobs.sklearn_image_tag must be an image tag such as 1.2-1-cpu-py3."
  }
}

variable "model_package_reader_arns" {
  description = "IAM role ARNs in other accounts (prod) allowed to read this environment's registered model packages."
  type        = list(string)
  default     = []
}
