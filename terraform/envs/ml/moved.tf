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
