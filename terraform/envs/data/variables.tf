variable "force_destroy" {
  description = "Whether destroying a bucket also deletes its objects (for throwaway setups only)."
  type        = bool
  default     = false
}
