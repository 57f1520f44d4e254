"""The service's CreateSession quota: over it, 429 ThrottlingException before anything else is checked.

User Guide, quotas: CreateSession is limited per account and region (10 requests a second by default);
the service throttles what goes over it."""

from __future__ import annotations

import datetime as dt

from rolesanywhere_emulator.authentication import IncomingRequest
from rolesanywhere_emulator.config import EmulatorConfig, StsSettings
from rolesanywhere_emulator.service import CreateSessionService

UNSIGNED = IncomingRequest("POST", "/sessions", "", [("Host", "localhost")], b"{}")


def service(clock: list[float]) -> CreateSessionService:
    config = EmulatorConfig(
        account_id="123456789012", region="us-east-1", partition="aws",
        sts=StsSettings("http://127.0.0.1:1", "http://127.0.0.1:1", "us-east-1", "AKIA", "s"),
        create_session_rate=2.0, create_session_burst=2,
    )  # fmt: skip
    return CreateSessionService(config, aws=None, clock=lambda: dt.datetime.now(dt.UTC), monotonic=lambda: clock[0])


def test_requests_over_the_quota_are_throttled_and_the_quota_refills():
    clock = [0.0]
    emulator = service(clock)
    answers = [emulator.handle(UNSIGNED) for _ in range(3)]
    # Within the quota the request is checked (and refused: it is not signed); over it, throttled.
    assert [a.status for a in answers] == [403, 403, 429]
    assert answers[2].headers == {"x-amzn-ErrorType": "ThrottlingException"}
    assert answers[2].body == {"message": "Rate exceeded"}
    clock[0] += 0.5  # one request's worth at 2 a second
    assert [emulator.handle(UNSIGNED).status for _ in range(2)] == [403, 429]
    assert "over the quota of 2 CreateSession a second" in emulator.sessions.snapshot()[-1]["reason"]
