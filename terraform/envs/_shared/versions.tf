# Shared by every environment (each env directory links to this file).
terraform {
  required_version = ">= 1.11"

  # Partial: mlcicd renders bucket, key, region and locking into .mlcicd/ENV/backend.hcl.
  backend "s3" {}

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # Exact: the modules are checked offline against this version's schema.
      version = "6.69.0"
    }
  }
}
