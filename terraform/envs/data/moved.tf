# Upgrading a deployment made from the first release (a327d74): the data key moved into the
# kms-key module. Without these, Terraform would destroy the key the data lake, models and
# predictions are encrypted with, and create a new one.
moved {
  from = module.data.aws_kms_key.this
  to   = module.data.module.key.aws_kms_key.this
}

moved {
  from = module.data.aws_kms_alias.this
  to   = module.data.module.key.aws_kms_alias.this
}
