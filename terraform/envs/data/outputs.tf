output "bucket_names" {
  description = "Bucket names by purpose: datalake, models, predictions."
  value       = module.data.bucket_names
}

output "kms_alias_arn" {
  description = "ARN of the data key's alias."
  value       = module.data.kms_alias_arn
}
