variable "target_environment" {
  description = "The environment whose roles this applies: dev, staging, prod or data (set per entry in mlcicd.yaml)."
  type        = string
}

variable "state_bucket" {
  description = "Terraform state bucket the plan role reads; null for mlcicd's default name."
  type        = string
  default     = null
}

variable "state_lock_table" {
  description = "DynamoDB lock table the plan role may lock (state.lock: dynamodb); null for the S3 lockfile."
  type        = string
  default     = null
}

variable "force_destroy" {
  description = "Whether destroying an ML environment's code bucket also deletes its objects (for throwaway environments only)."
  type        = bool
  default     = false
}
