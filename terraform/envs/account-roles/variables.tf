variable "target_environment" {
  description = "The environment whose roles this applies: dev, staging, prod or data (set per entry in mlcicd.yaml)."
  type        = string

  validation {
    condition     = contains(["dev", "staging", "prod", "data"], var.target_environment)
    error_message = "target_environment must be one of dev, staging, prod, data."
  }
}
