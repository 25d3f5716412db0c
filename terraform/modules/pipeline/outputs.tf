output "pipeline_name" {
  description = "Name of the CodePipeline."
  value       = aws_codepipeline.this.name
}

output "pipeline_arn" {
  description = "ARN of the CodePipeline."
  value       = aws_codepipeline.this.arn
}

output "codebuild_role_arn" {
  description = "ARN of the CodeBuild role, the principal the target accounts' roles trust."
  value       = aws_iam_role.codebuild.arn
}

output "codebuild_projects" {
  description = "CodeBuild project name of each action (build, train, test, plan-prod, deploy)."
  value       = { for action, project in aws_codebuild_project.this : action => project.name }
}

output "artifact_bucket" {
  description = "Name of the artifact bucket."
  value       = module.artifacts.id
}

output "kms_key_arn" {
  description = "ARN of the KMS key encrypting artifacts, build logs and notifications."
  value       = module.key.arn
}

output "notification_topic_arn" {
  description = "ARN of the SNS topic for approval requests and failed executions."
  value       = aws_sns_topic.this.arn
}
