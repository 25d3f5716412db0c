"""Offline preview: Terraform validates and plans with a stand-in for hashicorp/aws.

The stand-in (`provider`) speaks Terraform's plugin protocol v6 and serves the real provider
schema (`mlcicd.awsschema`), so Terraform itself type-checks every argument and reference and
produces a real plan, with no registry, no AWS account and no network. `preview` runs it.
"""
