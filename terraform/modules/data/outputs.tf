output "bucket_names" {
  description = "Bucket names by purpose: datalake, models, predictions."
  value       = { for purpose, bucket in module.bucket : purpose => bucket.id }
}

output "kms_key_arn" {
  description = "ARN of the data key; services and other accounts must be given this, not the alias."
  value       = module.key.arn
}

output "kms_alias_arn" {
  description = "ARN of the data key's alias, the name the ML environments look the key up by."
  value       = module.key.alias_arn
}
