variable "name" {
  description = "Bucket name (globally unique)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.name))
    error_message = "name must be a valid S3 bucket name: 3-63 lowercase letters, digits, '.' or '-'."
  }
}

variable "kms_key_arn" {
  description = "ARN of the customer-managed KMS key objects are encrypted with by default."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN (not an alias: S3 resolves an alias in the caller's account)."
  }
}

variable "read_principal_arns" {
  description = "IAM role ARNs (any account) allowed to list and read objects (checked by role-grants)."
  type        = list(string)
  default     = []
}

variable "write_principal_arns" {
  description = "IAM role ARNs (any account) allowed to list, read and write objects (checked by role-grants)."
  type        = list(string)
  default     = []
}

variable "noncurrent_version_days" {
  description = "Days a noncurrent object version is kept before it expires."
  type        = number
  default     = 90

  validation {
    condition     = var.noncurrent_version_days >= 1 && var.noncurrent_version_days <= 3650 && floor(var.noncurrent_version_days) == var.noncurrent_version_days
    error_message = "noncurrent_version_days must be a whole number of days from 1 to 3650."
  }
}

variable "force_destroy" {
  description = "Whether destroying the bucket also deletes its objects (for throwaway environments only)."
  type        = bool
  default     = false
}
