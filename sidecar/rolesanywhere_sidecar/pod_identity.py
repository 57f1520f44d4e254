"""Per-pod identity in the sidecar: a private key made in memory, its certificate from the operator's
identity endpoint (rolesanywhere_protocol.pod_identity), renewed before it expires.

`IdentityClient.issue` is one exchange: a CSR for a new key, re-signed once if the operator decided
another CertificationRequestInfo (it always decides the subject and SANs), the certificate checked to be
for that key. `IdentityKeeper` holds the current identity for the CreateSession calls and renews it at
about two thirds of its lifetime with jitter, a new key each time; while renewal fails it keeps the
current one and retries with backoff. The key is never written anywhere nor logged.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from rolesanywhere_protocol.client import tls_verification
from rolesanywhere_protocol.csr import certification_request_info, sign_certification_request_info
from rolesanywhere_protocol.errors import ConfigError
from rolesanywhere_protocol.identity import PrivateKey, X509Identity, public_key_der
from rolesanywhere_protocol.pod_identity import (
    CLIENT_TIMEOUT_SECONDS,
    ISSUED_STATUS,
    RESIGN_STATUS,
    ExchangeError,
    parse_issued,
    parse_message,
    parse_resign,
    request_body,
)

from .logs import Redactor, get_logger
from .metrics import Metrics
from .refresher import JITTER_OF_LIFETIME, MIN_REFRESH_SECONDS, CertificateNotIssued, backoff_delay
from .settings import Settings

log = get_logger("identity")

#: Connecting is quick or the endpoint is down; an answer may wait for the issuer to sign.
_TIMEOUT = httpx.Timeout(CLIENT_TIMEOUT_SECONDS, connect=5.0)

_KEY_MAKERS: dict[str, Callable[[], PrivateKey]] = {
    "ecdsa-p256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "ecdsa-p384": lambda: ec.generate_private_key(ec.SECP384R1()),
    "rsa-2048": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
}


def generate_key(algorithm: str) -> PrivateKey:
    """A new private key of one of settings.KEY_ALGORITHMS."""
    return _KEY_MAKERS[algorithm]()


class IdentityError(Exception):
    """An exchange that gave no certificate: `status` is the endpoint's HTTP status (None: no answer)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def uris_of(certificate: x509.Certificate) -> list[str]:
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return names.get_values_for_type(x509.UniformResourceIdentifier)


class IdentityClient:
    """Certificates from the identity endpoint at `url`, authenticated by the token in `token_file`."""

    def __init__(self, url: str, *, token_file: Path, ca_bundle: Path | None, redactor: Redactor | None = None,
                 timeout: float | httpx.Timeout = _TIMEOUT) -> None:
        self.url, self.token_file, self.ca_bundle = url, token_file, ca_bundle
        self._redactor, self._timeout = redactor, timeout

    def issue(self, key: PrivateKey, previous: X509Identity | None = None) -> X509Identity:
        """The certificate for `key`. The first CSR asks for what `previous` had (the operator's decision
        of last time, so a renewal takes one round trip); the operator's own info is signed if it differs."""
        if previous is not None:
            info = certification_request_info(previous.certificate.subject, uris_of(previous.certificate),
                                              key.public_key())
            csr = sign_certification_request_info(info, key)
        else:
            csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(key, _hash_for(key))
        try:
            # The CA bundle is read for every exchange (renewals are hours apart): a rotated one is used.
            verify = tls_verification(self.ca_bundle, None, True)
        except ConfigError as error:
            raise IdentityError(str(error)) from None
        with httpx.Client(verify=verify, timeout=self._timeout, trust_env=False, follow_redirects=False) as http:
            response = self._post(http, csr)
            if response.status_code == RESIGN_STATUS:
                try:
                    csr = sign_certification_request_info(parse_resign(response.content), key)
                except ValueError as error:  # ExchangeError, or an info naming another key
                    raise IdentityError(f"the identity endpoint's CertificationRequestInfo: {error}",
                                        response.status_code) from None
                response = self._post(http, csr)
        if response.status_code != ISSUED_STATUS:
            raise IdentityError(f"the identity endpoint answered {response.status_code}: "
                                f"{parse_message(response.content)}", response.status_code)
        try:
            issued = parse_issued(response.content)
        except ExchangeError as error:
            raise IdentityError(str(error), response.status_code) from None
        if public_key_der(issued.certificate.public_key()) != public_key_der(key.public_key()):
            raise IdentityError("the identity endpoint returned a certificate for another public key")
        return X509Identity(certificate=issued.certificate, private_key=key, chain=issued.chain, source=self.url)

    def _post(self, http: httpx.Client, csr: x509.CertificateSigningRequest) -> httpx.Response:
        try:
            token = self.token_file.read_text().strip()  # the kubelet rotates it: read for every request
        except OSError as error:
            raise IdentityError(f"cannot read the service-account token {self.token_file}: "
                                f"{error.strerror or error}") from None
        if self._redactor is not None:
            self._redactor.add(token)
        try:
            return http.post(self.url, content=request_body(csr),
                             headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        except httpx.HTTPError as error:
            raise IdentityError(f"no answer from the identity endpoint {self.url}: {type(error).__name__}: "
                                f"{error}") from None


def _hash_for(key: PrivateKey) -> hashes.SHA256 | hashes.SHA384:
    return hashes.SHA384() if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size > 256 else hashes.SHA256()


def renew_delay(identity: X509Identity, now: dt.datetime, *, fraction: float, rng: random.Random) -> float:
    """Seconds from `now` until the certificate is renewed: at `fraction` (plus or minus JITTER_OF_LIFETIME)
    of its lifetime, so pods started together do not renew together."""
    not_before, not_after = identity.not_before, identity.not_after
    share = min(max(fraction + rng.uniform(-JITTER_OF_LIFETIME, JITTER_OF_LIFETIME), 0.05), 0.95)
    due = not_before + (not_after - not_before) * share
    return max(MIN_REFRESH_SECONDS, (due - now).total_seconds())


class IdentityKeeper:
    """The current identity, renewed on schedule by `run` (in a thread of its own)."""

    def __init__(self, client: IdentityClient, *, key_algorithm: str, now: Callable[[], dt.datetime],
                 rng: random.Random, renew_fraction: float = 0.67, metrics: Metrics | None = None,
                 make_key: Callable[[str], PrivateKey] = generate_key) -> None:
        self._client, self._algorithm, self._now, self._rng = client, key_algorithm, now, rng
        self._fraction, self._metrics, self._make_key = renew_fraction, metrics, make_key
        self._current: X509Identity | None = None
        self._lock = threading.Lock()
        self.failures = 0

    def current(self) -> X509Identity:
        with self._lock:
            identity = self._current
        if identity is None:
            raise CertificateNotIssued(f"waiting for a certificate from the identity endpoint {self._client.url}")
        return identity

    def attempt(self) -> float:
        """One issuance (or renewal); the seconds until the next. Never raises for a failed exchange."""
        with self._lock:
            previous = self._current
        try:
            identity = self._client.issue(self._make_key(self._algorithm), previous)
        except IdentityError as error:
            return self._failed(error, previous)
        with self._lock:
            self._current = identity
        if self._metrics is not None:
            self._metrics.set_certificate_not_after(identity.not_after)
        recovered_after, self.failures = self.failures, 0
        delay = renew_delay(identity, self._now(), fraction=self._fraction, rng=self._rng)
        extra = {"serial": f"{identity.serial_number:x}", "not_after": identity.not_after.isoformat(),
                 "subject": identity.subject, "uris": ",".join(uris_of(identity.certificate)),
                 "next_renewal_in_seconds": round(delay, 3)}
        if recovered_after:
            extra["failed_attempts_before"] = recovered_after
        log.info("certificate issued", extra=extra)
        return delay

    def _failed(self, error: IdentityError, previous: X509Identity | None) -> float:
        self.failures += 1
        now = self._now()
        remaining = None if previous is None else (previous.not_after - now).total_seconds()
        delay = backoff_delay(self.failures, remaining_seconds=remaining, rng=self._rng)
        extra: dict[str, object] = {"attempt": self.failures, "retry_in_seconds": round(delay, 3),
                                    "status": error.status}
        if previous is None:
            log.error("getting a certificate failed: %s", error, extra=extra)
        elif remaining is not None and remaining > 0:
            extra["using"] = f"the current certificate (serial {previous.serial_number:x}), valid until " \
                             f"{previous.not_after.isoformat()}"
            log.warning("renewing the certificate failed: %s", error, extra=extra)
        else:
            log.error("renewing the certificate failed and it has expired: %s", error, extra=extra)
        return delay

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            stop.wait(self.attempt())

    def start(self, stop: threading.Event) -> threading.Thread:
        thread = threading.Thread(target=self.run, args=(stop,), name="identity-keeper", daemon=True)
        thread.start()
        return thread


def keeper_for(settings: Settings, *, now: Callable[[], dt.datetime], rng: random.Random, metrics: Metrics | None,
               redactor: Redactor | None) -> IdentityKeeper:
    assert settings.identity_url is not None
    client = IdentityClient(settings.identity_url, token_file=settings.identity_token_file,
                            ca_bundle=settings.identity_ca_bundle, redactor=redactor)
    return IdentityKeeper(client, key_algorithm=settings.key_algorithm, now=now, rng=rng,
                          renew_fraction=settings.renew_fraction, metrics=metrics)
