"""IAM Roles Anywhere client protocol: X.509 identities, SigV4-X509 signing and the CreateSession call.

This package stands alone: it imports nothing from the sidecar, the operator or the emulator, nor
kopf, the Kubernetes client or aiohttp, so each of them (and users' own code) can build on it
(tests/unit/test_layers.py holds it to that).

Its names are loaded on first use, so importing one light module (`limits`, `errors`) does not load the
HTTP and X.509 stack: the sidecar's `check` probe runs every second and imports `limits` through its settings.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

#: Where each public name lives.
_HOMES = {
    "Arn": "arns", "endpoint_for": "arns", "parse_arn": "arns",
    "CreateSessionClient": "client", "SessionRequest": "client",
    "Credentials": "credentials",
    "ConfigError": "errors", "LocalCredentialError": "errors", "RolesAnywhereError": "errors",
    "RoleSessionNameRefused": "errors", "ServiceError": "errors",
    "X509Identity": "identity", "check_validity": "identity", "load_identity": "identity",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)


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
