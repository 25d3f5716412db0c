# The roles of one target environment, applied with an administrator's credentials in that
# account (mlcicd.yaml: roles-ENV, assume_role: false) before the pipeline exists; for an ML
# environment also its security baseline (key, code bucket, SageMaker execution role), which
# no role the pipeline assumes may change.
module "roles" {
  source = "../../modules/account-roles"

  project            = var.project
  accounts           = var.accounts
  target_environment = var.target_environment
  state_bucket       = var.state_bucket
  state_lock_table   = var.state_lock_table
  force_destroy      = var.force_destroy
}
