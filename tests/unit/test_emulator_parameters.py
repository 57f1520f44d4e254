"""CreateSession parameters as the emulator reads them: body or query, validated in the service's words."""

from __future__ import annotations

import json

import pytest
from rolesanywhere_sidecar.emulator.authentication import IncomingRequest
from rolesanywhere_sidecar.emulator.errors import ApiError
from rolesanywhere_sidecar.emulator.parameters import session_parameters

ARNS = {
    "profileArn": "arn:aws:rolesanywhere:us-east-1:123456789012:profile/p",
    "roleArn": "arn:aws:iam::123456789012:role/r",
    "trustAnchorArn": "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/t",
}


def request(body: object = None, query: str = "") -> IncomingRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode() if body is not None else b""
    return IncomingRequest("POST", "/sessions", query, [], raw)


def test_body_parameters_with_the_default_duration():
    assert session_parameters(request(ARNS)) == {**ARNS, "durationSeconds": 3600}


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
    ],
    ids=["not-json", "not-an-object", "no-arns", "duration-string", "short-session-name"],
)
def test_invalid_parameters_are_validation_errors(body, message):
    with pytest.raises(ApiError) as caught:
        session_parameters(request(body))
    assert (caught.value.status, caught.value.code) == (400, "ValidationException")
    assert message in caught.value.message
