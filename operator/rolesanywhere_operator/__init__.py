"""Kubernetes operator and admission webhook for AWS IAM Roles Anywhere."""
