output "bucket_names" {
  description = "Bucket names by purpose: datalake, models, predictions."
  value       = { for purpose, bucket in module.bucket : purpose => bucket.id }
}

output "kms_key_arn" {
  description = "ARN of the data key."
  value       = aws_kms_key.this.arn
}

output "kms_alias_arn" {
  description = "ARN of the data key's alias, which the ML environments refer to."
  value       = aws_kms_alias.this.arn
}
