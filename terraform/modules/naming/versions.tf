terraform {
  required_version = ">= 1.10"

  required_providers {
    # Only for data.aws_partition: names hold in every partition.
    aws = {
      source  = "hashicorp/aws"
      version = ">= 6.0"
    }
  }
}
