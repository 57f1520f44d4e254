"""CreateSession's parameters: the JSON body, with the ARNs also accepted as query parameters, validated
with the service's ValidationException wording."""

from __future__ import annotations

import json
import re

from rolesanywhere_protocol.limits import (
    ROLE_SESSION_NAME_MAX,
    ROLE_SESSION_NAME_MIN,
    ROLE_SESSION_NAME_PATTERN,
    SESSION_DURATION_MAX,
    SESSION_DURATION_MIN,
)
from rolesanywhere_protocol.signing import query_pairs

from .authentication import IncomingRequest
from .errors import validation

#: How the service's validation message writes STS's RoleSessionName characters (what it checks is
#: rolesanywhere_protocol.limits.ROLE_SESSION_NAME_PATTERN).
ROLE_SESSION_NAME_MESSAGE_PATTERN = r"[\w+=,.@-]*"
ARN_PARAMETERS = ("profileArn", "roleArn", "trustAnchorArn")


def session_parameters(request: IncomingRequest) -> dict:
    """The request's parameters: the JSON body, with the ARNs also accepted as query parameters.

    durationSeconds stays absent when the request has none: the profile's duration then applies.
    """
    if request.body.strip():
        try:
            document = json.loads(request.body)
        except ValueError:
            raise validation("Could not parse request body into json") from None
        if not isinstance(document, dict):
            raise validation("Could not parse request body into json", "the body is not a JSON object")
    else:
        document = {}
    for name, value in query_pairs(request.query):
        if name in ARN_PARAMETERS:
            document.setdefault(name, value)
    problems = [
        f"Value null at '{name}' failed to satisfy constraint: Member must not be null"
        for name in ARN_PARAMETERS
        if not isinstance(document.get(name), str) or not document.get(name)
    ]
    duration = document.get("durationSeconds")
    if duration is None:
        pass
    elif not isinstance(duration, int) or isinstance(duration, bool):
        problems.append(
            f"Value '{duration}' at 'durationSeconds' failed to satisfy constraint: Member must be a number"
        )
    elif duration < SESSION_DURATION_MIN:
        problems.append(
            f"Value '{duration}' at 'durationSeconds' failed to satisfy constraint: "
            f"Member must have value greater than or equal to {SESSION_DURATION_MIN}"
        )
    elif duration > SESSION_DURATION_MAX:
        problems.append(
            f"Value '{duration}' at 'durationSeconds' failed to satisfy constraint: "
            f"Member must have value less than or equal to {SESSION_DURATION_MAX}"
        )
    name = document.get("roleSessionName")
    shortest, longest = ROLE_SESSION_NAME_MIN, ROLE_SESSION_NAME_MAX
    if name is not None and (not isinstance(name, str) or not shortest <= len(name) <= longest):
        problems.append(
            f"Value '{name}' at 'roleSessionName' failed to satisfy constraint: "
            f"Member must have length between {shortest} and {longest}"
        )
    elif name is not None and not re.fullmatch(ROLE_SESSION_NAME_PATTERN, name):
        problems.append(
            f"Value '{name}' at 'roleSessionName' failed to satisfy constraint: "
            f"Member must satisfy regular expression pattern: {ROLE_SESSION_NAME_MESSAGE_PATTERN}"
        )
    if problems:
        count = len(problems)
        raise validation(
            f"{count} validation error{'s' if count > 1 else ''} detected: " + "; ".join(problems)
        )
    return document
