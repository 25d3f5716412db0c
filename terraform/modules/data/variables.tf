variable "accounts" {
  description = "Account id of each role: devops, dev, staging, prod and data (checked by the naming module)."
  type        = map(string)
}

variable "force_destroy" {
  description = "Whether destroying a bucket also deletes its objects (for throwaway environments only)."
  type        = bool
  default     = false
}

variable "project" {
  description = "Project name; prefixes every resource name (checked by the naming module)."
  type        = string
}
