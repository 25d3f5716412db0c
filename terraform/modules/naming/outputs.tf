output "data_buckets" {
  description = "Data-account bucket names by purpose: datalake, models, predictions."
  value       = local.data_buckets
}

output "code_buckets" {
  description = "Code bucket name of each ML environment (dev, staging, prod)."
  value       = local.code_buckets
}

output "data_kms_alias" {
  description = "Alias of the data account's KMS key (alias/NAME)."
  value       = local.data_kms_alias
}

output "data_kms_alias_arn" {
  description = "ARN of the data account's KMS key alias; SageMaker jobs write with it as output_kms_key."
  value       = "arn:aws:kms:${var.region}:${var.accounts["data"]}:${local.data_kms_alias}"
}

output "codebuild_role_name" {
  description = "Name of the CodeBuild role in the devops account."
  value       = local.codebuild_role_name
}

output "codebuild_role_arn" {
  description = "ARN of the CodeBuild role in the devops account, the only principal the target roles trust."
  value       = "arn:aws:iam::${var.accounts["devops"]}:role/${local.codebuild_role_name}"
}

output "deploy_role_arns" {
  description = "Deploy role ARN of each target environment (dev, staging, prod, data)."
  value       = local.deploy_role_arns
}

output "runner_role_arns" {
  description = "Pipeline-runner role ARN of each target environment (dev, staging, prod, data)."
  value       = local.runner_role_arns
}

output "sagemaker_role_arns" {
  description = "SageMaker execution role ARN of each ML environment (dev, staging, prod)."
  value       = local.sagemaker_role_arns
}
