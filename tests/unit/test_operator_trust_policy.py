"""The trust policy generated for one binding: the three STS actions, the trust anchor, the subject."""

from __future__ import annotations

import pytest
from rolesanywhere_operator.spec import parse_binding
from rolesanywhere_operator.trust_policy import NoSubjectYet, build_trust_policy

TRUST_ANCHOR = "arn:aws:rolesanywhere:eu-west-1:111122223333:trust-anchor/11111111-2222-3333-4444-555555555555"


def binding(certificate: dict):
    return parse_binding({
        "metadata": {"name": "s3-reader", "namespace": "shop"},
        "spec": {
            "trustAnchorArn": TRUST_ANCHOR,
            "profileArn": "arn:aws:rolesanywhere:eu-west-1:111122223333:profile/66666666-7777-8888-9999-000000000000",
            "roleArn": "arn:aws:iam::111122223333:role/s3-reader",
            "certificate": certificate,
        },
    })  # fmt: skip


def policy_with(string_equals: dict) -> dict:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "rolesanywhere.amazonaws.com"},
                "Action": ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"],
                "Condition": {"ArnEquals": {"aws:SourceArn": TRUST_ANCHOR}, "StringEquals": string_equals},
            }
        ],
    }


def test_an_issued_certificate_is_pinned_by_the_subject_the_operator_issues():
    assert build_trust_policy(binding({"issuerRef": {"name": "ca"}})) == policy_with(
        {"aws:PrincipalTag/x509Subject/CN": "s3-reader.shop", "aws:PrincipalTag/x509Subject/O": "shop"}
    )


def test_several_ous_are_one_tag_joined_by_a_slash_as_roles_anywhere_makes_it():
    certificate = {"issuerRef": {"name": "ca"}, "commonName": "backup", "organizationalUnits": ["ops", "eu"]}
    assert build_trust_policy(binding(certificate)) == policy_with(
        {"aws:PrincipalTag/x509Subject/CN": "backup", "aws:PrincipalTag/x509Subject/O": "shop",
         "aws:PrincipalTag/x509Subject/OU": "ops/eu"}
    )


def test_a_secret_certificate_is_pinned_by_the_subject_the_operator_read():
    status = {"certificate": {"subject": "CN=exported.corp,OU=payments,O=Corp"}}
    assert build_trust_policy(binding({"secretRef": {"name": "exported"}}), status) == policy_with(
        {"aws:PrincipalTag/x509Subject/CN": "exported.corp", "aws:PrincipalTag/x509Subject/O": "Corp",
         "aws:PrincipalTag/x509Subject/OU": "payments"}
    )


def test_a_secret_certificate_not_read_yet_is_an_error_saying_so():
    with pytest.raises(NoSubjectYet, match="status.certificate.subject is empty.*Secret exported"):
        build_trust_policy(binding({"secretRef": {"name": "exported"}}), {})
