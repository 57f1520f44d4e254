"""IAM Roles Anywhere client protocol: X.509 identities, SigV4-X509 signing and the CreateSession call.

This package stands alone: it imports nothing from the sidecar, the operator or the emulator, nor
kopf, the Kubernetes client or aiohttp, so each of them (and users' own code) can build on it
(tests/unit/test_layers.py holds it to that).
"""

from .arns import Arn, endpoint_for, parse_arn
from .client import CreateSessionClient, SessionRequest
from .credentials import Credentials
from .errors import (
    ConfigError,
    LocalCredentialError,
    RolesAnywhereError,
    RoleSessionNameRefused,
    ServiceError,
)
from .identity import X509Identity, check_validity, load_identity

__all__ = [
    "Arn",
    "ConfigError",
    "CreateSessionClient",
    "Credentials",
    "LocalCredentialError",
    "RoleSessionNameRefused",
    "RolesAnywhereError",
    "ServiceError",
    "SessionRequest",
    "X509Identity",
    "check_validity",
    "endpoint_for",
    "load_identity",
    "parse_arn",
]
