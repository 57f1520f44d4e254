"""rolesanywhere-emulator: an offline IAM Roles Anywhere CreateSession endpoint.

It authenticates requests the way the service does (SigV4-X509 signature, X-Amz-Date window,
certificate chain to a trust anchor CA, validity periods), checks the profile, role and trust
policy, and gets the credentials from a real STS endpoint (a moto server in tests and the demo)
with AssumeRole. Configuration: one YAML file, see config.py. Entry point: cli.py.
"""
