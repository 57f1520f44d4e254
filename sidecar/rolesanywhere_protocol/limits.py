"""What CreateSession, IAM and STS accept, declared once for the sidecar, the operator and the emulator.

The CRD (crds/rolesanywherebindings.rolesanywhere.dev.yaml) repeats these in its schema, where the API
server checks them; tests/unit/test_limits.py holds the CRD to this module.
"""

from __future__ import annotations

#: Shortest session CreateSession grants, in seconds (its durationSeconds).
SESSION_DURATION_MIN = 900
#: Longest session CreateSession grants, in seconds (12 hours); the profile and the role may lower it.
SESSION_DURATION_MAX = 43200
#: The session asked for when nothing says otherwise: one hour, the service's own default.
SESSION_DURATION_DEFAULT = 3600

#: Shortest role session name STS takes.
ROLE_SESSION_NAME_MIN = 2
#: Longest role session name STS takes; a longer pod name is cut to it (rolesanywhere_sidecar.settings).
ROLE_SESSION_NAME_MAX = 64
#: The characters of a role session name (STS's [\w+=,.@-] in ASCII).
ROLE_SESSION_NAME_CHARACTERS = r"[A-Za-z0-9+=,.@_-]"
#: A whole role session name.
ROLE_SESSION_NAME_PATTERN = rf"^{ROLE_SESSION_NAME_CHARACTERS}{{{ROLE_SESSION_NAME_MIN},{ROLE_SESSION_NAME_MAX}}}$"

#: The partitions Roles Anywhere runs in.
PARTITIONS = ("aws", "aws-cn", "aws-us-gov")
_PARTITION = f"({'|'.join(PARTITIONS)})"
_REGION = r"[a-z]{2}(-gov)?-[a-z]+-[0-9]+"
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
#: An AWS region name, such as eu-west-1 or us-gov-west-1.
REGION_PATTERN = rf"^{_REGION}$"
#: A Roles Anywhere trust anchor's ARN.
TRUST_ANCHOR_ARN_PATTERN = rf"^arn:{_PARTITION}:rolesanywhere:{_REGION}:[0-9]{{12}}:trust-anchor/{_UUID}$"
#: A Roles Anywhere profile's ARN.
PROFILE_ARN_PATTERN = rf"^arn:{_PARTITION}:rolesanywhere:{_REGION}:[0-9]{{12}}:profile/{_UUID}$"
#: An IAM role's ARN (with its path, if any).
ROLE_ARN_PATTERN = rf"^arn:{_PARTITION}:iam::[0-9]{{12}}:role/[A-Za-z0-9+=,.@_/-]+$"
