"""Credentials sidecar and IAM Roles Anywhere protocol (SigV4-X509 signing, CreateSession)."""
