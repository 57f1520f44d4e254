"""The emulator's configuration: one YAML file describing the account, trust anchors, profiles and STS.

accountId: "123456789012"        # optional; default: the account in the ARNs (all must agree)
region: us-east-1                # optional; default: the region in the ARNs (all must agree)
sts:
  endpoint: http://127.0.0.1:5000   # STS endpoint AssumeRole is called on (e.g. a moto server)
  iamEndpoint: http://...           # optional; IAM endpoint GetRole is called on; default: endpoint
  region: us-east-1                 # optional; region STS requests are signed for; default: us-east-1
  accessKeyId: AKIA...              # optional; default: $AWS_ACCESS_KEY_ID
  secretAccessKey: ...              # optional; default: $AWS_SECRET_ACCESS_KEY
  sessionToken: ...                 # optional; default: $AWS_SESSION_TOKEN
trustAnchors:
  - arn: arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/ANCHOR-ID
    caBundle: ca.pem                # PEM CA certificate(s); relative paths are from this file's folder
    crls: [ca.crl]                  # optional; PEM or DER X.509 CRLs, each signed by a CA of caBundle
                                    # (relative paths as for caBundle); listed serials are refused
    enabled: true                   # optional; default true
profiles:
  - arn: arn:aws:rolesanywhere:us-east-1:123456789012:profile/PROFILE-ID
    roleArns: [arn:aws:iam::123456789012:role/app]
    durationSeconds: 3600           # optional; the longest session this profile vends; default 3600
    acceptRoleSessionName: false    # optional; whether requests may set roleSessionName; default false
    sessionPolicy: {...}            # optional; an inline policy document (JSON text or a mapping),
                                    # passed to AssumeRole as Policy
    managedPolicyArns: [arn:aws:iam::aws:policy/ReadOnlyAccess]  # optional; passed as PolicyArns
    enabled: true                   # optional; default true
quotas:
  createSessionPerSecond: 10        # optional; CreateSession calls a second before 429 ThrottlingException
                                    # (the service's default quota is 10 per account and region); default:
                                    # no limit, so test suites that call in quick bursts are not throttled
  createSessionBurst: 10            # optional; calls allowed at once; default: createSessionPerSecond
testing:
  credentialLifetimeSeconds: 5      # TEST ONLY, optional: ask STS for credentials this short-lived
                                    # whatever the request says (moto accepts it; real STS needs >= 900)

Any other key, at any level, is an error naming it and where it is: a misspelt setting must not
silently leave the emulator more permissive than the service it stands in for.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from cryptography import x509
from rolesanywhere_protocol.arns import (
    Arn,
    parse_arn,
    parse_profile_arn,
    parse_role_arn,
    parse_trust_anchor_arn,
)
from rolesanywhere_protocol.errors import ConfigError
from rolesanywhere_protocol.limits import SESSION_DURATION_DEFAULT, SESSION_DURATION_MAX, SESSION_DURATION_MIN

from .revocation import crl_issuer, load_crl
from .trust import UntrustedCertificate, check_anchor_certificate

DEFAULT_PROFILE_DURATION_SECONDS = SESSION_DURATION_DEFAULT
DEFAULT_STS_REGION = "us-east-1"
#: STS AssumeRole's limits on what a profile passes on: Policy (plain text) and PolicyArns.
MAX_SESSION_POLICY_CHARS = 2048
MAX_MANAGED_POLICY_ARNS = 10
_POLICY_ARN = re.compile(r"^arn:(aws|aws-cn|aws-us-gov):iam::(\d{12}|aws):policy/.+$")

#: The keys each part of the file may have; anything else is a ConfigError.
ROOT_KEYS = ("accountId", "region", "sts", "trustAnchors", "profiles", "quotas", "testing")
QUOTA_KEYS = ("createSessionPerSecond", "createSessionBurst")
STS_KEYS = ("endpoint", "iamEndpoint", "region", "accessKeyId", "secretAccessKey", "sessionToken")
TRUST_ANCHOR_KEYS = ("arn", "caBundle", "crls", "enabled")
PROFILE_KEYS = (
    "arn",
    "roleArns",
    "durationSeconds",
    "acceptRoleSessionName",
    "sessionPolicy",
    "managedPolicyArns",
    "enabled",
)
TESTING_KEYS = ("credentialLifetimeSeconds",)


@dataclass(frozen=True)
class TrustAnchor:
    arn: Arn
    certificates: tuple[x509.Certificate, ...]
    enabled: bool = True
    crls: tuple[x509.CertificateRevocationList, ...] = ()


@dataclass(frozen=True)
class Profile:
    arn: Arn
    role_arns: tuple[str, ...]
    duration_seconds: int = DEFAULT_PROFILE_DURATION_SECONDS
    accept_role_session_name: bool = False
    enabled: bool = True
    session_policy: str | None = None  # JSON text, as AssumeRole's Policy
    managed_policy_arns: tuple[str, ...] = ()  # AssumeRole's PolicyArns


@dataclass(frozen=True)
class StsSettings:
    endpoint: str
    iam_endpoint: str
    region: str
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    def __repr__(self) -> str:  # keep the secret out of logs
        return f"StsSettings(endpoint={self.endpoint!r}, iam_endpoint={self.iam_endpoint!r}, region={self.region!r})"


@dataclass(frozen=True)
class EmulatorConfig:
    account_id: str
    region: str
    partition: str
    sts: StsSettings
    trust_anchors: dict[str, TrustAnchor] = field(default_factory=dict)  # by ARN
    profiles: dict[str, Profile] = field(default_factory=dict)  # by ARN
    credential_lifetime_seconds: int | None = None  # testing only
    #: CreateSession calls a second and at once before the service throttles; None: no limit.
    create_session_rate: float | None = None
    create_session_burst: int | None = None


def load_config(path: Path, environ: dict[str, str] | None = None) -> EmulatorConfig:
    """Read and validate a YAML configuration file; ConfigError naming the file and the field when invalid."""
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as error:
        raise ConfigError(f"cannot read emulator configuration {path}: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"emulator configuration {path} is not valid YAML: {error}") from None
    try:
        return config_from_dict(
            document, base_dir=path.parent, environ=os.environ if environ is None else environ
        )
    except ConfigError as error:
        raise ConfigError(f"emulator configuration {path}: {error}") from None


def _quota(quotas: dict) -> tuple[float | None, int | None]:
    rate, burst = quotas.get("createSessionPerSecond"), quotas.get("createSessionBurst")
    if rate is None:
        if burst is not None:
            raise ConfigError("quotas.createSessionBurst needs quotas.createSessionPerSecond")
        return None, None
    if isinstance(rate, bool) or not isinstance(rate, int | float) or rate <= 0:
        raise ConfigError(f"quotas.createSessionPerSecond must be a positive number, got {rate!r}")
    if burst is None:
        burst = max(1, int(rate))
    if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
        raise ConfigError(f"quotas.createSessionBurst must be a whole number of at least 1, got {burst!r}")
    return float(rate), burst


def config_from_dict(document: object, *, base_dir: Path, environ: dict[str, str]) -> EmulatorConfig:
    root = _mapping(document, "the document", ROOT_KEYS)
    anchors = [
        _trust_anchor(item, f"trustAnchors[{i}]", base_dir)
        for i, item in enumerate(_list(root, "trustAnchors"))
    ]
    profiles = [_profile(item, f"profiles[{i}]") for i, item in enumerate(_list(root, "profiles"))]
    if not anchors or not profiles:
        raise ConfigError("at least one entry is needed in trustAnchors and in profiles")
    arns = [a.arn for a in anchors] + [p.arn for p in profiles]
    account_id = str(root.get("accountId") or arns[0].account)
    region = str(root.get("region") or arns[0].region)
    for arn in arns:
        if arn.account != account_id or arn.region != region:
            raise ConfigError(
                f"{arn} is not in account {account_id} and region {region}: all ARNs must share both"
            )
    for profile in profiles:
        for role_arn in profile.role_arns:
            if parse_arn(role_arn).account != account_id:
                raise ConfigError(f"role {role_arn} of profile {profile.arn} is not in account {account_id}")
    lifetime = _section(root, "testing", TESTING_KEYS).get("credentialLifetimeSeconds")
    if lifetime is not None and (not isinstance(lifetime, int) or lifetime < 1):
        raise ConfigError(
            f"testing.credentialLifetimeSeconds must be a positive whole number, got {lifetime!r}"
        )
    rate, burst = _quota(_section(root, "quotas", QUOTA_KEYS))
    return EmulatorConfig(
        create_session_rate=rate,
        create_session_burst=burst,
        account_id=account_id,
        region=region,
        partition=arns[0].partition,
        sts=_sts(_section(root, "sts", STS_KEYS), environ),
        trust_anchors={str(a.arn): a for a in anchors},
        profiles={str(p.arn): p for p in profiles},
        credential_lifetime_seconds=lifetime,
    )


def _trust_anchor(item: object, where: str, base_dir: Path) -> TrustAnchor:
    entry = _mapping(item, where, TRUST_ANCHOR_KEYS)
    arn = _parse(parse_trust_anchor_arn, entry.get("arn"), f"{where}.arn")
    bundle = entry.get("caBundle")
    if not bundle:
        raise ConfigError(
            f"{where}.caBundle is missing: expected the path of a PEM file with the CA certificate(s)"
        )
    bundle_path = (base_dir / str(bundle)).resolve()
    try:
        certificates = x509.load_pem_x509_certificates(bundle_path.read_bytes())
    except OSError as error:
        raise ConfigError(f"{where}.caBundle: cannot read {bundle_path}: {error.strerror or error}") from None
    except ValueError as error:
        raise ConfigError(f"{where}.caBundle: {bundle_path} holds no PEM certificates ({error})") from None
    for certificate in certificates:
        try:
            check_anchor_certificate(certificate)
        except UntrustedCertificate as error:
            raise ConfigError(f"{where}.caBundle: {bundle_path}: {error}") from None
    return TrustAnchor(
        arn=arn,
        certificates=tuple(certificates),
        enabled=_bool(entry, "enabled", True, where),
        crls=_crls(entry, where, base_dir, certificates),
    )


def _crls(
    entry: dict, where: str, base_dir: Path, certificates: list[x509.Certificate]
) -> tuple[x509.CertificateRevocationList, ...]:
    files = entry.get("crls") or []
    if not isinstance(files, list) or not all(isinstance(f, str) and f for f in files):
        raise ConfigError(f"{where}.crls must be a list of CRL file paths, got {files!r}")
    crls = []
    for i, name in enumerate(files):
        crl_path = (base_dir / name).resolve()
        try:
            crl = load_crl(crl_path.read_bytes())
        except OSError as error:
            raise ConfigError(f"{where}.crls[{i}]: cannot read {crl_path}: {error.strerror or error}") from None
        except ValueError as error:
            raise ConfigError(f"{where}.crls[{i}]: {crl_path} is not a PEM or DER X.509 CRL ({error})") from None
        if crl_issuer(crl, certificates) is None:
            raise ConfigError(
                f"{where}.crls[{i}]: {crl_path} (issuer {crl.issuer.rfc4514_string()!r}) is not signed "
                "by a CA certificate of this trust anchor's caBundle"
            )
        crls.append(crl)
    return tuple(crls)


def _profile(item: object, where: str) -> Profile:
    entry = _mapping(item, where, PROFILE_KEYS)
    arn = _parse(parse_profile_arn, entry.get("arn"), f"{where}.arn")
    roles = entry.get("roleArns")
    if not isinstance(roles, list) or not roles:
        raise ConfigError(f"{where}.roleArns must be a non-empty list of IAM role ARNs")
    for i, role in enumerate(roles):
        _parse(parse_role_arn, role, f"{where}.roleArns[{i}]")
    duration = entry.get("durationSeconds", DEFAULT_PROFILE_DURATION_SECONDS)
    if not isinstance(duration, int) or not SESSION_DURATION_MIN <= duration <= SESSION_DURATION_MAX:
        raise ConfigError(
            f"{where}.durationSeconds must be a whole number from {SESSION_DURATION_MIN} to "
            f"{SESSION_DURATION_MAX}, got {duration!r}"
        )
    return Profile(
        arn=arn,
        role_arns=tuple(str(r) for r in roles),
        duration_seconds=duration,
        accept_role_session_name=_bool(entry, "acceptRoleSessionName", False, where),
        enabled=_bool(entry, "enabled", True, where),
        session_policy=_session_policy(entry.get("sessionPolicy"), f"{where}.sessionPolicy"),
        managed_policy_arns=_policy_arns(entry.get("managedPolicyArns"), f"{where}.managedPolicyArns"),
    )


def _session_policy(value: object, where: str) -> str | None:
    """The policy as compact JSON text; a mapping is serialised, a string must parse as a JSON object."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as error:
            raise ConfigError(f"{where} is not valid JSON: {error}") from None
    if not isinstance(value, dict) or "Statement" not in value:
        raise ConfigError(f"{where} must be a policy document (a JSON object with a Statement)")
    text = json.dumps(value, separators=(",", ":"))
    if len(text) > MAX_SESSION_POLICY_CHARS:
        raise ConfigError(
            f"{where} is {len(text)} characters as compact JSON: STS takes at most {MAX_SESSION_POLICY_CHARS}"
        )
    return text


def _policy_arns(value: object, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where} must be a list of IAM policy ARNs, got {value!r}")
    if len(value) > MAX_MANAGED_POLICY_ARNS:
        raise ConfigError(f"{where} lists {len(value)} policies: STS takes at most {MAX_MANAGED_POLICY_ARNS}")
    for i, policy_arn in enumerate(value):
        if not _POLICY_ARN.match(policy_arn):
            raise ConfigError(
                f"{where}[{i}] {policy_arn!r} is not an IAM policy ARN: expected the form "
                "arn:aws:iam::123456789012:policy/NAME or arn:aws:iam::aws:policy/NAME"
            )
    return tuple(value)


def _sts(section: dict, environ: dict[str, str]) -> StsSettings:
    endpoint = section.get("endpoint")
    if not endpoint or not str(endpoint).startswith(("http://", "https://")):
        raise ConfigError(
            f"sts.endpoint must be an http(s) URL of an STS endpoint (e.g. a moto server), got {endpoint!r}"
        )
    access_key = section.get("accessKeyId") or environ.get("AWS_ACCESS_KEY_ID")
    secret_key = section.get("secretAccessKey") or environ.get("AWS_SECRET_ACCESS_KEY")
    if not access_key or not secret_key:
        raise ConfigError(
            "no credentials to call STS with: set sts.accessKeyId and sts.secretAccessKey, "
            "or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    return StsSettings(
        endpoint=str(endpoint).rstrip("/"),
        iam_endpoint=str(section.get("iamEndpoint") or endpoint).rstrip("/"),
        region=str(section.get("region") or DEFAULT_STS_REGION),
        access_key_id=str(access_key),
        secret_access_key=str(secret_key),
        session_token=section.get("sessionToken") or environ.get("AWS_SESSION_TOKEN") or None,
    )


def _parse(parser, value: object, where: str) -> Arn:
    if not isinstance(value, str):
        raise ConfigError(f"{where} is missing or not a string: expected an ARN")
    try:
        return parser(value)
    except ConfigError as error:
        raise ConfigError(f"{where}: {error}") from None


def _mapping(value: object, where: str, keys: tuple[str, ...]) -> dict:
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a mapping, got {type(value).__name__}")
    for key in value:
        if key not in keys:
            raise ConfigError(f"{where}: unknown key {key!r}; expected one of {', '.join(keys)}")
    return value


def _section(root: dict, name: str, keys: tuple[str, ...]) -> dict:
    value = root.get(name) or {}
    return _mapping(value, name, keys)


def _list(root: dict, name: str) -> list:
    value = root.get(name) or []
    if not isinstance(value, list):
        raise ConfigError(f"{name} must be a list, got {type(value).__name__}")
    return value


def _bool(entry: dict, name: str, default: bool, where: str) -> bool:
    value = entry.get(name, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{where}.{name} must be true or false, got {value!r}")
    return value
