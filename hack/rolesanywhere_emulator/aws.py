"""The two AWS calls the emulator makes: IAM GetRole (for the trust policy) and STS AssumeRole.

They use the AWS Query protocol, signed with ordinary SigV4 (HMAC) from the configured IAM user's
access key; the canonical request comes from the protocol package's signer, so only the HMAC key
derivation lives here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from dataclasses import dataclass
from urllib.parse import unquote, urlencode, urlsplit
from xml.etree import ElementTree

import httpx
from rolesanywhere_protocol.credentials import parse_expiration
from rolesanywhere_protocol.signing import (
    canonical_request,
    credential_scope,
    format_amz_date,
    names_to_sign,
    string_to_sign,
)

from .config import StsSettings

HMAC_ALGORITHM = "AWS4-HMAC-SHA256"
IAM_VERSION = "2010-05-08"
STS_VERSION = "2011-06-15"
IAM_SIGNING_REGION = "us-east-1"  # IAM is global; its requests are signed for us-east-1


class AwsCallError(Exception):
    """An IAM/STS call failed: `status` 0 when unreachable, `code` the AWS error code."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{code}: {message}" + (f" (HTTP {status})" if status else ""))
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class Role:
    arn: str
    trust_policy: dict
    max_session_duration: int


@dataclass(frozen=True)
class AssumedRole:
    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: dt.datetime
    assumed_role_arn: str
    assumed_role_id: str
    packed_policy_size: int


class AwsClient:
    def __init__(self, settings: StsSettings, http: httpx.Client):
        self.settings = settings
        self.http = http

    def get_role(self, role_name: str, now: dt.datetime) -> Role:
        root = self._call(
            self.settings.iam_endpoint,
            "iam",
            IAM_SIGNING_REGION,
            now,
            {"Action": "GetRole", "Version": IAM_VERSION, "RoleName": role_name},
        )
        role = _find(root, "Role")
        document = unquote(_text(role, "AssumeRolePolicyDocument"))
        return Role(
            arn=_text(role, "Arn"),
            trust_policy=json.loads(document) if document else {},
            max_session_duration=int(_text(role, "MaxSessionDuration") or 3600),
        )

    def assume_role(
        self,
        role_arn: str,
        session_name: str,
        duration_seconds: int,
        now: dt.datetime,
        *,
        policy: str | None = None,
        policy_arns: tuple[str, ...] = (),
    ) -> AssumedRole:
        """AssumeRole; `policy` (JSON text) and `policy_arns` are session policies, as a profile's
        sessionPolicy and managedPolicyArns are passed on.

        Real STS limits the credentials to what both the role and these policies allow. moto
        (measured with 5.2.5, IAM authentication on; tests/integration/test_emulator.py) does not:
        it stores Policy without applying it, ignores PolicyArns, and always answers
        PackedPolicySize 6. Against moto the credentials keep the role's full permissions.
        """
        params = {
            "Action": "AssumeRole",
            "Version": STS_VERSION,
            "RoleArn": role_arn,
            "RoleSessionName": session_name,
            "DurationSeconds": str(duration_seconds),
        }
        if policy is not None:
            params["Policy"] = policy
        for number, policy_arn in enumerate(policy_arns, start=1):
            params[f"PolicyArns.member.{number}.arn"] = policy_arn
        root = self._call(self.settings.endpoint, "sts", self.settings.region, now, params)
        credentials = _find(root, "Credentials")
        user = _find(root, "AssumedRoleUser")
        return AssumedRole(
            access_key_id=_text(credentials, "AccessKeyId"),
            secret_access_key=_text(credentials, "SecretAccessKey"),
            session_token=_text(credentials, "SessionToken"),
            expiration=parse_expiration(_text(credentials, "Expiration")),
            assumed_role_arn=_text(user, "Arn"),
            assumed_role_id=_text(user, "AssumedRoleId"),
            packed_policy_size=int(_text(root, "PackedPolicySize") or 0),
        )

    def _call(
        self, endpoint: str, service: str, region: str, now: dt.datetime, params: dict
    ) -> ElementTree.Element:
        body = urlencode(params).encode("ascii")
        url = endpoint + "/"
        headers = {
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
            "Host": urlsplit(url).netloc,
            "X-Amz-Date": format_amz_date(now),
        }
        if self.settings.session_token:
            headers["X-Amz-Security-Token"] = self.settings.session_token
        headers["Authorization"] = self._authorization(headers, body, service, region)
        try:
            response = self.http.post(url, content=body, headers=headers)
        except httpx.HTTPError as error:
            raise AwsCallError(
                0, type(error).__name__, f"{service} endpoint {endpoint} unreachable: {error}"
            ) from None
        try:
            root = ElementTree.fromstring(response.content)
        except ElementTree.ParseError:
            raise AwsCallError(response.status_code, "MalformedResponse", response.text[:300]) from None
        _strip_namespaces(root)
        if response.status_code != 200:
            raise AwsCallError(
                response.status_code,
                root.findtext(".//Code") or f"HTTP{response.status_code}",
                root.findtext(".//Message") or response.text[:300],
            )
        return root

    def _authorization(self, headers: dict, body: bytes, service: str, region: str) -> str:
        amz_date = headers["X-Amz-Date"]
        signed = names_to_sign(headers)
        scope = credential_scope(amz_date, region, service)
        text = string_to_sign(
            HMAC_ALGORITHM, amz_date, scope, canonical_request("POST", "/", [], headers, signed, body)
        )
        key = _signing_key(self.settings.secret_access_key, amz_date[:8], region, service)
        signature = hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()
        return (
            f"{HMAC_ALGORITHM} Credential={self.settings.access_key_id}/{scope}, "
            f"SignedHeaders={';'.join(signed)}, Signature={signature}"
        )


def _signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret).encode("utf-8")
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return key


def _strip_namespaces(root: ElementTree.Element) -> None:
    for element in root.iter():
        if isinstance(element.tag, str) and "}" in element.tag:
            element.tag = element.tag.split("}", 1)[1]


def _find(root: ElementTree.Element, tag: str) -> ElementTree.Element:
    element = root if root.tag == tag else root.find(f".//{tag}")
    if element is None:
        raise AwsCallError(200, "MalformedResponse", f"the response has no {tag} element")
    return element


def _text(root: ElementTree.Element, tag: str) -> str:
    return (root.findtext(f".//{tag}") or "").strip()
