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
  value       = { for action in keys(var.build_timeouts) : action => aws_codebuild_project.this[action].name }
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

output "readonly_role_arns" {
  description = "ARN of the role of each read-only CodeBuild project (pr, drift): the principals the accounts' plan roles must trust."
  value       = { for action, role in aws_iam_role.readonly : action => role.arn }
}

output "pr_preview_project" {
  description = "Name of the CodeBuild project that previews pull requests (null when pr_preview is off)."
  value       = try(aws_codebuild_project.this["pr"].name, null)
}

output "drift_project" {
  description = "Name of the CodeBuild project that checks for drift on drift_schedule (null when off)."
  value       = try(aws_codebuild_project.this["drift"].name, null)
}
