"""Trust policy evaluation: does the role let rolesanywhere.amazonaws.com assume it for this certificate?"""

from __future__ import annotations

import pytest
from rolesanywhere_sidecar.emulator.policy import PolicyDenied, certificate_context, check_trust_policy

ACTIONS = ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"]
ANCHOR = "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/ta-1"
CONTEXT = certificate_context(
    source_arn=ANCHOR,
    source_account="123456789012",
    subject={"CN": ["build-agent"], "OU": ["ci", "eu"]},
    issuer={"CN": ["Corp CA"]},
    san={"DNS": ["agent.example.com"]},
)


def policy(*statements: dict) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(principal=None, actions=ACTIONS, condition=None, effect="Allow") -> dict:
    statement = {
        "Effect": effect,
        "Principal": principal or {"Service": "rolesanywhere.amazonaws.com"},
        "Action": actions,
    }
    if condition:
        statement["Condition"] = condition
    return statement


@pytest.mark.parametrize(
    "document",
    [
        policy(allow()),
        policy(allow(actions="sts:*")),
        policy(
            allow(principal={"Service": ["ec2.amazonaws.com", "rolesanywhere.amazonaws.com"], "AWS": "arn:x"})
        ),
        policy(allow(condition={"ArnEquals": {"aws:SourceArn": ANCHOR}})),
        policy(allow(condition={"StringLike": {"aws:PrincipalTag/x509Subject/CN": "build-*"}})),
        policy(
            allow(
                condition={
                    "StringEquals": {
                        "aws:PrincipalTag/x509Subject/OU": "eu",
                        "aws:SourceAccount": "123456789012",
                    }
                }
            )
        ),
        policy(allow(condition={"StringEquals": {"aws:PrincipalTag/x509SAN/DNS": "agent.example.com"}})),
        {"Statement": allow()},  # a single statement need not be in a list
    ],
    ids=[
        "plain",
        "wildcard",
        "several-principals",
        "source-arn",
        "cn-like",
        "ou-and-account",
        "san",
        "single",
    ],
)
def test_allowed(document):
    check_trust_policy(document, CONTEXT)


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (policy(allow(principal={"AWS": "arn:aws:iam::123456789012:user/u"})), "no statement allows"),
        (policy(allow(actions=["sts:AssumeRole", "sts:SetSourceIdentity"])), "does not allow sts:TagSession"),
        (policy(allow(condition={"ArnEquals": {"aws:SourceArn": ANCHOR + "x"}})), "ArnEquals aws:SourceArn"),
        (
            policy(allow(condition={"StringEquals": {"aws:PrincipalTag/x509Subject/CN": "other"}})),
            "does not hold",
        ),
        (policy(allow(condition={"NumericLessThan": {"aws:MultiFactorAuthAge": "1"}})), "not supported"),
        (
            policy(allow(), allow(effect="Deny", actions="sts:TagSession")),
            "statement 1 of the trust policy denies",
        ),
        ({"Version": "2012-10-17"}, "no Statement"),
    ],
    ids=[
        "aws-principal-only",
        "missing-tag-session",
        "other-anchor",
        "other-cn",
        "unsupported-operator",
        "deny",
        "empty",
    ],
)
def test_denied_with_a_reason(document, reason):
    with pytest.raises(PolicyDenied, match=reason):
        check_trust_policy(document, CONTEXT)
