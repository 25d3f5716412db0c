# A hardened S3 bucket: versioned, encrypted with a customer-managed key, all public access
# blocked, ACLs disabled, TLS-only, and readable/writable by named roles in any account.
resource "aws_s3_bucket" "this" {
  #checkov:skip=CKV_AWS_18:Server access logs need a dedicated log bucket this module does not create; use CloudTrail S3 data events for an audit trail.
  #checkov:skip=CKV2_AWS_62:Nothing consumes object events; CodePipeline and SageMaker are started explicitly.
  #checkov:skip=CKV_AWS_144:Cross-region replication is a disaster-recovery decision for the data owner, not a module default.
  bucket        = var.name
  force_destroy = var.force_destroy
}

resource "aws_s3_bucket_ownership_controls" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "this" {
  bucket                  = aws_s3_bucket.this.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "this" {
  bucket = aws_s3_bucket.this.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    bucket_key_enabled = true

    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    id     = "expire-noncurrent-versions"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }

    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_days
    }
  }

  depends_on = [aws_s3_bucket_versioning.this]
}

data "aws_partition" "current" {}

locals {
  # The bucket and its objects, from the name: known while planning, so the policy is too.
  resources    = ["arn:${data.aws_partition.current.partition}:s3:::${var.name}", "arn:${data.aws_partition.current.partition}:s3:::${var.name}/*"]
  read_actions = ["s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket", "s3:GetBucketLocation"]
}

data "aws_iam_policy_document" "tls" {
  statement {
    sid       = "EnforcedTLS"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = local.resources

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

module "policy" {
  source = "../role-grants"

  source_policy_documents = [data.aws_iam_policy_document.tls.json]
  grants = {
    AllowRead = {
      actions   = local.read_actions
      resources = local.resources
      roles     = var.read_principal_arns
    }
    AllowWrite = {
      actions   = concat(local.read_actions, ["s3:PutObject", "s3:AbortMultipartUpload"])
      resources = local.resources
      roles     = var.write_principal_arns
    }
  }
}

resource "aws_s3_bucket_policy" "this" {
  bucket = aws_s3_bucket.this.id
  policy = module.policy.json

  depends_on = [aws_s3_bucket_public_access_block.this]
}
