"""Credentials formats the SDKs read, and ARN parsing."""

from __future__ import annotations

import configparser
import datetime as dt

import pytest
from rolesanywhere_protocol import ConfigError, Credentials, ServiceError, parse_arn
from rolesanywhere_protocol.arns import endpoint_for, partition_of
from rolesanywhere_protocol.credentials import credentials_from_response, parse_expiration

CREDENTIALS = Credentials(
    access_key_id="ASIAEXAMPLE",
    secret_access_key="secret/key+",
    session_token="token==",
    expiration=dt.datetime(2024, 5, 1, 13, 0, tzinfo=dt.UTC),
    role_arn="arn:aws:iam::123456789012:role/app",
)


def test_credential_process_json():
    assert CREDENTIALS.to_process_json() == {
        "Version": 1,
        "AccessKeyId": "ASIAEXAMPLE",
        "SecretAccessKey": "secret/key+",
        "SessionToken": "token==",
        "Expiration": "2024-05-01T13:00:00Z",
    }


def test_container_credentials_json():
    assert CREDENTIALS.to_container_json() == {
        "AccessKeyId": "ASIAEXAMPLE",
        "SecretAccessKey": "secret/key+",
        "Token": "token==",
        "Expiration": "2024-05-01T13:00:00Z",
        "RoleArn": "arn:aws:iam::123456789012:role/app",
    }


def test_ini_section_reads_back_with_configparser():
    parser = configparser.ConfigParser()
    parser.read_string(CREDENTIALS.to_ini("ci"))
    assert dict(parser["ci"]) == {
        "aws_access_key_id": "ASIAEXAMPLE",
        "aws_secret_access_key": "secret/key+",
        "aws_session_token": "token==",
    }


def test_repr_keeps_secrets_out():
    text = repr(CREDENTIALS)
    assert "secret/key+" not in text and "token==" not in text and "ASIAEXAMPLE" in text


def test_process_json_round_trip_and_offsets():
    assert Credentials.from_process_json(CREDENTIALS.to_process_json(), CREDENTIALS.role_arn) == CREDENTIALS
    assert parse_expiration("2024-05-01T15:00:00.123+02:00") == dt.datetime(
        2024, 5, 1, 13, 0, 0, 123000, tzinfo=dt.UTC
    )
    with pytest.raises(ValueError, match="no time zone"):
        parse_expiration("2024-05-01T13:00:00")


def test_response_without_credentials_is_a_service_error():
    with pytest.raises(ServiceError, match="credentialSet"):
        credentials_from_response({"credentialSet": [{"credentials": {}}]}, role_arn="r")


def test_parse_arn_parts():
    arn = parse_arn("arn:aws-cn:rolesanywhere:cn-north-1:123456789012:profile/abc")
    assert (arn.partition, arn.service, arn.region, arn.account, arn.resource_type, arn.resource_id) == (
        "aws-cn",
        "rolesanywhere",
        "cn-north-1",
        "123456789012",
        "profile",
        "abc",
    )
    assert str(arn) == "arn:aws-cn:rolesanywhere:cn-north-1:123456789012:profile/abc"


@pytest.mark.parametrize(
    ("value", "kwargs", "message"),
    [
        ("not-an-arn", {}, "is not a valid ARN: expected the form arn:aws:"),
        ("arn:aws:s3:::bucket", {"service": "rolesanywhere"}, "is a s3 ARN: expected a rolesanywhere ARN"),
        (
            "arn:aws:rolesanywhere:us-east-1:123456789012:profile/p",
            {"resource_type": "trust-anchor"},
            "not a trust-anchor ARN",
        ),
    ],
)
def test_parse_arn_errors_say_what_is_expected(value, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        parse_arn(value, **kwargs)


def test_partitions_and_bad_regions():
    assert [partition_of(r) for r in ("us-east-1", "cn-northwest-1", "us-gov-east-1")] == [
        "aws",
        "aws-cn",
        "aws-us-gov",
    ]
    assert endpoint_for("us-gov-east-1") == "https://rolesanywhere.us-gov-east-1.amazonaws.com"
    with pytest.raises(ConfigError, match="not a valid AWS region name"):
        endpoint_for("Europe")
