variable "connection_arn" {
  description = "ARN of the GitHub connection, recorded by `mlcicd connect`; empty until then (checked by the pipeline module)."
  type        = string
}

variable "state_bucket" {
  description = "Name of the Terraform state bucket created by `mlcicd bootstrap` (checked by the pipeline module)."
  type        = string
}

variable "target_environments" {
  description = "Environments the pipeline deploys to and runs ML pipelines in (checked by the pipeline module)."
  type        = list(string)
  default     = ["staging", "prod"]
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
