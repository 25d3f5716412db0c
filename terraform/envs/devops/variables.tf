variable "connection_arn" {
  description = "ARN of the GitHub connection, recorded by `mlcicd connect`; empty until then."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:(codestar-connections|codeconnections):[a-z0-9-]+:[0-9]{12}:connection/[A-Za-z0-9-]+$", var.connection_arn))
    error_message = "No GitHub connection recorded: run `mlcicd connect --wait` (and finish the handshake in the console) before planning devops."
  }
}

variable "state_bucket" {
  description = "Name of the Terraform state bucket created by `mlcicd bootstrap`."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.state_bucket))
    error_message = "state_bucket must be a valid S3 bucket name."
  }
}

variable "target_environments" {
  description = "Environments the pipeline deploys to and runs ML pipelines in."
  type        = list(string)
  default     = ["staging", "prod"]

  validation {
    condition     = alltrue([for env in var.target_environments : contains(["dev", "staging", "prod", "data"], env)])
    error_message = "target_environments may hold only dev, staging, prod and data."
  }
}

variable "notification_emails" {
  description = "E-mail addresses notified of approval requests and failed executions."
  type        = list(string)
  default     = []
}

variable "pr_preview" {
  description = "Whether pull requests are planned with the read-only plan roles and the review posted on them."
  type        = bool
  default     = true
}

variable "github_token_secret_arn" {
  description = "ARN of the Secrets Manager secret with the GitHub token the PR preview posts with; null: plan without posting."
  type        = string
  default     = null
}

variable "drift_schedule" {
  description = "Schedule of the drift check (mlcicd.yaml `drift.schedule`, rendered by mlcicd); null turns it off."
  type        = string
  default     = "rate(6 hours)"
}
