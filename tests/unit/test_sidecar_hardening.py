"""The sidecar makes itself undumpable (review finding L4), and runs on when it cannot."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest
from rolesanywhere_sidecar import hardening
from rolesanywhere_sidecar.logs import LOGGER_NAME


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")
def test_a_process_that_calls_it_is_no_longer_dumpable():
    # In a child process: an undumpable pytest would keep its /proc entries from its own user.
    script = (
        "from rolesanywhere_sidecar import hardening as h; "
        "before = h.is_dumpable(); ok = h.make_undumpable(); print(before, ok, h.is_dumpable())"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["True", "True", "False"]


def test_the_serve_command_asks_for_it(monkeypatch):
    from rolesanywhere_sidecar import cli

    called = []
    monkeypatch.setattr(cli, "make_undumpable", lambda: called.append(True))
    monkeypatch.setattr(cli, "serve", lambda settings, redactor: 0)
    environ = {
        "ROLESANYWHERE_CERTIFICATE": "/c", "ROLESANYWHERE_PRIVATE_KEY": "/k",
        "ROLESANYWHERE_TRUST_ANCHOR_ARN": "arn:aws:rolesanywhere:eu-west-1:123456789012:trust-anchor/0123abcd-0123-4567-89ab-0123456789ab",
        "ROLESANYWHERE_PROFILE_ARN": "arn:aws:rolesanywhere:eu-west-1:123456789012:profile/0123abcd-0123-4567-89ab-0123456789ab",
        "ROLESANYWHERE_ROLE_ARN": "arn:aws:iam::123456789012:role/x",
    }
    assert cli.main(["serve"], environ=environ) == 0
    assert called == [True]


def test_a_failing_prctl_is_logged_and_not_fatal(caplog):
    def failing():
        return lambda *args: -1

    with caplog.at_level(logging.WARNING, logger=LOGGER_NAME):
        assert hardening.make_undumpable(failing) is False
    assert "could not mark the process undumpable" in caplog.text


def test_a_missing_prctl_is_logged_and_not_fatal(caplog):
    def missing():
        raise AttributeError("undefined symbol: prctl")

    with caplog.at_level(logging.WARNING, logger=LOGGER_NAME):
        assert hardening.make_undumpable(missing) is False
    assert "undefined symbol: prctl" in caplog.text
