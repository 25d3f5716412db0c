# Upgrading a deployment made from the first release (a327d74): the roles became one for_each
# over their kinds. Without these, Terraform would destroy and recreate each role, and every
# trust and key policy naming it would have to accept the new role again.
# roles-data has no pipeline runner any more: its old one moves to this["pipeline-runner"] and is
# destroyed there, as it would be without the move.
moved {
  from = module.roles.aws_iam_role.deploy
  to   = module.roles.aws_iam_role.this["deploy"]
}

moved {
  from = module.roles.aws_iam_role_policy.deploy
  to   = module.roles.aws_iam_role_policy.this["deploy"]
}

moved {
  from = module.roles.aws_iam_role.runner
  to   = module.roles.aws_iam_role.this["pipeline-runner"]
}

moved {
  from = module.roles.aws_iam_role_policy.runner
  to   = module.roles.aws_iam_role_policy.this["pipeline-runner"]
}
