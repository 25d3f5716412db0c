output "json" {
  description = "The policy document, for a bucket, key or model package group policy."
  value       = data.aws_iam_policy_document.this.json
}
