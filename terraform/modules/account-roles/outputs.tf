output "deploy_role_arn" {
  description = "ARN of the role the pipeline assumes to run Terraform in this environment."
  value       = aws_iam_role.this["deploy"].arn
}

output "runner_role_arn" {
  description = "ARN of the role the pipeline assumes to start and inspect this environment's SageMaker pipelines; null for data."
  value       = try(aws_iam_role.this["pipeline-runner"].arn, null)
}

output "plan_role_arn" {
  description = "ARN of the read-only role that plans this environment (pull-request previews, drift); it writes only the state lock."
  value       = aws_iam_role.this["plan"].arn
}
