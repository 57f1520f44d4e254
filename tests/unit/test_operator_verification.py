"""When the operator verifies a binding with a real CreateSession, what it asks for, and how an outcome reads."""

from __future__ import annotations

import datetime as dt

import pytest
from rolesanywhere_operator import verification as v
from rolesanywhere_operator.reasons import Reason
from rolesanywhere_operator.spec import parse_binding
from rolesanywhere_protocol import (
    ConfigError,
    LocalCredentialError,
    RoleSessionNameRefused,
    ServiceError,
)

NOW = dt.datetime(2030, 5, 1, 12, 0, 0, tzinfo=dt.UTC)
HOUR = 3600.0
PROFILE = "arn:aws:rolesanywhere:eu-west-1:111122223333:profile/66666666-7777-8888-9999-000000000000"
ROLE = "arn:aws:iam::111122223333:role/s3-reader"


def binding(**spec):
    return parse_binding({
        "metadata": {"name": "s3-reader", "namespace": "shop"},
        "spec": {
            "trustAnchorArn": "arn:aws:rolesanywhere:eu-west-1:111122223333:trust-anchor/"
                              "11111111-2222-3333-4444-555555555555",
            "profileArn": PROFILE, "roleArn": ROLE, "sessionDuration": 900,
            "certificate": {"issuerRef": {"name": "shop-ca"}}, **spec,
        },
    })  # fmt: skip


def record(reason: str = Reason.ACCEPTED, *, age: float = 0, serial: str = "ab", generation: int = 3) -> v.Verification:
    return v.Verification(serial, generation, NOW - dt.timedelta(seconds=age), reason == Reason.ACCEPTED, reason, "m")


@pytest.mark.parametrize(
    "recorded, expected",
    [
        (None, True),  # never verified
        (record(serial="cd"), True),  # a renewal: a new serial
        (record(generation=2), True),  # the spec changed
        (record(age=HOUR - 1), False),  # verified within the interval
        (record(Reason.CREATE_SESSION_REFUSED, age=HOUR - 1), False),  # a refusal is not retried before the interval either
        (record(age=HOUR), True),  # the interval passed: AWS's side may have changed
        (record(Reason.ENDPOINT_UNREACHABLE, age=v.UNREACHABLE_RETRY_SECONDS - 1), False),
        (record(Reason.ENDPOINT_UNREACHABLE, age=v.UNREACHABLE_RETRY_SECONDS), True),  # unreachable is retried sooner
    ],
)
def test_a_call_is_due_once_per_certificate_spec_and_interval(recorded, expected):
    assert v.due(recorded, "ab", 3, NOW, HOUR) is expected


def test_the_record_round_trips_through_the_status():
    kept = record(Reason.CREATE_SESSION_REFUSED, age=5)
    assert v.Verification.from_status(kept.to_status()) == kept
    assert v.Verification.from_status({"serialNumber": "ab"}) is None
    assert v.Verification.from_status(None) is None


def test_the_check_asks_for_a_session_name_exactly_when_the_sidecars_do():
    assert v.session_request(binding()).role_session_name is None
    assert v.session_request(binding(roleSessionName={"source": "Fixed", "name": "batch"})).role_session_name == "batch"
    assert v.session_request(binding(roleSessionName={"source": "PodName"})).role_session_name == v.CHECK_SESSION_NAME
    request = v.session_request(binding())
    assert (request.profile_arn, request.role_arn, request.duration_seconds) == (PROFILE, ROLE, 900)


def refused(status: int, retryable: bool = False) -> ServiceError:
    return ServiceError(status, "AccessDeniedException", "Untrusted Signing Certificate", retryable=retryable)


@pytest.mark.parametrize(
    "error, accepted, reason",
    [
        (None, True, Reason.ACCEPTED),
        (RoleSessionNameRefused(refused(403), session_name="batch", profile_arn=PROFILE), False,
         Reason.SESSION_NAME_NOT_ACCEPTED),
        (refused(403), False, Reason.CREATE_SESSION_REFUSED),
        (refused(400), False, Reason.CREATE_SESSION_REFUSED),
        (refused(429, retryable=True), False, Reason.ENDPOINT_UNREACHABLE),
        (refused(0, retryable=True), False, Reason.ENDPOINT_UNREACHABLE),
        (LocalCredentialError("private key in Secret shop/x key tls.key does not match"), False, Reason.CERTIFICATE_UNUSABLE),
        (ConfigError("cannot use CA bundle"), False, Reason.CERTIFICATE_UNUSABLE),
    ],
)
def test_each_outcome_has_its_reason_and_the_services_own_message(error, accepted, reason):
    outcome = v.outcome(error, "ab", 3, NOW, ROLE)
    assert (outcome.accepted, outcome.reason, outcome.serial_number, outcome.generation) == (accepted, reason, "ab", 3)
    if error is not None:
        assert outcome.message == str(error)
    else:
        assert ROLE in outcome.message and "serial ab" in outcome.message
