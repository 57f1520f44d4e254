"""One CreateSession from the settings: read the certificate from disk, call, measure, explain failures.

The certificate and key are read again for every call, so a certificate that cert-manager renewed
(the kubelet swaps the mounted Secret's files atomically) is used by the next call without a restart.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rolesanywhere_protocol import (
    ConfigError,
    CreateSessionClient,
    Credentials,
    LocalCredentialError,
    RolesAnywhereError,
    RoleSessionNameRefused,
    ServiceError,
    SessionRequest,
    X509Identity,
    load_identity,
)
from rolesanywhere_protocol.clock import utc_now

from .metrics import Metrics
from .refresher import CertificateFilesMissing, FetchFailed
from .settings import Settings


def session_request(settings: Settings) -> SessionRequest:
    return SessionRequest(
        trust_anchor_arn=_given(settings.trust_anchor_arn, "trust_anchor_arn"),
        profile_arn=_given(settings.profile_arn, "profile_arn"),
        role_arn=_given(settings.role_arn, "role_arn"),
        duration_seconds=settings.session_duration,
        role_session_name=settings.role_session_name,
    )


def _given(value: str | None, name: str) -> str:
    # The settings kernel already refuses a fetching command without it; this keeps the type honest.
    if value is None:
        raise ConfigError(f"{name} is not set: every command that fetches credentials needs it")
    return value


def read_passphrase(path: Path) -> bytes:
    # Secrets mounted from Kubernetes often end with a newline that is not part of the passphrase.
    return path.read_bytes().rstrip(b"\r\n")


class SessionFetcher:
    """Callable returning (credentials, log fields); raises CertificateFilesMissing or FetchFailed."""

    def __init__(
        self,
        settings: Settings,
        *,
        now: Callable[[], dt.datetime] = utc_now,
        rng: random.Random | None = None,
        max_attempts: int = 1,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.monotonic,
        identity: Callable[[], X509Identity] | None = None,
    ) -> None:
        """`identity`: the current identity (per-pod identity's keeper) instead of the certificate files;
        raises CertificateNotIssued until there is one."""
        self.settings = settings
        self.identity = identity
        self.request = session_request(settings)
        self.now = now
        self.metrics = metrics
        self.clock = clock
        self.client = CreateSessionClient(
            settings.endpoint,
            region=settings.region,
            ca_bundle=settings.ca_bundle,
            verify=not settings.no_verify_ssl,
            use_proxy_env=settings.with_proxy,
            max_attempts=max_attempts,
            rng=rng,
        )
        self.url = self.client.url_for(self.request)  # validates the ARNs: ConfigError now, not at each call
        self._refused_session_name: RoleSessionNameRefused | None = None

    def close(self) -> None:
        self.client.close()

    def _files(self) -> list[Path]:
        s = self.settings
        return [
            p for p in (s.certificate, s.private_key, s.intermediates, s.private_key_passphrase_file) if p
        ]

    def __call__(self) -> tuple[Credentials, dict[str, Any]]:
        missing = [] if self.identity else [path for path in self._files() if not path.exists()]
        if missing:
            raise CertificateFilesMissing(missing)
        started = self.clock()
        try:
            credentials, identity = self._create_session()
        except ServiceError as error:
            self._observe("service_error" if error.status else "transport_error", started)
            fields = {"status": error.status, "error_code": error.code, "retryable": error.retryable}
            raise FetchFailed(
                str(error), permanent=not error.retryable, throttled=error.status == 429, fields=fields
            ) from None
        except (LocalCredentialError, ConfigError) as error:
            self._observe("local_error", started)
            raise FetchFailed(str(error), permanent=True) from None
        except (RolesAnywhereError, OSError) as error:
            self._observe("transport_error", started)
            raise FetchFailed(f"{type(error).__name__}: {error}", permanent=False) from None
        self._observe("success", started)
        fields = {
            "certificate_serial": f"{identity.serial_number:x}",
            "certificate_not_after": identity.not_after.isoformat(),
        }
        return credentials, fields

    def _create_session(self) -> tuple[Credentials, X509Identity]:
        identity = self.identity() if self.identity is not None else self._load_identity()
        if self.metrics is not None:
            self.metrics.set_certificate_not_after(identity.not_after)
        try:
            return self.client.create_session(identity, self.request, now=self.now), identity
        except ServiceError as refused:
            raise self._explained(identity, refused) from None

    def _load_identity(self) -> X509Identity:
        s = self.settings
        try:
            passphrase = (
                read_passphrase(s.private_key_passphrase_file) if s.private_key_passphrase_file else None
            )
        except OSError as error:
            raise LocalCredentialError(
                f"cannot read passphrase file {s.private_key_passphrase_file}: {error.strerror or error}",
                s.private_key_passphrase_file,
            ) from None
        return load_identity(s.certificate, s.private_key, intermediates=s.intermediates, passphrase=passphrase)

    def _explained(self, identity: X509Identity, refused: ServiceError) -> ServiceError:
        """The refusal, saying so when the role session name is why. That takes a second call, made once
        per certificate: while the same certificate keeps being refused, the first finding stands."""
        known = self._refused_session_name
        if known is not None and (known.certificate_serial, known.status, known.code) == (
            identity.serial_number, refused.status, refused.code
        ):
            return known
        explained = self.client.explain_refusal(identity, self.request, refused, now=self.now)
        self._refused_session_name = explained if isinstance(explained, RoleSessionNameRefused) else None
        return explained

    def _observe(self, outcome: str, started: float) -> None:
        if self.metrics is not None:
            self.metrics.observe_create_session(outcome, self.clock() - started)
