"""The emulator end to end: AWS's own clients get credentials from it, moto enforces them, tampering is refused.

One moto server (IAM authentication on) for the session; the shared `rolesanywhere` emulator serves
plain HTTP; `variants` is a second emulator over HTTPS with more profiles and roles.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import ssl
import subprocess
import uuid

import botocore.exceptions
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from iam_rolesanywhere_session import IAMRolesAnywhereSession
from localcluster import pki
from rolesanywhere_devkit.aws import S3_READ_ONLY_POLICY, AwsKeys, arn, emulator_config
from rolesanywhere_protocol import CreateSessionClient, ServiceError, SessionRequest, signing
from rolesanywhere_protocol.clock import utc_now
from rolesanywhere_protocol.credentials import parse_expiration
from rolesanywhere_protocol.identity import X509Identity

KEY_KINDS = ["rsa2048", "ec-p256", "ec-p384"]
S3_FULL_POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
LIST_BUCKETS_ONLY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}],
}


def assert_s3_read_only(moto, access_key_id: str, secret_access_key: str, session_token: str) -> None:
    s3 = moto.client_for_session("s3", access_key_id, secret_access_key, session_token)
    assert isinstance(s3.list_buckets()["Buckets"], list)
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        s3.create_bucket(Bucket=f"denied-{uuid.uuid4().hex[:8]}")
    assert caught.value.response["Error"]["Code"] == "AccessDenied"


def identity_of(issued: pki.Issued) -> X509Identity:
    return X509Identity(certificate=issued.cert, private_key=issued.key, chain=issued.chain)


def test_moto_checks_signatures_and_policies(moto_server):
    with pytest.raises(botocore.exceptions.ClientError) as unknown:
        moto_server.client("sts", AwsKeys("AKIAUNKNOWN", "x")).get_caller_identity()
    assert unknown.value.response["Error"]["Code"] == "InvalidClientTokenId"
    with pytest.raises(botocore.exceptions.ClientError) as denied:
        moto_server.client("s3", moto_server.emulator_user).list_buckets()
    assert denied.value.response["Error"]["Code"] == "AccessDenied"


@pytest.mark.parametrize("via_intermediate", [False, True], ids=["root-issued", "intermediate-issued"])
@pytest.mark.parametrize("key_kind", KEY_KINDS)
def test_aws_signing_helper_gets_credentials_that_moto_s3_honours(
    rolesanywhere, tools_bin, tmp_path, key_kind, via_intermediate
):
    workload = rolesanywhere.issue(f"helper-{key_kind}", key_kind=key_kind, via_intermediate=via_intermediate)
    cert, key, chain = rolesanywhere.write(workload, tmp_path)
    args = [
        str(tools_bin / "aws_signing_helper"), "credential-process",
        "--certificate", str(cert), "--private-key", str(key),
        "--trust-anchor-arn", rolesanywhere.trust_anchor_arn,
        "--profile-arn", rolesanywhere.profile_arn,
        "--role-arn", rolesanywhere.role_arn,
        "--endpoint", rolesanywhere.endpoint,
    ]  # fmt: skip
    if chain:
        args += ["--intermediates", str(chain)]

    result = subprocess.run(args, check=False, capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    assert output["Version"] == 1
    assert_s3_read_only(
        rolesanywhere.moto, output["AccessKeyId"], output["SecretAccessKey"], output["SessionToken"]
    )
    seen = [s for s in rolesanywhere.emulator.sessions() if s["accessKeyId"] == output["AccessKeyId"]]
    assert [(s["status"], s["serialNumber"]) for s in seen] == [(201, str(workload.cert.serial_number))]


def test_aws_signing_helper_reports_the_service_error(rolesanywhere, tools_bin, tmp_path):
    stranger = pki.issue("Stranger CA", now=utc_now(), is_ca=True)
    workload = pki.issue("stranger-workload", now=utc_now(), issuer=stranger, client=True)
    cert, key = workload.write(tmp_path, "w")
    result = subprocess.run(
        [str(tools_bin / "aws_signing_helper"), "credential-process", "--certificate", str(cert),
         "--private-key", str(key), "--trust-anchor-arn", rolesanywhere.trust_anchor_arn,
         "--profile-arn", rolesanywhere.profile_arn, "--role-arn", rolesanywhere.role_arn,
         "--endpoint", rolesanywhere.endpoint],
        check=False, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    assert "AccessDeniedException: Untrusted Signing Certificate" in result.stderr


@pytest.mark.parametrize("key_kind", KEY_KINDS)
def test_our_client_gets_credentials_that_moto_s3_honours(rolesanywhere, key_kind):
    workload = rolesanywhere.issue(f"client-{key_kind}", key_kind=key_kind, via_intermediate=True)
    request = SessionRequest(
        rolesanywhere.trust_anchor_arn, rolesanywhere.profile_arn, rolesanywhere.role_arn
    )

    with CreateSessionClient(rolesanywhere.endpoint) as client:
        credentials = client.create_session(identity_of(workload), request)

    assert credentials.role_arn == rolesanywhere.role_arn
    assert 3500 < credentials.seconds_left(utc_now()) <= 3600
    assert_s3_read_only(
        rolesanywhere.moto,
        credentials.access_key_id,
        credentials.secret_access_key,
        credentials.session_token,
    )


# A second emulator, over HTTPS, with profiles and roles for the remaining rules.


@dataclasses.dataclass
class Variants:
    url: str
    ca_bundle: str
    process: object
    trust_anchor_arn: str
    profiles: dict[str, str]
    roles: dict[str, str]
    revoked: pki.Issued  # a workload certificate the trust anchor's CRL lists
    list_only_policy_arn: str  # a managed policy allowing only s3:ListAllMyBuckets


@pytest.fixture(scope="module")
def variants(rolesanywhere, emulator_factory, tmp_path_factory) -> Variants:
    moto = rolesanywhere.moto
    suffix = uuid.uuid4().hex[:6]
    roles = {
        "read-only": rolesanywhere.role_arn,
        "untrusting": moto.create_role(
            f"untrusting-{suffix}", S3_READ_ONLY_POLICY, trust_policy=moto.trust_policy(roles_anywhere=False)
        ),
        "anchor-bound": moto.create_role(
            f"anchor-bound-{suffix}",
            S3_READ_ONLY_POLICY,
            trust_policy=moto.trust_policy(
                conditions={"ArnEquals": {"aws:SourceArn": rolesanywhere.trust_anchor_arn}}
            ),
        ),
        "one-hour": moto.create_role(f"one-hour-{suffix}", S3_READ_ONLY_POLICY, max_session_duration=3600),
        "two-hours": moto.create_role(f"two-hours-{suffix}", S3_READ_ONLY_POLICY, max_session_duration=7200),
        "full-s3": moto.create_role(f"full-s3-{suffix}", S3_FULL_POLICY),
        "missing": f"arn:aws:iam::123456789012:role/missing-{suffix}",
    }
    names = ("main", "long", "long-trusted", "named", "disabled", "session-policy", "managed-policies")
    profiles = {name: arn("profile") for name in names}
    list_only_arn = moto.client("iam").create_policy(
        PolicyName=f"list-buckets-only-{suffix}", PolicyDocument=json.dumps(LIST_BUCKETS_ONLY)
    )["Policy"]["Arn"]
    bundle = str(rolesanywhere.authorities.bundle_path)
    directory = tmp_path_factory.mktemp("variants")
    revoked = rolesanywhere.issue("revoked-workload")
    crl_path = directory / "root.crl"
    crl_path.write_bytes(
        pki.revocation_list(rolesanywhere.authorities.root, revoked.cert.serial_number).public_bytes(
            serialization.Encoding.DER
        )
    )
    document = emulator_config(
        moto,
        trust_anchors=[{"arn": rolesanywhere.trust_anchor_arn, "caBundle": bundle, "crls": [str(crl_path)]}],
        profiles=[
            {
                "arn": profiles["main"],
                "roleArns": [
                    roles["read-only"],
                    roles["untrusting"],
                    roles["anchor-bound"],
                    roles["missing"],
                ],
                "durationSeconds": 3600,
            },
            {"arn": profiles["long"], "roleArns": [roles["one-hour"]], "durationSeconds": 7200},
            {"arn": profiles["long-trusted"], "roleArns": [roles["two-hours"]], "durationSeconds": 7200},
            {"arn": profiles["named"], "roleArns": [roles["read-only"]], "acceptRoleSessionName": True},
            {"arn": profiles["disabled"], "roleArns": [roles["read-only"]], "enabled": False},
            {"arn": profiles["session-policy"], "roleArns": [roles["full-s3"]], "sessionPolicy": LIST_BUCKETS_ONLY},
            {"arn": profiles["managed-policies"], "roleArns": [roles["full-s3"]], "managedPolicyArns": [list_only_arn]},
        ],
    )
    now = utc_now()
    tls_ca = pki.issue("Emulator TLS CA", now=now, is_ca=True)
    tls_cert, tls_key = pki.issue(
        "127.0.0.1", now=now, issuer=tls_ca, server=True, ip_addresses=("127.0.0.1",)
    ).write(directory, "server")
    ca_bundle = directory / "tls-ca.pem"
    ca_bundle.write_bytes(tls_ca.cert_pem)
    process = emulator_factory(document, tls=(tls_cert, tls_key))
    assert process.url.startswith("https://")
    return Variants(
        process.url, str(ca_bundle), process, rolesanywhere.trust_anchor_arn, profiles, roles, revoked, list_only_arn
    )



@pytest.fixture(scope="module")
def workload(rolesanywhere):
    return rolesanywhere.issue("variants-workload", key_kind="rsa2048", via_intermediate=True)


@pytest.mark.parametrize("key_kind", KEY_KINDS)
def test_iam_rolesanywhere_session_gets_credentials_over_https(rolesanywhere, variants, key_kind):
    issued = rolesanywhere.issue(f"session-{key_kind}", key_kind=key_kind, via_intermediate=True)
    session = IAMRolesAnywhereSession(
        profile_arn=variants.profiles["main"],
        role_arn=variants.roles["read-only"],
        trust_anchor_arn=variants.trust_anchor_arn,
        certificate=issued.cert_pem,
        private_key=issued.key_pem(),
        certificate_chain=issued.chain_pem,
        region="us-east-1",
        endpoint=variants.url.removeprefix("https://"),
        verify=variants.ca_bundle,
    )
    credentials = session.get_refreshable_credentials().get_frozen_credentials()

    assert_s3_read_only(rolesanywhere.moto, credentials.access_key, credentials.secret_key, credentials.token)
    assert str(issued.cert.serial_number) in [s["serialNumber"] for s in variants.process.sessions()]


def post(variants: Variants, signed: signing.SignedRequest, *, body: bytes | None = None, headers=None):
    return httpx.post(
        signed.url,
        content=signed.body if body is None else body,
        headers={**signed.headers, **(headers or {})},
        verify=ssl.create_default_context(cafile=variants.ca_bundle),
        timeout=10,
    )


def sign(
    variants: Variants,
    identity: X509Identity,
    *,
    profile="main",
    role="read-only",
    duration: int | None = 3600,
    now=None,
    extra: dict | None = None,
) -> signing.SignedRequest:
    document = {
        **({"durationSeconds": duration} if duration is not None else {}),
        "profileArn": variants.profiles.get(profile, profile),
        "roleArn": variants.roles.get(role, role),
        "trustAnchorArn": variants.trust_anchor_arn,
        **(extra or {}),
    }
    return signing.sign_request(
        identity, url=variants.url + "/sessions", body=json.dumps(document).encode(), now=now or utc_now(),
        region="us-east-1", headers={"Content-Type": "application/x-amz-json-1.0"},
    )  # fmt: skip


def assert_error(response: httpx.Response, status: int, code: str, message: str) -> None:
    assert (response.status_code, response.headers.get("x-amzn-ErrorType")) == (status, code), response.text
    assert response.json()["message"].startswith(message), response.json()


def test_changed_body_is_refused(variants, workload):
    signed = sign(variants, identity_of(workload))
    tampered = signed.body.replace(b'"durationSeconds": 3600', b'"durationSeconds": 1800')
    assert tampered != signed.body
    assert_error(post(variants, signed, body=tampered), 403, "AccessDeniedException", "Invalid signature")


def test_changed_signed_header_is_refused(variants, workload):
    signed = sign(variants, identity_of(workload))
    response = post(variants, signed, headers={"Content-Type": "application/json"})
    assert_error(response, 403, "AccessDeniedException", "Invalid signature")


def test_unsigned_certificate_chain_header_is_refused(variants, workload):
    signed = sign(variants, identity_of(workload))
    authorization = signed.headers["Authorization"].replace(";x-amz-x509-chain", "")
    assert_error(
        post(variants, signed, headers={"Authorization": authorization}),
        403,
        "AccessDeniedException",
        "Invalid signature",
    )


@pytest.mark.parametrize("minutes", [-6, 6])
def test_date_outside_the_window_is_refused(variants, workload, minutes):
    signed = sign(variants, identity_of(workload), now=utc_now() + dt.timedelta(minutes=minutes))
    expected = "Signature expired" if minutes < 0 else "Signature not yet current"
    assert_error(post(variants, signed), 403, "AccessDeniedException", expected)


def test_certificate_from_an_untrusted_ca_is_refused(variants):
    stranger = pki.issue("Stranger CA", now=utc_now(), is_ca=True)
    issued = pki.issue("stranger", now=utc_now(), issuer=stranger, client=True)
    response = post(variants, sign(variants, identity_of(issued)))
    assert_error(response, 403, "AccessDeniedException", "Untrusted Signing Certificate")
    record = variants.process.sessions()[-1]
    assert record["serialNumber"] == str(issued.cert.serial_number) and "no path from" in record["reason"]


def test_expired_certificate_is_refused(rolesanywhere, variants):
    issued = rolesanywhere.issue(
        "expired", now=utc_now() - dt.timedelta(days=2), valid_for=dt.timedelta(days=1)
    )
    assert_error(
        post(variants, sign(variants, identity_of(issued))),
        403,
        "AccessDeniedException",
        "Untrusted Signing Certificate",
    )
    assert "expired at" in variants.process.sessions()[-1]["reason"]


def test_revoked_certificate_is_refused(variants, workload):
    """API reference, ImportCrl: "IAM Roles Anywhere validates against the CRL before issuing
    credentials." The guide gives no error text for it; the emulator answers as for any untrusted
    certificate."""
    response = post(variants, sign(variants, identity_of(variants.revoked)))
    assert_error(response, 403, "AccessDeniedException", "Untrusted Signing Certificate")
    assert "is revoked by the trust anchor's CRL" in variants.process.sessions()[-1]["reason"]
    assert post(variants, sign(variants, identity_of(workload))).status_code == 201  # not on the CRL


def test_signature_by_the_wrong_key_is_refused(rolesanywhere, variants, workload):
    other = rolesanywhere.issue("other", key_kind="rsa2048")
    impostor = dataclasses.replace(identity_of(workload), private_key=other.key)
    assert_error(post(variants, sign(variants, impostor)), 403, "AccessDeniedException", "Invalid signature")


def test_role_not_in_profile_is_refused(variants, workload):
    response = post(variants, sign(variants, identity_of(workload), profile="long", role="read-only"))
    assert_error(
        response, 403, "AccessDeniedException", f"Unable to assume role for {variants.roles['read-only']}"
    )
    assert "not in profile" in variants.process.sessions()[-1]["reason"]


@pytest.mark.parametrize(
    ("duration", "message"),
    [
        (
            899,
            (
                "1 validation error detected: Value '899' at 'durationSeconds' failed to satisfy constraint: "
                "Member must have value greater than or equal to 900"
            ),
        ),
        (43201, "1 validation error detected: Value '43201' at 'durationSeconds'"),
    ],
)
def test_duration_out_of_range_is_refused(variants, workload, duration, message):
    response = post(variants, sign(variants, identity_of(workload), duration=duration))
    assert_error(response, 400, "ValidationException", message)


def test_duration_is_capped_by_the_profile(variants, workload):
    response = post(variants, sign(variants, identity_of(workload), duration=7200))
    assert response.status_code == 201, response.text
    expiration = response.json()["credentialSet"][0]["credentials"]["expiration"]
    left = (parse_expiration(expiration) - utc_now()).total_seconds()
    assert 3500 < left <= 3600


def test_without_duration_seconds_the_profile_duration_applies(variants, workload):
    """User Guide, Expiration: with no durationSeconds in the request, finalDurationSeconds is the
    profile's durationSeconds (here 7200 s, above the 3600 s a default would give)."""
    response = post(
        variants, sign(variants, identity_of(workload), profile="long-trusted", role="two-hours", duration=None)
    )
    assert response.status_code == 201, response.text
    expiration = response.json()["credentialSet"][0]["credentials"]["expiration"]
    left = (parse_expiration(expiration) - utc_now()).total_seconds()
    assert 7100 < left <= 7200


def test_duration_above_the_role_maximum_is_refused(variants, workload):
    response = post(
        variants, sign(variants, identity_of(workload), profile="long", role="one-hour", duration=7200)
    )
    assert_error(
        response, 400, "ValidationException", "The requested DurationSeconds exceeds the MaxSessionDuration"
    )


def test_role_whose_trust_policy_omits_roles_anywhere_is_refused(variants, workload):
    response = post(variants, sign(variants, identity_of(workload), role="untrusting"))
    assert_error(response, 403, "AccessDeniedException", "Unable to assume role for")
    assert "does not allow sts:AssumeRole" in variants.process.sessions()[-1]["reason"]


def test_trust_policy_conditions_see_the_trust_anchor(variants, workload):
    response = post(variants, sign(variants, identity_of(workload), role="anchor-bound"))
    assert response.status_code == 201, response.text


def test_role_that_does_not_exist_is_refused(variants, workload):
    response = post(variants, sign(variants, identity_of(workload), role="missing"))
    assert_error(response, 403, "AccessDeniedException", "Unable to assume role for")
    assert variants.process.sessions()[-1]["reason"] == "the role does not exist"


@pytest.mark.parametrize(
    ("field", "value", "status", "code"),
    [
        (
            "profileArn",
            "arn:aws:rolesanywhere:us-east-1:123456789012:profile/unknown",
            404,
            "ResourceNotFoundException",
        ),
        (
            "trustAnchorArn",
            "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/unknown",
            404,
            "ResourceNotFoundException",
        ),
    ],
)
def test_unknown_arns_are_refused(variants, workload, field, value, status, code):
    response = post(variants, sign(variants, identity_of(workload), extra={field: value}))
    assert_error(response, status, code, "")


def test_disabled_profile_is_refused(variants, workload):
    response = post(variants, sign(variants, identity_of(workload), profile="disabled"))
    assert_error(
        response, 403, "AccessDeniedException", f"Profile {variants.profiles['disabled']} is disabled"
    )


def test_role_session_name_needs_a_profile_that_accepts_it(variants, workload):
    """User Guide, CreateSession: a roleSessionName sent to a profile whose acceptRoleSessionName is
    false: "you will receive an Access Denied error"."""
    refused = post(variants, sign(variants, identity_of(workload), extra={"roleSessionName": "ci-job-7"}))
    assert_error(
        refused, 403, "AccessDeniedException", "Access denied: the profile does not accept a role session name"
    )
    accepted = post(
        variants,
        sign(variants, identity_of(workload), profile="named", extra={"roleSessionName": "ci-job-7"}),
    )
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["credentialSet"][0]["assumedRoleUser"]["arn"].endswith("/ci-job-7")


# Measured with moto 5.2.5, IAM authentication on (test_moto_does_not_enforce_session_policies):
# moto keeps AssumeRole's Policy but does not apply it, ignores PolicyArns altogether, and answers
# PackedPolicySize 6 whatever was sent. So the vended credentials keep the role's full permissions,
# and what AssumeRole received is checked in moto's request recording instead.
@pytest.mark.parametrize(
    ("profile", "parameter", "expected"),
    [
        ("session-policy", "Policy", lambda variants: [json.dumps(LIST_BUCKETS_ONLY, separators=(",", ":"))]),
        ("managed-policies", "PolicyArns.member.1.arn", lambda variants: [variants.list_only_policy_arn]),
    ],
    ids=["session-policy", "managed-policy-arns"],
)
def test_profile_session_policies_are_passed_to_assume_role(
    rolesanywhere, variants, workload, profile, parameter, expected
):
    """User Guide / CreateProfile API: a profile's sessionPolicy and managedPolicyArns limit the
    vended credentials; they are session policies, i.e. AssumeRole's Policy and PolicyArns."""
    with rolesanywhere.moto.recording() as requests:
        response = post(variants, sign(variants, identity_of(workload), profile=profile, role="full-s3"))
    assert response.status_code == 201, response.text
    (assume_role,) = [r for r in requests if r.get("Action") == ["AssumeRole"]]
    assert assume_role[parameter] == expected(variants)
    assert assume_role["RoleArn"] == [variants.roles["full-s3"]]


def test_moto_does_not_enforce_session_policies(rolesanywhere, variants, workload):
    """A measurement of moto, not of the emulator: if this starts failing, moto enforces session
    policies, and the credentials test above should check the denial too (and the comment be updated)."""
    for profile in ("session-policy", "managed-policies"):
        response = post(variants, sign(variants, identity_of(workload), profile=profile, role="full-s3"))
        assert response.status_code == 201, response.text
        credential_set = response.json()["credentialSet"][0]
        credentials = credential_set["credentials"]
        s3 = rolesanywhere.moto.client_for_session(
            "s3", credentials["accessKeyId"], credentials["secretAccessKey"], credentials["sessionToken"]
        )
        s3.create_bucket(Bucket=f"not-denied-{uuid.uuid4().hex[:8]}")  # AWS would deny: list-only
        assert credential_set["packedPolicySize"] == 6  # moto's constant, whatever was sent


def test_arns_are_accepted_as_query_parameters(variants, workload):
    query = (
        f"?profileArn={signing.uri_encode(variants.profiles['main'])}"
        f"&roleArn={signing.uri_encode(variants.roles['read-only'])}"
        f"&trustAnchorArn={signing.uri_encode(variants.trust_anchor_arn)}"
    )
    signed = signing.sign_request(
        identity_of(workload),
        url=variants.url + "/sessions" + query,
        body=b'{"durationSeconds": 900}',
        now=utc_now(),
        region="us-east-1",
    )
    response = post(variants, signed)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["credentialSet"][0]["roleArn"] == variants.roles["read-only"]
    assert body["credentialSet"][0]["sourceIdentity"] == "CN=variants-workload"
    assert body["subjectArn"].startswith("arn:aws:rolesanywhere:us-east-1:123456789012:subject/")


def test_source_identity_without_a_common_name_is_the_hex_serial(rolesanywhere, variants):
    """User Guide, source identity rules: without a CN, "ID=" and the serial in hex, padded to an even
    number of digits (serial 0x0abc gives ID=0abc)."""
    root = rolesanywhere.authorities.root
    key = ec.generate_private_key(ec.SECP256R1())
    now = utc_now()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "No Common Name")]))
        .issuer_name(root.cert.subject)
        .public_key(key.public_key())
        .serial_number(0xABC)
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True
        )
        .sign(root.key, hashes.SHA256())
    )
    response = post(variants, sign(variants, X509Identity(certificate=certificate, private_key=key, chain=[])))
    assert response.status_code == 201, response.text
    assert response.json()["credentialSet"][0]["sourceIdentity"] == "ID=0abc"


def test_client_retries_through_injected_faults_and_the_log_shows_each_answer(rolesanywhere):
    emulator = rolesanywhere.emulator
    emulator.clear_sessions()
    emulator.inject_fault(status=503, count=2)
    issued = rolesanywhere.issue("retrying")
    request = SessionRequest(
        rolesanywhere.trust_anchor_arn, rolesanywhere.profile_arn, rolesanywhere.role_arn
    )

    with CreateSessionClient(rolesanywhere.endpoint, sleep=lambda _: None) as client:
        client.create_session(identity_of(issued), request)

    assert [(s["status"], s["serialNumber"]) for s in emulator.sessions()] == [
        (503, str(issued.cert.serial_number)), (503, str(issued.cert.serial_number)),
        (201, str(issued.cert.serial_number)),
    ]  # fmt: skip


def test_injected_client_error_is_not_retried(rolesanywhere):
    rolesanywhere.emulator.inject_fault(
        status=403, code="AccessDeniedException", message="Untrusted Signing Certificate"
    )
    request = SessionRequest(
        rolesanywhere.trust_anchor_arn, rolesanywhere.profile_arn, rolesanywhere.role_arn
    )
    issued = rolesanywhere.issue("not-retrying")
    with (
        CreateSessionClient(rolesanywhere.endpoint, sleep=lambda _: None) as client,
        pytest.raises(ServiceError) as caught,
    ):
        client.create_session(identity_of(issued), request)
    assert (caught.value.code, caught.value.attempts) == ("AccessDeniedException", 1)
    assert f"certificate serial {issued.cert.serial_number}" in str(caught.value)


def test_test_only_setting_vends_short_lived_credentials(rolesanywhere, emulator_factory):
    document = {**rolesanywhere.document, "testing": {"credentialLifetimeSeconds": 5}}
    emulator = emulator_factory(document)
    request = SessionRequest(
        rolesanywhere.trust_anchor_arn, rolesanywhere.profile_arn, rolesanywhere.role_arn
    )
    with CreateSessionClient(emulator.url) as client:
        credentials = client.create_session(identity_of(rolesanywhere.issue("short")), request)
    assert 0 < credentials.seconds_left(utc_now()) <= 5
    assert emulator.stop() == 0  # SIGTERM is a clean stop
