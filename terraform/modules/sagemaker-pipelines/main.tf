# The ML pipelines of one environment: a training pipeline (preprocess -> train -> evaluate ->
# register the model when the metric passes) and an inference pipeline (preprocess -> batch
# predict -> predictions in the data account). Their definitions come from
# ../sagemaker-pipeline-definitions; this module supplies the account around them. The
# environment's key, code bucket and SageMaker execution role are not here: they are its
# security baseline (modules/ml-baseline), which an administrator applies with the account's
# roles (roles-ENV), and this module finds them by the naming convention. So the deploy role
# that applies this module changes no key, bucket policy or IAM role.
module "names" {
  source = "../naming"

  project  = var.project
  accounts = var.accounts
}

locals {
  prefix       = "${var.project}-${var.environment}"
  account      = module.names.account_id
  partition    = module.names.partition
  region       = module.names.region
  data_buckets = module.names.data_buckets
  code_prefix  = "code"
  code_bucket  = module.names.code_buckets[var.environment]
  # ml-baseline's execution role, which the deploy role may pass to SageMaker and nothing else.
  execution_role_arn = module.names.sagemaker_role_arns[var.environment]
}

# The data key lives in the data account. Jobs are handed its full ARN: an alias would be
# resolved in the account of whoever uses it, not in the data account.
data "aws_kms_key" "data" {
  key_id = module.names.data_kms_alias_arn
}

# The objects are encrypted by the bucket's default encryption, with the environment's key.
# source_hash rather than etag: the ETag of a KMS-encrypted object is not its MD5, so an etag
# would show a change on every plan. The hash still makes every edit of the ML code a plan change.
resource "aws_s3_object" "code" {
  for_each = module.definitions.code_files

  bucket      = local.code_bucket
  key         = "${local.code_prefix}/${each.key}"
  source      = each.value
  source_hash = filemd5(each.value)
}

data "aws_sagemaker_prebuilt_ecr_image" "sklearn" {
  repository_name = "sagemaker-scikit-learn"
  image_tag       = var.jobs.sklearn_image_tag
}

resource "aws_sagemaker_model_package_group" "this" {
  model_package_group_name        = "${local.prefix}-models"
  model_package_group_description = "Models trained and approved by the ${local.prefix} training pipeline."
}

# Lets other environments' roles (prod's pipeline runner) read the packages registered here,
# so prod may be applied later. Their own identity policies must allow it too.
module "model_package_readers" {
  source = "../role-grants"

  grants = {
    ReadModelPackages = {
      actions   = ["sagemaker:DescribeModelPackage"]
      resources = ["arn:${local.partition}:sagemaker:${local.region}:${local.account}:model-package/${local.prefix}-models/*"]
      roles     = var.model_package_reader_arns
    }
  }
}

resource "aws_sagemaker_model_package_group_policy" "this" {
  count = length(var.model_package_reader_arns) > 0 ? 1 : 0

  model_package_group_name = aws_sagemaker_model_package_group.this.model_package_group_name
  resource_policy          = module.model_package_readers.json
}

module "definitions" {
  source = "../sagemaker-pipeline-definitions"

  project                  = var.project
  environment              = var.environment
  role_arn                 = local.execution_role_arn
  code_s3_uri              = "s3://${local.code_bucket}/${local.code_prefix}/"
  input_data_uri           = "s3://${local.data_buckets["datalake"]}/input/"
  model_s3_uri             = "s3://${local.data_buckets["models"]}/${var.environment}/"
  predictions_s3_uri       = "s3://${local.data_buckets["predictions"]}/${var.environment}/"
  model_package_group_name = aws_sagemaker_model_package_group.this.model_package_group_name
  output_kms_key_arn       = data.aws_kms_key.data.arn
  metric_threshold         = var.jobs.metric_threshold
  processing_instance_type = var.jobs.processing_instance_type
  training_instance_type   = var.jobs.training_instance_type
  inference_instance_type  = var.jobs.inference_instance_type
  sklearn_image_uri        = data.aws_sagemaker_prebuilt_ecr_image.sklearn.registry_path
}

# Inline definitions: a definition read from S3 shows a spurious diff on every plan.
locals {
  pipelines = merge(
    var.training_enabled ? {
      training = {
        description = "Preprocess, train, evaluate, and register the model when its metric passes ${var.jobs.metric_threshold}."
        definition  = module.definitions.training_definition
      }
    } : {},
    {
      inference = {
        description = "Preprocess, batch-predict with a registered model, and write the predictions to the data account."
        definition  = module.definitions.inference_definition
      }
    },
  )
}

resource "aws_sagemaker_pipeline" "this" {
  for_each = local.pipelines

  pipeline_name         = "${local.prefix}-${each.key}"
  pipeline_display_name = "${local.prefix}-${each.key}"
  pipeline_description  = each.value.description
  role_arn              = local.execution_role_arn
  pipeline_definition   = each.value.definition

  depends_on = [aws_s3_object.code]
}
