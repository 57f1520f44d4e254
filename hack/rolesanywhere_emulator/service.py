"""CreateSession, as the service answers it: authenticate, resolve the trust anchor, profile and role,
check trust and durations, then mint credentials with STS AssumeRole.

Every answer (accepted or not) is recorded in a SessionLog, which the debug endpoint
/_emulator/sessions serves, so tests can see which certificate a client used.
"""

from __future__ import annotations

import binascii
import datetime as dt
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography import x509
from rolesanywhere_protocol.arns import parse_arn
from rolesanywhere_protocol.credentials import format_expiration
from rolesanywhere_protocol.ratelimit import TokenBucket
from rolesanywhere_protocol.signing import HEADER_X509, decode_certificates

from .authentication import IncomingRequest, authenticate
from .aws import AwsCallError, AwsClient
from .config import EmulatorConfig, Profile, TrustAnchor
from .debuglog import Fault, SessionLog, SessionRecord
from .errors import (
    UNTRUSTED_CERTIFICATE,
    ApiError,
    access_denied,
    internal,
    not_found,
    throttled,
    validation,
)
from .parameters import session_parameters
from .policy import PolicyDenied, certificate_context, check_trust_policy
from .tags import principal_tags, source_identity
from .trust import UntrustedCertificate, verify_path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict
    headers: dict[str, str] = field(default_factory=dict)


class CreateSessionService:
    def __init__(
        self,
        config: EmulatorConfig,
        aws: AwsClient,
        clock: Callable[[], dt.datetime],
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self.config = config
        self.aws = aws
        self.clock = clock
        self.sessions = SessionLog()
        self._faults: deque[Fault] = deque()
        self._faults_lock = threading.Lock()
        self._quota = (
            TokenBucket(config.create_session_rate, config.create_session_burst or 1, monotonic)
            if config.create_session_rate
            else None
        )
        self._quota_lock = threading.Lock()

    def inject_fault(self, fault: Fault) -> None:
        with self._faults_lock:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        with self._faults_lock:
            self._faults.clear()

    def handle(self, request: IncomingRequest) -> Answer:
        now = self.clock()
        record = SessionRecord(time=format_expiration(now), status=0)
        try:
            answer = self._create_session(request, now, record)
        except ApiError as error:
            record.status, record.code, record.reason = error.status, error.code, error.reason
            answer = Answer(error.status, {"message": error.message}, {"x-amzn-ErrorType": error.code})
        else:
            record.status = answer.status
        self.sessions.add(record)
        log.info(
            "CreateSession %s %s serial=%s subject=%r role=%s%s",
            record.status,
            record.code or "OK",
            record.serial or "-",
            record.subject,
            record.role_arn or "-",
            f" reason: {record.reason}" if record.reason else "",
        )
        return answer

    def _next_fault(self) -> Fault | None:
        with self._faults_lock:
            if not self._faults:
                return None
            fault = self._faults[0]
            fault.count -= 1
            if fault.count <= 0:
                self._faults.popleft()
            return fault

    def _create_session(self, request: IncomingRequest, now: dt.datetime, record: SessionRecord) -> Answer:
        _note_certificate(record, request)  # before anything else, so every answer shows the certificate
        fault = self._next_fault()
        if fault:
            raise ApiError(fault.status, fault.code, fault.message, "injected fault")
        if self._quota is not None:
            with self._quota_lock:
                allowed = self._quota.acquire()
            if not allowed:
                raise throttled(reason=f"over the quota of {self.config.create_session_rate:g} CreateSession a second")
        authenticated = authenticate(request, region=self.config.region, now=now)
        certificate = authenticated.certificate

        params = session_parameters(request)
        record.trust_anchor_arn = params["trustAnchorArn"]
        record.profile_arn = params["profileArn"]
        record.role_arn = params["roleArn"]
        requested = params.get("durationSeconds")
        record.duration_seconds = requested

        anchor = self._trust_anchor(params["trustAnchorArn"])
        try:
            # A revoked certificate gets the same answer as any untrusted one: the guide does not
            # say what the service answers for it.
            verify_path(certificate, authenticated.intermediates, anchor.certificates, now, anchor.crls)
            identity = source_identity(certificate)
        except (UntrustedCertificate, ValueError) as error:
            raise access_denied(UNTRUSTED_CERTIFICATE, str(error)) from None
        profile = self._profile(params["profileArn"])
        role_arn = params["roleArn"]
        if role_arn not in profile.role_arns:
            raise access_denied(
                f"Unable to assume role for {role_arn}", f"the role is not in profile {profile.arn}"
            )
        session_name = params.get("roleSessionName")
        if session_name is not None and not profile.accept_role_session_name:
            # User Guide (CreateSession, roleSessionName): unless the profile accepts role session
            # names, "you will receive an Access Denied error".
            raise access_denied(
                "Access denied: the profile does not accept a role session name",
                f"profile {profile.arn} has acceptRoleSessionName false",
            )
        # User Guide (Expiration): finalDurationSeconds is the profile's durationSeconds, or
        # min(profile, request) when the request has one.
        duration = profile.duration_seconds if requested is None else min(requested, profile.duration_seconds)
        role = self._role(role_arn, now)
        context = certificate_context(
            source_arn=str(anchor.arn),
            source_account=self.config.account_id,
            source_identity=identity,
            principal_tags=principal_tags(certificate),
        )
        try:
            check_trust_policy(role.trust_policy, context)
        except PolicyDenied as error:
            raise access_denied(f"Unable to assume role for {role_arn}", str(error)) from None
        if duration > role.max_session_duration:
            raise validation(
                "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
                f"{duration} s requested (after the profile's cap), the role allows {role.max_session_duration} s",
            )
        lifetime = self.config.credential_lifetime_seconds or duration
        session_name = session_name or f"{certificate.serial_number:x}"[:64]
        try:
            assumed = self.aws.assume_role(
                role_arn,
                session_name,
                lifetime,
                now,
                policy=profile.session_policy,
                policy_arns=profile.managed_policy_arns,
            )
        except AwsCallError as error:
            if error.status in (400, 403):
                raise access_denied(
                    f"Unable to assume role for {role_arn}", f"STS AssumeRole: {error}"
                ) from None
            raise internal("Internal failure", f"STS AssumeRole: {error}") from None
        record.duration_seconds = lifetime
        record.access_key_id = assumed.access_key_id
        record.expiration = format_expiration(assumed.expiration)
        return Answer(201, _response(self.config, assumed, role_arn, certificate, identity))

    def _trust_anchor(self, arn: str) -> TrustAnchor:
        anchor = self.config.trust_anchors.get(arn)
        if anchor is None:
            raise not_found(
                f"Trust anchor {arn} not found", "no trust anchor with this ARN in the configuration"
            )
        if not anchor.enabled:
            raise access_denied(UNTRUSTED_CERTIFICATE, f"trust anchor {arn} is disabled")
        return anchor

    def _profile(self, arn: str) -> Profile:
        profile = self.config.profiles.get(arn)
        if profile is None:
            raise not_found(f"Profile {arn} not found", "no profile with this ARN in the configuration")
        if not profile.enabled:
            raise access_denied(f"Profile {arn} is disabled")
        return profile

    def _role(self, role_arn: str, now: dt.datetime):
        role_name = parse_arn(role_arn).resource.rsplit("/", 1)[-1]
        try:
            return self.aws.get_role(role_name, now)
        except AwsCallError as error:
            if error.code == "NoSuchEntity":
                raise access_denied(
                    f"Unable to assume role for {role_arn}", "the role does not exist"
                ) from None
            raise internal("Internal failure", f"IAM GetRole: {error}") from None


def _note_certificate(record: SessionRecord, request: IncomingRequest) -> None:
    try:
        (certificate,) = decode_certificates(request.header(HEADER_X509) or "")
    except (ValueError, binascii.Error):
        return
    record.serial = str(certificate.serial_number)
    record.serial_hex = f"{certificate.serial_number:x}"
    record.subject = certificate.subject.rfc4514_string()
    record.issuer = certificate.issuer.rfc4514_string()


def _response(
    config: EmulatorConfig, assumed, role_arn: str, certificate: x509.Certificate, identity: str
) -> dict:
    subject = f"{certificate.issuer.rfc4514_string()}|{certificate.subject.rfc4514_string()}"
    subject_id = uuid.uuid5(uuid.NAMESPACE_URL, subject)
    return {
        "credentialSet": [
            {
                "assumedRoleUser": {
                    "arn": assumed.assumed_role_arn,
                    "assumedRoleId": assumed.assumed_role_id,
                },
                "credentials": {
                    "accessKeyId": assumed.access_key_id,
                    "secretAccessKey": assumed.secret_access_key,
                    "sessionToken": assumed.session_token,
                    "expiration": format_expiration(assumed.expiration),
                },
                "packedPolicySize": assumed.packed_policy_size,
                "roleArn": role_arn,
                "sourceIdentity": identity,
            }
        ],
        "subjectArn": f"arn:{config.partition}:rolesanywhere:{config.region}:{config.account_id}:subject/{subject_id}",
    }
