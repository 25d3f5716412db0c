variable "alias" {
  description = "Alias of the key, without the alias/ prefix."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9/_-]{1,250}$", var.alias)) && !startswith(var.alias, "aws/")
    error_message = "alias must be 1-250 letters, digits, '/', '_' or '-', and not start with aws/."
  }
}

variable "description" {
  description = "What the key encrypts."
  type        = string
}

variable "policy_documents" {
  description = "Key policy documents (JSON) whose statements are added to the account's administration statement."
  type        = list(string)
  default     = []
}

variable "deletion_window_in_days" {
  description = "Days a key scheduled for deletion can still be recovered."
  type        = number
  default     = 30

  validation {
    condition     = var.deletion_window_in_days >= 7 && var.deletion_window_in_days <= 30 && floor(var.deletion_window_in_days) == var.deletion_window_in_days
    error_message = "deletion_window_in_days must be a whole number of days from 7 to 30."
  }
}
