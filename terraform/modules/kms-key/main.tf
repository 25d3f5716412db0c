# A customer-managed KMS key with rotation, its alias, and its key policy. The policy always
# lets the key's own account administer the key (the AWS default statement, which is what
# lets IAM policies in the account grant its use); callers add their own statements as
# policy documents.
data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_iam_policy_document" "this" {
  #checkov:skip=CKV_AWS_109:In a key policy, Resource "*" is this key; the account statement is the AWS default that lets IAM policies grant use.
  #checkov:skip=CKV_AWS_111:In a key policy, Resource "*" is this key; the account statement is the AWS default that lets IAM policies grant use.
  #checkov:skip=CKV_AWS_356:In a key policy, Resource "*" is this key, not every resource.
  source_policy_documents = var.policy_documents

  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
}

resource "aws_kms_key" "this" {
  description             = var.description
  enable_key_rotation     = true
  deletion_window_in_days = var.deletion_window_in_days
  policy                  = data.aws_iam_policy_document.this.json
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.alias}"
  target_key_id = aws_kms_key.this.key_id
}
