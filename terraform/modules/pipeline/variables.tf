variable "project" {
  description = "Project name; prefixes every resource name (checked by the naming module)."
  type        = string
}

variable "region" {
  description = "AWS region every account's resources live in (checked by the naming module)."
  type        = string
}

variable "accounts" {
  description = "Account id of each role: devops, dev, staging, prod and data (checked by the naming module)."
  type        = map(string)
}

variable "repository" {
  description = "GitHub repository the pipeline builds, as owner/repo."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}$", var.repository))
    error_message = "repository must be owner/repo."
  }
}

variable "branch" {
  description = "Branch whose pushes start the pipeline."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9._/-]{1,200}$", var.branch))
    error_message = "branch must be a valid branch name."
  }
}

variable "connection_arn" {
  description = "ARN of the GitHub connection (CodeConnections or CodeStar Connections) in AVAILABLE state."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:(codestar-connections|codeconnections):[a-z0-9-]+:[0-9]{12}:connection/[A-Za-z0-9-]+$", var.connection_arn))
    error_message = "No GitHub connection recorded (connection_arn must be a CodeConnections or CodeStar Connections ARN): run `mlcicd connect --wait` (and finish the handshake in the console) before planning devops."
  }
}

variable "state_bucket" {
  description = "Name of the Terraform state bucket the CodeBuild projects read and write state in."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.state_bucket))
    error_message = "state_bucket must be a valid S3 bucket name."
  }
}

variable "target_environments" {
  description = "Environments the pipeline deploys to and runs ML pipelines in; CodeBuild may assume only their deploy, pipeline-runner and plan roles (data has only a plan role)."
  type        = list(string)
  default     = ["staging", "prod"]

  validation {
    condition     = alltrue([for env in var.target_environments : contains(["dev", "staging", "prod", "data"], env)])
    error_message = "target_environments may hold only dev, staging, prod and data."
  }
}

variable "notification_emails" {
  description = "E-mail addresses subscribed to approval requests and failed executions (each must confirm the subscription)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for address in var.notification_emails : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", address))])
    error_message = "notification_emails must be e-mail addresses."
  }
}

variable "build_timeouts" {
  description = "CodeBuild timeout in minutes for each action: build, train, test, plan-prod, deploy."
  type        = map(number)
  default = {
    build     = 60
    train     = 240
    test      = 120
    plan-prod = 60
    deploy    = 60
  }

  validation {
    condition     = alltrue([for action in ["build", "train", "test", "plan-prod", "deploy"] : var.build_timeouts[action] >= 5 && var.build_timeouts[action] <= 2160 && floor(var.build_timeouts[action]) == var.build_timeouts[action]])
    error_message = "build_timeouts must give build, train, test, plan-prod and deploy each a whole number of minutes from 5 to 2160."
  }
}

variable "compute_type" {
  description = "CodeBuild compute type of every action."
  type        = string
  default     = "BUILD_GENERAL1_SMALL"

  validation {
    condition     = contains(["BUILD_GENERAL1_SMALL", "BUILD_GENERAL1_MEDIUM", "BUILD_GENERAL1_LARGE"], var.compute_type)
    error_message = "compute_type must be BUILD_GENERAL1_SMALL, BUILD_GENERAL1_MEDIUM or BUILD_GENERAL1_LARGE."
  }
}

variable "build_image" {
  description = "CodeBuild image the actions run in."
  type        = string
  default     = "aws/codebuild/standard:7.0"

  validation {
    condition     = can(regex("^[a-z0-9./:_-]+$", var.build_image))
    error_message = "build_image must be an image name such as aws/codebuild/standard:7.0."
  }
}

variable "log_retention_days" {
  description = "Days CodeBuild logs are kept."
  type        = number
  default     = 365

  validation {
    condition     = contains([365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a CloudWatch Logs retention of at least a year (365, 400, 545, 731, ... 3653)."
  }
}

variable "force_destroy" {
  description = "Whether destroying the artifact bucket also deletes its objects (for throwaway setups only)."
  type        = bool
  default     = false
}

variable "pr_preview" {
  description = "Whether pull requests against `branch` are planned with the read-only plan roles and the review posted on the pull request (never applied)."
  type        = bool
  default     = true
}

variable "pr_preview_comment_approval" {
  description = "Which pull requests wait for a `/codebuild_run(SHA)` comment from a repository writer before they are planned: ALL_PULL_REQUESTS (from anyone without write access), FORK_PULL_REQUESTS, or DISABLED."
  type        = string
  default     = "ALL_PULL_REQUESTS"

  validation {
    condition     = contains(["ALL_PULL_REQUESTS", "FORK_PULL_REQUESTS", "DISABLED"], var.pr_preview_comment_approval)
    error_message = "pr_preview_comment_approval must be ALL_PULL_REQUESTS, FORK_PULL_REQUESTS or DISABLED."
  }
}

variable "github_token_secret_arn" {
  description = "ARN of a Secrets Manager secret holding the GitHub token the PR preview posts its comment and commit status with (null: the preview plans but cannot post)."
  type        = string
  default     = null

  validation {
    condition     = alltrue([for arn in compact([var.github_token_secret_arn]) : can(regex("^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:.+$", arn))])
    error_message = "github_token_secret_arn must be a Secrets Manager secret ARN or null."
  }
}

variable "drift_schedule" {
  description = "EventBridge schedule expression on which `mlcicd drift --all` runs with the plan roles and notifies the topic of drifted resources, e.g. rate(6 hours); null turns it off."
  type        = string
  default     = "rate(6 hours)"

  validation {
    condition     = alltrue([for expression in compact([var.drift_schedule]) : can(regex("^(rate\\([1-9][0-9]* (minute|minutes|hour|hours|day|days)\\)|cron\\([^()]+\\))$", expression))])
    error_message = "drift_schedule must be rate(N unit) or cron(...) or null."
  }
}
