output "deploy_role_arn" {
  description = "ARN of the role the pipeline assumes to run Terraform in the target ML environment; null for data."
  value       = module.roles.deploy_role_arn
}

output "runner_role_arn" {
  description = "ARN of the role the pipeline assumes to run the target environment's SageMaker pipelines; null for data."
  value       = module.roles.runner_role_arn
}

output "plan_role_arn" {
  description = "ARN of the read-only role that plans the target environment; it writes only the state lock."
  value       = module.roles.plan_role_arn
}

output "execution_role_arn" {
  description = "ARN of the target ML environment's SageMaker execution role; null for data."
  value       = module.roles.execution_role_arn
}

output "code_bucket" {
  description = "Name of the target ML environment's code bucket; null for data."
  value       = module.roles.code_bucket
}
