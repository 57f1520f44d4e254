"""CreateSession parameters as the emulator reads them: body or query, validated in the service's words."""

from __future__ import annotations

import json

import pytest
from rolesanywhere_emulator.authentication import IncomingRequest
from rolesanywhere_emulator.errors import ApiError
from rolesanywhere_emulator.parameters import session_parameters

ARNS = {
    "profileArn": "arn:aws:rolesanywhere:us-east-1:123456789012:profile/p",
    "roleArn": "arn:aws:iam::123456789012:role/r",
    "trustAnchorArn": "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/t",
}


def request(body: object = None, query: str = "") -> IncomingRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode() if body is not None else b""
    return IncomingRequest("POST", "/sessions", query, [], raw)


def test_without_duration_seconds_the_duration_stays_unset():
    """User Guide, CreateSession credentials (Expiration): without durationSeconds in the request,
    finalDurationSeconds = profileDurationSeconds; only a request that has one gets
    min(profileDurationSeconds, createSessionDurationSeconds). So no default may be put in here."""
    assert session_parameters(request(ARNS)) == ARNS


def test_arns_from_the_query_and_duration_from_the_body():
    query = "&".join(f"{k}={v.replace(':', '%3A').replace('/', '%2F')}" for k, v in ARNS.items())
    assert session_parameters(request({"durationSeconds": 900}, query)) == {**ARNS, "durationSeconds": 900}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "Could not parse request body into json"),
        ([1, 2], "Could not parse request body into json"),
        ({}, "3 validation errors detected: Value null at 'profileArn' failed to satisfy constraint"),
        (
            {**ARNS, "durationSeconds": "3600"},
            "Value '3600' at 'durationSeconds' failed to satisfy constraint: Member must be a number",
        ),
        (
            {**ARNS, "roleSessionName": "x"},
            "at 'roleSessionName' failed to satisfy constraint: Member must have length between 2 and 64",
        ),
        (
            {**ARNS, "roleSessionName": "x" * 65},
            "at 'roleSessionName' failed to satisfy constraint: Member must have length between 2 and 64",
        ),
        (
            {**ARNS, "roleSessionName": "ci job 7"},
            (
                "Value 'ci job 7' at 'roleSessionName' failed to satisfy constraint: "
                "Member must satisfy regular expression pattern: [\\w+=,.@-]*"
            ),
        ),
        (
            {**ARNS, "roleSessionName": "jürgen"},
            "Member must satisfy regular expression pattern",
        ),
    ],
    ids=[
        "not-json",
        "not-an-object",
        "no-arns",
        "duration-string",
        "short-session-name",
        "long-session-name",
        "session-name-with-spaces",
        "session-name-not-ascii",
    ],
)
def test_invalid_parameters_are_validation_errors(body, message):
    with pytest.raises(ApiError) as caught:
        session_parameters(request(body))
    assert (caught.value.status, caught.value.code) == (400, "ValidationException")
    assert message in caught.value.message


def test_a_session_name_of_stss_characters_is_accepted():
    """STS AssumeRole's RoleSessionName: [\\w+=,.@-]*, 2 to 64 characters (ASCII letters and digits,
    underscore and +=,.@-)."""
    name = "Ci_job+7=a,b.c@d-e"
    assert session_parameters(request({**ARNS, "roleSessionName": name}))["roleSessionName"] == name
