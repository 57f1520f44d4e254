"""Trust policy evaluation: does the role let rolesanywhere.amazonaws.com assume it for this certificate?"""

from __future__ import annotations

import pytest
from rolesanywhere_emulator.policy import (
    PolicyDenied,
    certificate_context,
    check_trust_policy,
    wildcard_match,
)

ACTIONS = ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"]
ANCHOR = "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/ta-1"
CONTEXT = certificate_context(
    source_arn=ANCHOR,
    source_account="123456789012",
    source_identity="CN=build-agent",
    principal_tags={
        "x509Subject/CN": "build-agent",
        "x509Subject/OU": "ci/eu",  # OU=ci, OU=eu: one tag, the values joined by "/"
        "x509Issuer/CN": "Corp CA",
        "x509SAN/DNS": "agent.example.com",
    },
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


def deny(condition=None, actions=ACTIONS) -> dict:
    return allow(effect="Deny", actions=actions, condition=condition)


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
                        "aws:PrincipalTag/x509Subject/OU": "ci/eu",
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
        "joined-ou-and-account",
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
        (policy(allow(condition={"NumericLessThan": {"aws:MultiFactorAuthAge": "1"}})), "not support"),
        (policy(allow(), deny(actions="sts:TagSession")), "statement 1 of the trust policy denies"),
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


def test_a_multi_valued_attribute_is_one_joined_value():
    """User Guide, trust policy: several values of one attribute are one principal tag, "/"-joined
    ("Security/Engineering/Research" for three OUs). The single value "eu" therefore does not match."""
    with pytest.raises(PolicyDenied, match="does not hold for 'ci/eu'"):
        check_trust_policy(
            policy(allow(condition={"StringEquals": {"aws:PrincipalTag/x509Subject/OU": "eu"}})), CONTEXT
        )


def test_the_guides_example_with_sts_source_identity_is_allowed():
    """User Guide, trust model: "The sts:SourceIdentity key is present in the request when IAM Roles
    Anywhere initially sets the source identity while assuming a role." The guide's example trust
    policy uses it in a condition, in a policy of two statements like this one."""
    document = policy(
        allow(
            actions=["sts:AssumeRole"],
            condition={"StringEquals": {"sts:SourceIdentity": "CN=build-agent"}},
        ),
        allow(actions=["sts:TagSession", "sts:SetSourceIdentity"]),
    )
    check_trust_policy(document, CONTEXT)
    other = policy(
        allow(actions=["sts:AssumeRole"], condition={"StringEquals": {"sts:SourceIdentity": "CN=alice"}}),
        allow(actions=["sts:TagSession", "sts:SetSourceIdentity"]),
    )
    with pytest.raises(PolicyDenied, match="sts:SourceIdentity"):
        check_trust_policy(other, CONTEXT)


@pytest.mark.parametrize(
    "operator", ["StringNotEquals", "StringNotLike", "StringNotEqualsIgnoreCase", "ArnNotEquals", "ArnNotLike"]
)
def test_negated_operators_hold_when_the_key_is_absent(operator):
    """IAM: a negated condition operator on a key that is not in the request context evaluates to
    true (the certificate here has no URI in its SAN)."""
    check_trust_policy(policy(allow(condition={operator: {"aws:PrincipalTag/x509SAN/URI": "spiffe://*"}})), CONTEXT)


def test_positive_operators_need_the_key_unless_if_exists():
    absent = {"aws:PrincipalTag/x509SAN/URI": "spiffe://x"}
    with pytest.raises(PolicyDenied, match="not present"):
        check_trust_policy(policy(allow(condition={"StringEquals": absent})), CONTEXT)
    check_trust_policy(policy(allow(condition={"StringEqualsIfExists": absent})), CONTEXT)


def test_negated_operator_on_a_present_key():
    other_cn = {"StringNotEquals": {"aws:PrincipalTag/x509Subject/CN": ["x", "y"]}}
    check_trust_policy(policy(allow(condition=other_cn)), CONTEXT)
    same_cn = {"StringNotEquals": {"aws:PrincipalTag/x509Subject/CN": ["x", "build-agent"]}}
    with pytest.raises(PolicyDenied, match="does not hold"):
        check_trust_policy(policy(allow(condition=same_cn)), CONTEXT)


def test_a_deny_with_an_unknown_operator_refuses():
    """Fail closed: the emulator cannot evaluate DateGreaterThan, so a Deny using it must not be
    ignored (ignoring it would let through what the service may refuse)."""
    document = policy(allow(), deny(condition={"DateGreaterThan": {"aws:CurrentTime": "2000-01-01T00:00:00Z"}}))
    with pytest.raises(PolicyDenied, match="statement 1 .* Deny with condition operator DateGreaterThan"):
        check_trust_policy(document, CONTEXT)


def test_a_deny_ruled_out_by_a_known_condition_does_not_refuse():
    document = policy(
        allow(),
        deny(
            condition={
                "StringEquals": {"aws:PrincipalTag/x509Subject/CN": "someone-else"},
                "DateGreaterThan": {"aws:CurrentTime": "2000-01-01T00:00:00Z"},
            }
        ),
    )
    check_trust_policy(document, CONTEXT)


@pytest.mark.parametrize(
    ("value", "pattern", "matches"),
    [
        ("build-agent", "build-*", True),
        ("build-agent", "build-?gent", True),
        ("build-agent", "build-", False),
        ("w", "[w]", False),  # no character classes: "[" and "]" are literal
        ("[w]", "[w]", True),
        ("a.b", "a?b", True),
        ("axb", "a.b", False),  # "." is literal
    ],
)
def test_like_knows_only_star_and_question_mark(value, pattern, matches):
    """IAM: StringLike/ArnLike take "*" (any run of characters) and "?" (one character) as
    wildcards; nothing else is special."""
    assert wildcard_match(value, pattern) is matches
