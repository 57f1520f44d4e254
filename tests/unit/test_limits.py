"""The service's limits are declared once (rolesanywhere_protocol.limits): the CRD's schema repeats them for
the API server, and the sidecar, the operator, the protocol client and the emulator all enforce them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from rolesanywhere_operator import constants as c
from rolesanywhere_operator.spec import InvalidBindingError, parse_binding
from rolesanywhere_protocol import ConfigError, SessionRequest, limits
from rolesanywhere_sidecar.settings import SETTINGS as SIDECAR
from rolesanywhere_sidecar.settings import SettingsError

REPO = Path(__file__).resolve().parents[2]
UUID = "0123abcd-0123-4567-89ab-0123456789ab"
TRUST_ANCHOR = f"arn:aws:rolesanywhere:eu-west-1:111122223333:trust-anchor/{UUID}"
PROFILE = f"arn:aws:rolesanywhere:eu-west-1:111122223333:profile/{UUID}"
ROLE = "arn:aws:iam::111122223333:role/app"
SIDECAR_ENV = {SIDECAR.env("trust_anchor_arn"): TRUST_ANCHOR, SIDECAR.env("profile_arn"): PROFILE,
               SIDECAR.env("role_arn"): ROLE, SIDECAR.env("certificate"): "/c", SIDECAR.env("private_key"): "/k"}


def crd_spec_properties() -> dict:
    crd = yaml.safe_load((REPO / "crds" / "rolesanywherebindings.rolesanywhere.dev.yaml").read_text())
    (version,) = crd["spec"]["versions"]
    return version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]


def test_the_crd_schema_holds_the_shared_limits():
    props = crd_spec_properties()
    assert props["trustAnchorArn"]["pattern"] == limits.TRUST_ANCHOR_ARN_PATTERN
    assert props["profileArn"]["pattern"] == limits.PROFILE_ARN_PATTERN
    assert props["roleArn"]["pattern"] == limits.ROLE_ARN_PATTERN
    assert props["region"]["pattern"] == limits.REGION_PATTERN
    duration = props["sessionDuration"]
    assert (duration["minimum"], duration["maximum"], duration["default"]) == (
        limits.SESSION_DURATION_MIN, limits.SESSION_DURATION_MAX, limits.SESSION_DURATION_DEFAULT)
    session_name = props["roleSessionName"]["properties"]
    assert session_name["name"]["pattern"] == limits.ROLE_SESSION_NAME_PATTERN
    assert session_name["source"]["enum"] == [c.SESSION_NAME_FROM_POD, c.SESSION_NAME_FIXED]


def binding(**spec) -> dict:
    return {"apiVersion": f"{c.GROUP}/{c.VERSION}", "kind": c.KIND, "metadata": {"name": "b", "namespace": "shop"},
            "spec": {"trustAnchorArn": TRUST_ANCHOR, "profileArn": PROFILE, "roleArn": ROLE,
                     "certificate": {"issuerRef": {"name": "ca"}}, **spec}}


@pytest.mark.parametrize("seconds", [limits.SESSION_DURATION_MIN, limits.SESSION_DURATION_MAX])
def test_every_component_takes_the_shortest_and_the_longest_session(seconds):
    assert parse_binding(binding(sessionDuration=seconds)).session_duration == seconds
    assert SIDECAR.resolve({"session_duration": str(seconds)}, SIDECAR_ENV, "serve").session_duration == seconds
    assert SessionRequest(TRUST_ANCHOR, PROFILE, ROLE, duration_seconds=seconds).region() == "eu-west-1"


@pytest.mark.parametrize("seconds", [limits.SESSION_DURATION_MIN - 1, limits.SESSION_DURATION_MAX + 1])
def test_every_component_refuses_a_session_outside_the_limits(seconds):
    with pytest.raises(InvalidBindingError, match="sessionDuration"):
        parse_binding(binding(sessionDuration=seconds))
    with pytest.raises(SettingsError, match="session-duration"):
        SIDECAR.resolve({"session_duration": str(seconds)}, SIDECAR_ENV, "serve")
    with pytest.raises(ConfigError, match="session duration"):
        SessionRequest(TRUST_ANCHOR, PROFILE, ROLE, duration_seconds=seconds).region()


def test_without_a_duration_every_component_asks_for_the_default_session():
    assert parse_binding(binding()).session_duration == limits.SESSION_DURATION_DEFAULT
    assert SIDECAR.resolve({}, SIDECAR_ENV, "serve").session_duration == limits.SESSION_DURATION_DEFAULT
    assert SessionRequest(TRUST_ANCHOR, PROFILE, ROLE).duration_seconds == limits.SESSION_DURATION_DEFAULT


@pytest.mark.parametrize(("name", "valid"), [
    ("a" * limits.ROLE_SESSION_NAME_MIN, True), ("a" * limits.ROLE_SESSION_NAME_MAX, True),
    ("a" * (limits.ROLE_SESSION_NAME_MIN - 1), False), ("a" * (limits.ROLE_SESSION_NAME_MAX + 1), False),
    ("job+1=a,b.c@d_e-f", True), ("has space", False), ("näme", False),
])
def test_the_role_session_name_pattern_is_stss(name, valid):
    assert bool(re.fullmatch(limits.ROLE_SESSION_NAME_PATTERN, name)) is valid
    request = SessionRequest(TRUST_ANCHOR, PROFILE, ROLE, role_session_name=name)
    if valid:
        assert request.region() == "eu-west-1"
    else:
        with pytest.raises(ConfigError, match="role session name"):
            request.region()
