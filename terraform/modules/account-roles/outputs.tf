output "deploy_role_arn" {
  description = "ARN of the role the pipeline assumes to run Terraform in this environment."
  value       = aws_iam_role.deploy.arn
}

output "runner_role_arn" {
  description = "ARN of the role the pipeline assumes to start and inspect this environment's SageMaker pipelines."
  value       = aws_iam_role.runner.arn
}
