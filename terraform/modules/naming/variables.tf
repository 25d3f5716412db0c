variable "project" {
  description = "Project name; prefixes every resource name."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.project))
    error_message = "project must be 3-32 lowercase letters, digits or '-', starting with a letter."
  }
}

variable "region" {
  description = "AWS region every account's resources live in; null for the provider's region."
  type        = string
  default     = null

  validation {
    condition     = var.region == null || can(regex("^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]{1,2}$", var.region))
    error_message = "region must be an AWS region name such as us-east-1."
  }
}

variable "accounts" {
  description = "Account id of each role: devops, dev, staging, prod and data (all may be the same account)."
  type        = map(string)

  validation {
    condition     = alltrue([for role in ["devops", "dev", "staging", "prod", "data"] : can(regex("^[0-9]{12}$", var.accounts[role]))])
    error_message = "accounts must map each of devops, dev, staging, prod and data to a 12-digit account id."
  }
}
