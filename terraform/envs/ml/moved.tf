# Upgrading a deployment made from the first release (a327d74), whose dev, staging and prod were
# three roots with the same addresses: the SageMaker pipelines became one for_each. Prod never
# had a training pipeline, so its first block moves nothing.
moved {
  from = module.ml.aws_sagemaker_pipeline.training[0]
  to   = module.ml.aws_sagemaker_pipeline.this["training"]
}

moved {
  from = module.ml.aws_sagemaker_pipeline.inference
  to   = module.ml.aws_sagemaker_pipeline.this["inference"]
}

# The key, code bucket and execution role moved to roles-ENV (modules/ml-baseline), another
# state. An environment applied before that forgets them here instead of destroying them;
# roles-ENV imports them (README.md, "Upgrading").
removed {
  from = module.ml.aws_kms_key.this

  lifecycle {
    destroy = false
  }
}

removed {
  from = module.ml.aws_kms_alias.this

  lifecycle {
    destroy = false
  }
}

removed {
  from = module.ml.module.code_bucket

  lifecycle {
    destroy = false
  }
}

removed {
  from = module.ml.aws_iam_role.sagemaker

  lifecycle {
    destroy = false
  }
}

removed {
  from = module.ml.aws_iam_role_policy.sagemaker

  lifecycle {
    destroy = false
  }
}
