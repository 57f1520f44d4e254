"""The CreateSession call: sign with the workload's certificate, send, retry what is worth retrying.

Local problems (expired certificate, bad ARNs, out-of-range duration) are raised before any network
call. Throttling (429), server errors (5xx) and connection failures are retried with exponential
backoff and full jitter; other 4xx answers (access denied, validation) are not, since sending the
same request again cannot change them.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import re
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Self, TypedDict

import httpx

from .arns import check_same_region, endpoint_for, parse_profile_arn, parse_role_arn, parse_trust_anchor_arn
from .clock import utc_now
from .credentials import Credentials, credentials_from_response
from .errors import ConfigError, RoleSessionNameRefused, ServiceError
from .identity import X509Identity, check_validity
from .limits import (
    ROLE_SESSION_NAME_MAX,
    ROLE_SESSION_NAME_MIN,
    ROLE_SESSION_NAME_PATTERN,
    SESSION_DURATION_DEFAULT,
    SESSION_DURATION_MAX,
    SESSION_DURATION_MIN,
)
from .signing import HEADER_CONTENT_TYPE, sign_request

log = logging.getLogger(__name__)

#: Content type of the request body (the one iam-rolesanywhere-session sends).
CONTENT_TYPE = "application/x-amz-json-1.0"
USER_AGENT = "rolesanywhere-operator"

#: Connect within 5 s, and get each read within 10 s.
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
#: Attempts per create_session call (the first one included).
DEFAULT_MAX_ATTEMPTS = 4
#: Within one create_session call, the wait before retry n (n = 1, 2, ...) is uniform in
#: [0, min(RETRY_CAP, RETRY_BASE * 2**(n-1))] seconds. (The sidecar's refresher backs off between calls
#: on its own schedule: refresher.BACKOFF_*.)
RETRY_BASE_SECONDS = 0.5
RETRY_CAP_SECONDS = 10.0

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


class _CertificateFields(TypedDict):
    """What a ServiceError says about the certificate the refused request was signed with."""

    certificate_serial: int
    certificate_subject: str


@dataclass(frozen=True)
class SessionRequest:
    """What to ask CreateSession for."""

    trust_anchor_arn: str
    profile_arn: str
    role_arn: str
    duration_seconds: int = SESSION_DURATION_DEFAULT
    role_session_name: str | None = None

    def region(self) -> str:
        """Validate the request and return its region (the trust anchor's); ConfigError when invalid."""
        trust_anchor = parse_trust_anchor_arn(self.trust_anchor_arn)
        profile = parse_profile_arn(self.profile_arn)
        parse_role_arn(self.role_arn)
        if not isinstance(self.duration_seconds, int) or not (
            SESSION_DURATION_MIN <= self.duration_seconds <= SESSION_DURATION_MAX
        ):
            raise ConfigError(
                f"session duration {self.duration_seconds!r} is out of range: expected whole seconds from "
                f"{SESSION_DURATION_MIN} to {SESSION_DURATION_MAX}"
            )
        if self.role_session_name is not None and not re.fullmatch(ROLE_SESSION_NAME_PATTERN, self.role_session_name):
            raise ConfigError(
                f"role session name {self.role_session_name!r} is not one STS takes: expected "
                f"{ROLE_SESSION_NAME_MIN} to {ROLE_SESSION_NAME_MAX} of the characters A-Z a-z 0-9 + = , . @ _ -"
            )
        return check_same_region(trust_anchor, profile)

    def body(self) -> bytes:
        document: dict[str, object] = {
            "durationSeconds": self.duration_seconds,
            "profileArn": self.profile_arn,
            "roleArn": self.role_arn,
            "trustAnchorArn": self.trust_anchor_arn,
        }
        if self.role_session_name is not None:
            document["roleSessionName"] = self.role_session_name
        return json.dumps(document).encode("utf-8")


class CreateSessionClient:
    """Calls CreateSession. One instance may be used for many calls; close() it (or use `with`) when done.

    endpoint: base URL to call (e.g. http://127.0.0.1:8443 for the emulator); default: the Roles
      Anywhere endpoint of the region. region: signing region; default: the trust anchor ARN's region.
    fips: use the FIPS endpoint (ignored with an explicit endpoint). ca_bundle (a PEM file) or ca_pem (its
      text): CAs to trust instead of the system's. verify=False skips TLS verification (testing only).
    use_proxy_env: honour HTTPS_PROXY/HTTP_PROXY/NO_PROXY (off by default, as the official helper's --with-proxy).
    proxy: a proxy URL to use for the endpoint, whatever the environment says.
    rng, sleep: randomness and waiting for the backoff, passed in so tests are deterministic.
    """

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        region: str | None = None,
        fips: bool = False,
        ca_bundle: Path | None = None,
        ca_pem: str | None = None,
        verify: bool = True,
        use_proxy_env: bool = False,
        proxy: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        rng: random.Random | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if max_attempts < 1:
            raise ConfigError(f"max_attempts must be at least 1, got {max_attempts}")
        self.endpoint = endpoint.rstrip("/") if endpoint else None
        self.region = region
        self.fips = fips
        self.max_attempts = max_attempts
        self.rng = rng or random.Random()
        self.sleep = sleep
        self._http = httpx.Client(
            verify=tls_verification(ca_bundle, ca_pem, verify),
            trust_env=use_proxy_env,
            proxy=proxy,
            timeout=timeout,
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def url_for(self, request: SessionRequest) -> str:
        region = self.region or request.region()
        base = self.endpoint or endpoint_for(region, fips=self.fips)
        return base if base.endswith("/sessions") else f"{base}/sessions"

    def create_session(
        self,
        identity: X509Identity,
        request: SessionRequest,
        *,
        now: Callable[[], dt.datetime] = utc_now,
    ) -> Credentials:
        """Credentials for `request.role_arn`; LocalCredentialError/ConfigError before sending, ServiceError after."""
        region = request.region()
        signing_region = self.region or region
        check_validity(identity, now())
        url = self.url_for(request)
        body = request.body()
        for attempt in range(1, self.max_attempts + 1):
            try:
                return self._attempt(identity, request, url, body, signing_region, now())
            except ServiceError as error:
                if not error.retryable or attempt == self.max_attempts:
                    error.attempts = attempt
                    raise
                delay = self._backoff(attempt, error)
                log.warning(
                    "CreateSession attempt %d of %d failed: %s; retrying in %.2fs",
                    attempt,
                    self.max_attempts,
                    error,
                    delay,
                )
                self.sleep(delay)
        raise AssertionError("unreachable")  # the loop returns or raises

    def explain_refusal(
        self,
        identity: X509Identity,
        request: SessionRequest,
        refused: ServiceError,
        *,
        now: Callable[[], dt.datetime] = utc_now,
    ) -> ServiceError:
        """`refused`, or RoleSessionNameRefused when the request's session name is why it was refused.

        The service answers a name the profile does not accept with a plain Access Denied, like an
        untrusted certificate or a trust policy that does not match. The only sure way to tell is to ask
        once more without the name; the credentials that call returns are dropped.
        """
        if request.role_session_name is None or refused.retryable or refused.status != 403:
            return refused
        try:
            self.create_session(identity, replace(request, role_session_name=None), now=now)
        except ServiceError:
            return refused
        return RoleSessionNameRefused(
            refused, session_name=request.role_session_name, profile_arn=request.profile_arn
        )

    def _attempt(
        self,
        identity: X509Identity,
        request: SessionRequest,
        url: str,
        body: bytes,
        region: str,
        now: dt.datetime,
    ) -> Credentials:
        signed = sign_request(
            identity,
            url=url,
            body=body,
            now=now,
            region=region,
            headers={HEADER_CONTENT_TYPE: CONTENT_TYPE},
        )
        headers = {**signed.headers, "User-Agent": USER_AGENT}
        certificate = _CertificateFields(certificate_serial=identity.serial_number, certificate_subject=identity.subject)
        try:
            response = self._http.post(url, content=body, headers=headers)
        except httpx.TransportError as error:
            # A certificate the CA bundle does not trust will not become trusted by retrying.
            untrusted = "CERTIFICATE_VERIFY_FAILED" in str(error)
            raise ServiceError(
                0,
                type(error).__name__,
                str(error) or "connection failed",
                retryable=not untrusted,
                endpoint=url,
                **certificate,
            ) from None
        if response.status_code in (200, 201):
            try:
                document = response.json()
            except ValueError:
                document = None
            try:
                return credentials_from_response(
                    document, role_arn=request.role_arn, status=response.status_code
                )
            except ServiceError as error:
                raise ServiceError(
                    error.status, error.code, error.message, retryable=True, endpoint=url, **certificate
                ) from None
        code, message = _error_of(response)
        retryable = response.status_code in RETRYABLE_STATUS or response.status_code >= 500
        raise ServiceError(
            response.status_code,
            code,
            message,
            retryable=retryable,
            endpoint=url,
            retry_after=_retry_after(response),
            **certificate,
        )

    def _backoff(self, attempt: int, error: ServiceError) -> float:
        ceiling = min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2 ** (attempt - 1))
        delay = self.rng.uniform(0, ceiling)
        if error.retry_after is not None:
            delay = max(delay, min(error.retry_after, RETRY_CAP_SECONDS))
        return delay


def tls_verification(ca_bundle: Path | None, ca_pem: str | None, verify: bool) -> ssl.SSLContext | bool:
    """What httpx verifies TLS with: the system CAs, a bundle (file or PEM text), or nothing (testing only)."""
    if not verify:
        return False
    if ca_bundle is None and ca_pem is None:
        return True
    try:
        return ssl.create_default_context(cafile=str(ca_bundle) if ca_bundle else None, cadata=ca_pem)
    except (OSError, ssl.SSLError) as error:
        where = ca_bundle or "given as PEM text"
        raise ConfigError(
            f"cannot use CA bundle {where}: {error}; expected a readable PEM file of CA certificates"
        ) from None


def _error_of(response: httpx.Response) -> tuple[str, str]:
    """The service's error type and message: x-amzn-ErrorType or __type, and the body's message."""
    try:
        document = response.json()
    except ValueError:
        document = None
    code = response.headers.get("x-amzn-ErrorType", "").split(":", 1)[0]
    message = ""
    if isinstance(document, dict):
        code = code or str(document.get("__type") or document.get("code") or "").split("#")[-1]
        message = str(document.get("message") or document.get("Message") or "")
    if not message:
        message = response.text.strip()[:500] or response.reason_phrase or "(empty response)"
    return code or f"HTTP{response.status_code}", message


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        return None
