# The deploy and pipeline-runner roles of one target environment, applied with an
# administrator's credentials in that account (mlcicd.yaml: roles-ENV, assume_role: false)
# before the pipeline exists.
module "roles" {
  source = "../../modules/account-roles"

  project            = var.project
  region             = var.region
  accounts           = var.accounts
  target_environment = var.target_environment
}
