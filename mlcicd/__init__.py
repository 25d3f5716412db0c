"""mlcicd: CI/CD for machine-learning pipelines on AWS, declared in Terraform."""

__version__ = "0.1.0"
