# Shared by every module that uses the AWS provider (each links to this file, as the
# environments link to envs/_shared): one lower bound to raise for all of them.
terraform {
  required_version = ">= 1.10"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 6.0"
    }
  }
}
