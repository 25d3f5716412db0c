# Shared by every environment (each env directory links to this file).
provider "aws" {
  region              = var.region
  allowed_account_ids = [var.account_id]

  # mlcicd renders assume_role_arn empty when Terraform already runs in the target account
  # (the devops environment, or an environment applied with that account's own credentials).
  dynamic "assume_role" {
    for_each = var.assume_role_arn == "" ? [] : [var.assume_role_arn]

    content {
      role_arn     = assume_role.value
      session_name = "mlcicd-${var.environment}"
    }
  }

  default_tags {
    tags = {
      Project     = var.project
      Environment = var.environment
      ManagedBy   = "mlcicd"
      Repository  = var.repository
    }
  }
}
