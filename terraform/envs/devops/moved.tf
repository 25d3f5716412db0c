# Upgrading a deployment made from the first release (a327d74): the artifact key moved into the
# kms-key module. Without these, Terraform would destroy the key (and the artifacts it encrypts)
# and create a new one.
moved {
  from = module.pipeline.aws_kms_key.this
  to   = module.pipeline.module.key.aws_kms_key.this
}

moved {
  from = module.pipeline.aws_kms_alias.this
  to   = module.pipeline.module.key.aws_kms_alias.this
}
