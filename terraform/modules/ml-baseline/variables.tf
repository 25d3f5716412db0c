variable "project" {
  description = "Project name; prefixes every resource name (checked by the naming module)."
  type        = string
}

variable "accounts" {
  description = "Account id of each role: devops, dev, staging, prod and data (checked by the naming module)."
  type        = map(string)
}

variable "environment" {
  description = "The ML environment this baseline serves: dev, staging or prod."
  type        = string

  validation {
    condition     = contains(["dev", "staging", "prod"], var.environment)
    error_message = "environment must be one of dev, staging, prod."
  }
}

variable "training_enabled" {
  description = "Whether the environment trains (its execution role then writes model artefacts); prod only runs inference on a model trained in staging."
  type        = bool
  default     = true
}

variable "force_destroy" {
  description = "Whether destroying the code bucket also deletes its objects (for throwaway environments only)."
  type        = bool
  default     = false
}
