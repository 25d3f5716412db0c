output "execution_role_arn" {
  description = "ARN of the SageMaker execution role the environment's pipelines run as."
  value       = aws_iam_role.sagemaker.arn
}

output "code_bucket" {
  description = "Name of the bucket the environment's ML code is uploaded to."
  value       = module.code_bucket.id
}

output "kms_key_arn" {
  description = "ARN of the environment's key, which encrypts its code bucket."
  value       = module.key.arn
}
