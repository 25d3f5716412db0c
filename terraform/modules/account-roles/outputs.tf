output "deploy_role_arn" {
  description = "ARN of the role the pipeline assumes to run Terraform in this ML environment; null for data, which an administrator applies."
  value       = try(aws_iam_role.this["deploy"].arn, null)
}

output "runner_role_arn" {
  description = "ARN of the role the pipeline assumes to start and inspect this environment's SageMaker pipelines; null for data."
  value       = try(aws_iam_role.this["pipeline-runner"].arn, null)
}

output "plan_role_arn" {
  description = "ARN of the read-only role that plans this environment (pull-request previews, drift); it writes only the state lock."
  value       = aws_iam_role.this["plan"].arn
}

output "execution_role_arn" {
  description = "ARN of the ML environment's SageMaker execution role; null for data."
  value       = try(module.ml_baseline[0].execution_role_arn, null)
}

output "code_bucket" {
  description = "Name of the ML environment's code bucket; null for data."
  value       = try(module.ml_baseline[0].code_bucket, null)
}
