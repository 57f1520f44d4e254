"""The emulator's certificate path validation: leaf, intermediates from X-Amz-X509-Chain, trust anchor CA."""

from __future__ import annotations

import datetime as dt

import pytest
from localcluster import pki
from rolesanywhere_sidecar.emulator.trust import UntrustedCertificate, verify_path

NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


@pytest.fixture(scope="module")
def pki_tree():
    root = pki.issue("Trust Root", now=NOW, is_ca=True, valid_for=30 * DAY)
    intermediate = pki.issue("Trust Intermediate", now=NOW, issuer=root, is_ca=True, valid_for=10 * DAY)
    stranger = pki.issue("Stranger Root", now=NOW, is_ca=True)
    return {"root": root, "intermediate": intermediate, "stranger": stranger}


def leaf(issuer, **options):
    options.setdefault("now", NOW)
    return pki.issue("workload", issuer=issuer, client=True, **options)


def untrusted(match: str, certificate, intermediates, anchors, now=NOW) -> None:
    with pytest.raises(UntrustedCertificate, match=match):
        verify_path(certificate, intermediates, anchors, now)


def test_leaf_issued_by_the_anchor(pki_tree):
    workload = leaf(pki_tree["root"])
    assert verify_path(workload.cert, [], [pki_tree["root"].cert], NOW) == [
        workload.cert,
        pki_tree["root"].cert,
    ]


def test_leaf_issued_by_an_intermediate_sent_in_the_chain(pki_tree):
    workload = leaf(pki_tree["intermediate"])
    path = verify_path(workload.cert, workload.chain, [pki_tree["root"].cert], NOW)
    assert path == [workload.cert, pki_tree["intermediate"].cert, pki_tree["root"].cert]


def test_an_intermediate_may_itself_be_the_trust_anchor(pki_tree):
    workload = leaf(pki_tree["intermediate"])
    assert (
        verify_path(workload.cert, [], [pki_tree["intermediate"].cert], NOW)[-1]
        == pki_tree["intermediate"].cert
    )


def test_intermediate_missing_from_the_chain(pki_tree):
    untrusted(
        "issuer 'CN=Trust Intermediate' .* is neither in the chain nor in the trust anchor",
        leaf(pki_tree["intermediate"]).cert,
        [],
        [pki_tree["root"].cert],
    )


def test_certificate_from_another_ca(pki_tree):
    untrusted(
        "no path from certificate 'CN=workload'", leaf(pki_tree["stranger"]).cert, [], [pki_tree["root"].cert]
    )


def test_forged_issuer_name_fails_the_signature_check(pki_tree):
    # same subject name as the trusted root, different key
    impostor = pki.issue("Trust Root", now=NOW, is_ca=True)
    untrusted("does not verify with", leaf(impostor).cert, [], [pki_tree["root"].cert])


def test_expired_leaf(pki_tree):
    workload = leaf(pki_tree["root"], valid_for=DAY)
    untrusted(
        "certificate 'CN=workload' .* expired at",
        workload.cert,
        [],
        [pki_tree["root"].cert],
        now=NOW + 2 * DAY,
    )


def test_leaf_not_yet_valid(pki_tree):
    workload = leaf(pki_tree["root"], not_before=NOW + DAY)
    untrusted("is not valid before", workload.cert, [], [pki_tree["root"].cert])


def test_expired_intermediate(pki_tree):
    workload = leaf(pki_tree["intermediate"], valid_for=30 * DAY)
    untrusted(
        "'CN=Trust Intermediate' .* expired at",
        workload.cert,
        workload.chain,
        [pki_tree["root"].cert],
        now=NOW + 15 * DAY,
    )


def test_ca_certificate_cannot_authenticate(pki_tree):
    untrusted(
        "is a CA certificate: expected an end-entity certificate",
        pki_tree["intermediate"].cert,
        [],
        [pki_tree["root"].cert],
    )


def test_intermediate_that_is_not_a_ca(pki_tree):
    not_a_ca = pki.issue("Not A CA", now=NOW, issuer=pki_tree["root"], is_ca=False)
    workload = pki.issue("workload", now=NOW, issuer=not_a_ca, client=True)
    untrusted("'CN=Not A CA' .* is not a CA", workload.cert, [not_a_ca.cert], [pki_tree["root"].cert])
