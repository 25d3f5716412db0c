output "partition" {
  description = "AWS partition of the provider: aws, aws-cn or aws-us-gov."
  value       = local.partition
}

output "account_id" {
  description = "Account the provider works in."
  value       = data.aws_caller_identity.current.account_id
}

output "region" {
  description = "AWS region the names are made for."
  value       = local.region
}

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
  description = "ARN of the data account's KMS key alias; resolve it to the key ARN (data.aws_kms_key) before handing it to a service."
  value       = "arn:${local.partition}:kms:${local.region}:${var.accounts["data"]}:${local.data_kms_alias}"
}

output "codebuild_role_name" {
  description = "Name of the CodeBuild role in the devops account."
  value       = local.codebuild_role_name
}

output "codebuild_role_arn" {
  description = "ARN of the CodeBuild role in the devops account, the only principal the target roles trust."
  value       = "arn:${local.partition}:iam::${var.accounts["devops"]}:role/${local.codebuild_role_name}"
}

output "deploy_role_arns" {
  description = "Deploy role ARN of each target environment (dev, staging, prod, data)."
  value       = local.role_arns["deploy"]
}

output "runner_role_arns" {
  description = "Pipeline-runner role ARN of each target environment (dev, staging, prod, data)."
  value       = local.role_arns["pipeline-runner"]
}

output "plan_role_arns" {
  description = "Read-only plan role ARN of each target environment (dev, staging, prod, data)."
  value       = local.role_arns["plan"]
}

output "sagemaker_role_arns" {
  description = "SageMaker execution role ARN of each ML environment (dev, staging, prod)."
  value       = { for env in ["dev", "staging", "prod"] : env => local.role_arns["sagemaker"][env] }
}

output "state_bucket" {
  description = "Default name of the Terraform state bucket in the devops account (mlcicd.yaml state.bucket, when not set)."
  value       = trim(substr("${var.project}-tfstate-${var.accounts["devops"]}-${local.region}", 0, 63), "-.")
}
