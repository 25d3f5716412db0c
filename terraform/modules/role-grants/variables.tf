variable "grants" {
  description = "Statements by Sid: the actions the roles (IAM role ARNs, any account) may take on the resources. A grant with no roles is left out."
  type = map(object({
    actions   = list(string)
    resources = list(string)
    roles     = list(string)
  }))

  validation {
    condition     = alltrue(flatten([for grant in values(var.grants) : [for arn in grant.roles : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$", arn))]]))
    error_message = "grants' roles must be IAM role ARNs."
  }
}

variable "source_policy_documents" {
  description = "Policy documents (JSON) whose statements come first, e.g. a TLS-only deny."
  type        = list(string)
  default     = []
}
