"""The errors the protocol raises, split by who has to act on them."""

from __future__ import annotations


class RolesAnywhereError(Exception):
    """Base of every error this package raises."""


class ConfigError(RolesAnywhereError):
    """A setting is malformed or inconsistent (an ARN, a region, an endpoint); fix the configuration."""


class LocalCredentialError(RolesAnywhereError):
    """The certificate or key on disk cannot be used (missing, unreadable, malformed, expired, mismatched).

    Raised before any network call; the message names the file.
    """

    def __init__(self, message: str, path: object = None):
        super().__init__(message)
        self.path = path


class ServiceError(RolesAnywhereError):
    """CreateSession failed: the service answered with an error, or could not be reached.

    `status` is the HTTP status (0 when no response came back), `code` the service's error type
    (e.g. AccessDeniedException), `message` the service's own message. `retryable` says whether
    trying again later may succeed (throttling, server errors, connection failures).
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        retryable: bool,
        certificate_serial: int | None = None,
        certificate_subject: str | None = None,
        endpoint: str | None = None,
        retry_after: float | None = None,
    ):
        self.status = status
        self.code = code
        self.message = message
        self.retryable = retryable
        self.certificate_serial = certificate_serial
        self.certificate_subject = certificate_subject
        self.endpoint = endpoint
        self.retry_after = retry_after  # seconds the service asked us to wait (Retry-After), if any
        self.attempts = 1  # how many requests were made before giving up
        super().__init__(self._describe())

    def __str__(self) -> str:
        return self._describe()

    def _describe(self) -> str:
        where = f" from {self.endpoint}" if self.endpoint else ""
        status = f"HTTP {self.status} " if self.status else ""
        text = f"CreateSession failed{where}: {status}{self.code}: {self.message}"
        if self.certificate_serial is not None:
            text += f" (certificate serial {self.certificate_serial} = 0x{self.certificate_serial:x}"
            text += f", subject {self.certificate_subject})" if self.certificate_subject else ")"
        if self.attempts > 1:
            text += f"; gave up after {self.attempts} attempts"
        return text


class RoleSessionNameRefused(ServiceError):
    """CreateSession refused a request that named its session, and accepts the same request without a name:
    the profile does not accept role session names (acceptRoleSessionName is false, its default)."""

    def __init__(self, refused: ServiceError, *, session_name: str, profile_arn: str):
        self.session_name = session_name
        self.profile_arn = profile_arn
        super().__init__(
            refused.status,
            refused.code,
            refused.message,
            retryable=False,
            certificate_serial=refused.certificate_serial,
            certificate_subject=refused.certificate_subject,
            endpoint=refused.endpoint,
        )
        self.attempts = refused.attempts

    def _describe(self) -> str:
        profile_id = self.profile_arn.rsplit("/", 1)[-1]
        return (
            f"{super()._describe()}. The role session name {self.session_name!r} is why: profile "
            f"{self.profile_arn} does not accept role session names (acceptRoleSessionName is false, AWS's "
            "default), and the same request without a name is accepted. Fix: stop asking for a name (remove "
            "spec.roleSessionName from the binding, or --role-session-name), or let the profile accept names: "
            f"aws rolesanywhere update-profile --profile-id {profile_id} --accept-role-session-name"
        )
