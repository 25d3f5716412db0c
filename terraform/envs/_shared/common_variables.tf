# Shared by every environment (each env directory links to this file). mlcicd writes these
# into every environment's terraform.tfvars.json from mlcicd.yaml. Values passed on to modules
# are checked there, where they are used (project, region and accounts in modules/naming,
# repository and branch in modules/pipeline).
variable "project" {
  description = "Project name; prefixes every resource name."
  type        = string
}

variable "environment" {
  description = "Name of this environment in mlcicd.yaml."
  type        = string

  validation {
    condition     = can(regex("^[a-z]([a-z0-9-]{0,30}[a-z0-9])?$", var.environment))
    error_message = "environment must be lowercase letters, digits and '-' (at most 32), starting with a letter."
  }
}

variable "region" {
  description = "AWS region every account's resources live in."
  type        = string
}

variable "accounts" {
  description = "Account id of each role: devops, dev, staging, prod and data (all may be the same account)."
  type        = map(string)
}

variable "account_id" {
  description = "Account this environment is applied in; the provider refuses any other."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{12}$", var.account_id))
    error_message = "account_id must be a 12-digit account id."
  }
}

variable "assume_role_arn" {
  description = "Role the provider assumes in the target account; empty to run as the caller."
  type        = string

  validation {
    condition     = var.assume_role_arn == "" || can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$", var.assume_role_arn))
    error_message = "assume_role_arn must be an IAM role ARN or empty."
  }
}

variable "repository" {
  description = "GitHub repository the pipeline builds, as owner/repo."
  type        = string
}

variable "branch" {
  description = "Branch whose pushes start the pipeline."
  type        = string
}
