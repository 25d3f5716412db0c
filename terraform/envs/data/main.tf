# The data account: data lake, model artefacts and predictions.
module "data" {
  source = "../../modules/data"

  project       = var.project
  accounts      = var.accounts
  force_destroy = var.force_destroy
}
