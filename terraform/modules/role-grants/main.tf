# Resource-policy statements that grant named IAM roles, in any account. Each names the role's
# account as principal and pins the role itself with aws:PrincipalArn: IAM rejects a resource
# policy whose principal is a role that does not exist yet, and other environments' roles may
# be created after the resource.
data "aws_iam_policy_document" "this" {
  source_policy_documents = var.source_policy_documents

  dynamic "statement" {
    for_each = { for sid, grant in var.grants : sid => grant if length(grant.roles) > 0 }

    content {
      sid       = statement.key
      actions   = statement.value.actions
      resources = statement.value.resources

      principals {
        type        = "AWS"
        identifiers = distinct([for arn in statement.value.roles : "arn:${split(":", arn)[1]}:iam::${split(":", arn)[4]}:root"])
      }

      condition {
        test     = "ArnEquals"
        variable = "aws:PrincipalArn"
        values   = statement.value.roles
      }
    }
  }
}
