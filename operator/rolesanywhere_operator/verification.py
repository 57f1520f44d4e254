"""Whether AWS accepts a binding: one real CreateSession with the binding's certificate, made with the
protocol client the sidecars use, so a cluster admin sees "untrusted certificate", "role not in
profile" or "session name not accepted" before any app team deploys.

When a call is made (`due`): for every certificate serial (each issuance or renewal) and every spec
generation, once; then again once per interval, since a profile or trust policy may change on the AWS
side without anything changing here. A call that could not reach the service is tried again sooner.
Across all bindings at most `rate` calls a second are made (a token bucket); a binding whose call is
not allowed yet keeps its previous record until the next refresh.

The outcome is kept in the binding's status.verification (so a restarted or newly leading replica
knows what was checked) and shown as the CredentialsVerified condition (status.py).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rolesanywhere_protocol import (
    ConfigError,
    CreateSessionClient,
    LocalCredentialError,
    RolesAnywhereError,
    RoleSessionNameRefused,
    ServiceError,
    SessionRequest,
)
from rolesanywhere_protocol.clock import Clock, utc_now
from rolesanywhere_protocol.identity import identity_from_pem
from rolesanywhere_protocol.ratelimit import TokenBucket

from . import constants as c
from .reasons import Reason
from .spec import Binding

#: A call that could not reach the service is made again after this long (or the interval, if shorter).
UNREACHABLE_RETRY_SECONDS = 300.0
#: The session name sent for bindings whose sidecars send their pod's name: any name tests the profile.
CHECK_SESSION_NAME = f"{c.OPERATOR_NAME}-check"


@dataclass(frozen=True)
class Verification:
    """One verification call's outcome, as kept in status.verification."""

    serial_number: str  # of the certificate presented, lowercase hex as in status.certificate
    generation: int  # of the binding when the call was made
    time: dt.datetime
    accepted: bool
    reason: str
    message: str

    def to_status(self) -> dict[str, Any]:
        return {
            "serialNumber": self.serial_number,
            "generation": self.generation,
            "time": self.time.astimezone(dt.UTC).strftime(c.TIME_FORMAT),
            "accepted": self.accepted,
            "reason": self.reason,
            "message": self.message,
        }

    @classmethod
    def from_status(cls, recorded: Any) -> Verification | None:
        """The record a status holds, or None when there is none (or it is not one this code wrote)."""
        if not isinstance(recorded, Mapping):
            return None
        try:
            moment = dt.datetime.fromisoformat(str(recorded["time"]))
            return cls(
                serial_number=str(recorded["serialNumber"]),
                generation=int(recorded["generation"]),
                time=moment,
                accepted=bool(recorded["accepted"]),
                reason=str(recorded["reason"]),
                message=str(recorded.get("message", "")),
            )
        except (KeyError, TypeError, ValueError):
            return None


def due(
    recorded: Verification | None, serial_number: str, generation: int, now: dt.datetime, interval: float
) -> bool:
    """Whether a call should be made now for a binding presenting `serial_number` at `generation`."""
    if recorded is None or (recorded.serial_number, recorded.generation) != (serial_number, generation):
        return True
    age = (now - recorded.time).total_seconds()
    if recorded.reason == Reason.ENDPOINT_UNREACHABLE:
        return age >= min(interval, UNREACHABLE_RETRY_SECONDS)
    return age >= interval


def session_request(binding: Binding) -> SessionRequest:
    """The CreateSession the binding's sidecars make, with a session name exactly when theirs have one."""
    name = binding.role_session_name
    if name is None:
        session_name = None
    elif name.source == c.SESSION_NAME_FIXED:
        session_name = name.name
    else:
        session_name = CHECK_SESSION_NAME
    return SessionRequest(
        trust_anchor_arn=binding.trust_anchor_arn,
        profile_arn=binding.profile_arn,
        role_arn=binding.role_arn,
        duration_seconds=binding.session_duration,
        role_session_name=session_name,
    )


def outcome(
    error: RolesAnywhereError | None, serial_number: str, generation: int, now: dt.datetime, role_arn: str
) -> Verification:
    """The record of a call that raised `error` (None: it returned credentials)."""

    def record(accepted: bool, reason: str, message: str) -> Verification:
        return Verification(serial_number, generation, now, accepted, reason, message)

    if error is None:
        return record(True, Reason.ACCEPTED, f"CreateSession with certificate serial {serial_number} returned credentials "
                                      f"for {role_arn}")
    if isinstance(error, RoleSessionNameRefused):
        return record(False, Reason.SESSION_NAME_NOT_ACCEPTED, str(error))
    if isinstance(error, ServiceError) and not error.retryable:
        return record(False, Reason.CREATE_SESSION_REFUSED, str(error))
    if isinstance(error, LocalCredentialError | ConfigError):
        return record(False, Reason.CERTIFICATE_UNUSABLE, str(error))
    return record(False, Reason.ENDPOINT_UNREACHABLE, str(error))


@dataclass(frozen=True)
class Endpoint:
    """Where and how the binding's sidecars reach CreateSession."""

    url: str | None  # None: the trust anchor region's endpoint
    ca_pem: str | None = None
    https_proxy: str | None = None


@dataclass
class Verifier:
    """Makes the verification calls; `interval` and `limiter` decide when (see the module docstring)."""

    interval: float
    limiter: TokenBucket
    now: Clock = utc_now

    async def verify(
        self, binding: Binding, secret_data: Mapping[str, bytes], endpoint: Endpoint, serial_number: str,
        generation: int,
    ) -> Verification:
        error = await asyncio.to_thread(self._call, binding, secret_data, endpoint)
        return outcome(error, serial_number, generation, self.now(), binding.role_arn)

    def _call(
        self, binding: Binding, secret_data: Mapping[str, bytes], endpoint: Endpoint
    ) -> RolesAnywhereError | None:
        where = f"Secret {binding.namespace}/{binding.secret_name} key"
        certificate = binding.certificate
        intermediates_key = getattr(certificate, "intermediates_key", None)
        passphrase_key = getattr(certificate, "passphrase_key", None)
        request = session_request(binding)
        missing = [k for k in (c.TLS_CERT_KEY, c.TLS_KEY_KEY, intermediates_key, passphrase_key)
                   if k and k not in secret_data]
        if missing:
            return LocalCredentialError(f"Secret {binding.namespace}/{binding.secret_name} lacks {', '.join(missing)}")
        try:
            identity = identity_from_pem(
                secret_data[c.TLS_CERT_KEY],
                secret_data[c.TLS_KEY_KEY],
                sources=(f"{where} {c.TLS_CERT_KEY}", f"{where} {c.TLS_KEY_KEY}"),
                intermediates=secret_data[intermediates_key] if intermediates_key else None,
                passphrase=secret_data[passphrase_key].rstrip(b"\r\n") if passphrase_key else None,
            )
            with CreateSessionClient(
                endpoint.url, ca_pem=endpoint.ca_pem, proxy=endpoint.https_proxy, max_attempts=1
            ) as client:
                try:
                    client.create_session(identity, request, now=self.now)
                except ServiceError as refused:
                    return client.explain_refusal(identity, request, refused, now=self.now)
        except RolesAnywhereError as error:
            return error
        except OSError as error:  # the TLS or proxy setup itself
            return ConfigError(f"cannot reach the endpoint: {error}")
        return None
