# The ML pipelines of one environment: a training pipeline (preprocess -> train -> evaluate ->
# register the model when the metric passes) and an inference pipeline (preprocess -> batch
# predict -> predictions in the data account). Their definitions come from
# ../sagemaker-pipeline-definitions; this module supplies the account around them.
data "aws_caller_identity" "current" {}

data "aws_region" "current" {}

module "names" {
  source = "../naming"

  project  = var.project
  region   = data.aws_region.current.region
  accounts = var.accounts
}

locals {
  prefix       = "${var.project}-${var.environment}"
  account      = data.aws_caller_identity.current.account_id
  partition    = module.names.partition
  region       = data.aws_region.current.region
  data_buckets = module.names.data_buckets
  code_prefix  = "code"
}

# The data key lives in the data account. Jobs are handed its full ARN: an alias would be
# resolved in the account of whoever uses it, not in the data account.
data "aws_kms_key" "data" {
  key_id = module.names.data_kms_alias_arn
}

module "key" {
  source = "../kms-key"

  alias       = local.prefix
  description = "${local.prefix}: ML code"
}

moved {
  from = aws_kms_key.this
  to   = module.key.aws_kms_key.this
}

moved {
  from = aws_kms_alias.this
  to   = module.key.aws_kms_alias.this
}

module "code_bucket" {
  source = "../secure-bucket"

  name                = module.names.code_buckets[var.environment]
  kms_key_arn         = module.key.arn
  read_principal_arns = [aws_iam_role.sagemaker.arn]
  force_destroy       = var.force_destroy
}

# source_hash rather than etag: the bucket encrypts with KMS, and the ETag of a KMS-encrypted
# object is not its MD5, so an etag would show a change on every plan. The hash still makes
# every edit of the ML code a plan change.
resource "aws_s3_object" "code" {
  for_each = module.definitions.code_files

  bucket      = module.code_bucket.id
  key         = "${local.code_prefix}/${each.key}"
  source      = each.value
  source_hash = filemd5(each.value)
  kms_key_id  = module.key.arn
}

data "aws_sagemaker_prebuilt_ecr_image" "sklearn" {
  repository_name = "sagemaker-scikit-learn"
  image_tag       = var.sklearn_image_tag
}

resource "aws_sagemaker_model_package_group" "this" {
  model_package_group_name        = "${local.prefix}-models"
  model_package_group_description = "Models trained and approved by the ${local.prefix} training pipeline."
}

# Lets other environments' roles (prod's pipeline runner) read the packages registered here;
# named like the bucket grants (account principal, role matched by aws:PrincipalArn) so prod
# may be applied later. Their own identity policies must allow it too.
data "aws_iam_policy_document" "model_packages" {
  statement {
    sid       = "ReadModelPackages"
    actions   = ["sagemaker:DescribeModelPackage"]
    resources = ["arn:${local.partition}:sagemaker:${local.region}:${local.account}:model-package/${local.prefix}-models/*"]

    principals {
      type        = "AWS"
      identifiers = distinct([for arn in var.model_package_reader_arns : "arn:${local.partition}:iam::${split(":", arn)[4]}:root"])
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:PrincipalArn"
      values   = var.model_package_reader_arns
    }
  }
}

resource "aws_sagemaker_model_package_group_policy" "this" {
  count = length(var.model_package_reader_arns) > 0 ? 1 : 0

  model_package_group_name = aws_sagemaker_model_package_group.this.model_package_group_name
  resource_policy          = data.aws_iam_policy_document.model_packages.json
}

module "definitions" {
  source = "../sagemaker-pipeline-definitions"

  project                  = var.project
  environment              = var.environment
  role_arn                 = aws_iam_role.sagemaker.arn
  code_s3_uri              = "s3://${module.code_bucket.id}/${local.code_prefix}/"
  input_data_uri           = "s3://${local.data_buckets["datalake"]}/input/"
  model_s3_uri             = "s3://${local.data_buckets["models"]}/${var.environment}/"
  predictions_s3_uri       = "s3://${local.data_buckets["predictions"]}/${var.environment}/"
  model_package_group_name = aws_sagemaker_model_package_group.this.model_package_group_name
  output_kms_key_arn       = data.aws_kms_key.data.arn
  metric_threshold         = var.metric_threshold
  processing_instance_type = var.processing_instance_type
  training_instance_type   = var.training_instance_type
  inference_instance_type  = var.inference_instance_type
  sklearn_image_uri        = data.aws_sagemaker_prebuilt_ecr_image.sklearn.registry_path
}

# Inline definitions: a definition read from S3 shows a spurious diff on every plan.
resource "aws_sagemaker_pipeline" "training" {
  count = var.training_enabled ? 1 : 0

  pipeline_name         = "${local.prefix}-training"
  pipeline_display_name = "${local.prefix}-training"
  pipeline_description  = "Preprocess, train, evaluate, and register the model when its metric passes ${var.metric_threshold}."
  role_arn              = aws_iam_role.sagemaker.arn
  pipeline_definition   = module.definitions.training_definition

  depends_on = [aws_s3_object.code, aws_iam_role_policy.sagemaker]
}

resource "aws_sagemaker_pipeline" "inference" {
  pipeline_name         = "${local.prefix}-inference"
  pipeline_display_name = "${local.prefix}-inference"
  pipeline_description  = "Preprocess, batch-predict with a registered model, and write the predictions to the data account."
  role_arn              = aws_iam_role.sagemaker.arn
  pipeline_definition   = module.definitions.inference_definition

  depends_on = [aws_s3_object.code, aws_iam_role_policy.sagemaker]
}
