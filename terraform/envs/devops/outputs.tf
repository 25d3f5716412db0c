output "pipeline_name" {
  description = "Name of the CodePipeline."
  value       = module.pipeline.pipeline_name
}

output "codebuild_role_arn" {
  description = "ARN of the CodeBuild role the target accounts' roles trust."
  value       = module.pipeline.codebuild_role_arn
}

output "artifact_bucket" {
  description = "Name of the artifact bucket."
  value       = module.pipeline.artifact_bucket
}

output "notification_topic_arn" {
  description = "ARN of the SNS topic for approval requests and failed executions."
  value       = module.pipeline.notification_topic_arn
}

output "readonly_role_arns" {
  description = "Roles of the PR preview and drift projects, which the accounts' plan roles trust."
  value       = module.pipeline.readonly_role_arns
}
