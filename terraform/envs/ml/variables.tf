# Set per environment under `vars` in mlcicd.yaml.
variable "metric_threshold" {
  description = "Lowest evaluation metric (between 0 and 1) at which the training pipeline registers the model."
  type        = number
  default     = 0.75
}

variable "processing_instance_type" {
  description = "Instance type of the preprocessing and evaluation jobs."
  type        = string
  default     = "ml.m5.large"
}

variable "training_instance_type" {
  description = "Instance type of the training job."
  type        = string
  default     = "ml.m5.large"
}

variable "inference_instance_type" {
  description = "Instance type of the batch transform job."
  type        = string
  default     = "ml.m5.large"
}
