terraform {
  # No providers: this module only computes JSON, so it runs anywhere Terraform does.
  required_version = ">= 1.5.0"
}
