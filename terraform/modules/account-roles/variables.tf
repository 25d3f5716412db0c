variable "project" {
  description = "Project name; prefixes every resource name (checked by the naming module)."
  type        = string
}

variable "target_environment" {
  description = "The environment these roles serve in this account: dev, staging, prod or data."
  type        = string

  validation {
    condition     = contains(["dev", "staging", "prod", "data"], var.target_environment)
    error_message = "target_environment must be one of dev, staging, prod, data."
  }
}

variable "accounts" {
  description = "Account id of each role: devops, dev, staging, prod and data (checked by the naming module)."
  type        = map(string)
}

variable "state_bucket" {
  description = "Terraform state bucket in the devops account; null for mlcicd's default name (PROJECT-tfstate-DEVOPS_ID-REGION)."
  type        = string
  default     = null
}

variable "state_lock_table" {
  description = "DynamoDB lock table (mlcicd.yaml state.lock: dynamodb); null when the state is locked with an S3 lockfile."
  type        = string
  default     = null
}

variable "max_session_duration" {
  description = "Longest session, in seconds, the pipeline can hold a role for (a training run can be long)."
  type        = number
  default     = 14400

  validation {
    condition     = var.max_session_duration >= 3600 && var.max_session_duration <= 43200 && var.max_session_duration % 3600 == 0
    error_message = "max_session_duration must be a whole number of hours from 1 to 12, in seconds (3600-43200)."
  }
}

variable "force_destroy" {
  description = "Whether destroying an ML environment's code bucket also deletes its objects (for throwaway environments only)."
  type        = bool
  default     = false
}
