# The devops account: the pipeline and everything it needs. Applied once by hand
# (`mlcicd apply devops`) after the state backend, the GitHub connection and the account roles.
module "pipeline" {
  source = "../../modules/pipeline"

  project             = var.project
  region              = var.region
  accounts            = var.accounts
  repository          = var.repository
  branch              = var.branch
  connection_arn      = var.connection_arn
  state_bucket        = var.state_bucket
  target_environments = var.target_environments
  notification_emails = var.notification_emails

  pr_preview              = var.pr_preview
  github_token_secret_arn = var.github_token_secret_arn
  drift_schedule          = var.drift_schedule
}
