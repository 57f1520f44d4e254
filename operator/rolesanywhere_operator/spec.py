"""Parse a RolesAnywhereBinding into a typed `Binding`, checking what the API server checks.

The CRD validates the same rules (OpenAPI patterns and CEL), so on a live cluster a bad binding never
gets stored; this module repeats them because the operator must not trust what it reads (a binding
stored under an older CRD) and the webhook must explain a bad binding to the pod's creator.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from rolesanywhere_protocol.limits import (
    PROFILE_ARN_PATTERN,
    REGION_PATTERN,
    ROLE_ARN_PATTERN,
    ROLE_SESSION_NAME_PATTERN,
    SESSION_DURATION_DEFAULT,
    SESSION_DURATION_MAX,
    SESSION_DURATION_MIN,
    TRUST_ANCHOR_ARN_PATTERN,
)

from . import constants as c

# The name and key patterns of the CRD; a unit test keeps them equal. Checked before a name is used in an
# API path or a key as a file name, so nothing the user writes can reach outside the binding's namespace.
_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
#: A Kubernetes object name (DNS-1123 subdomain): what secretRef.name, issuerRef.name and
#: caBundle.configMapName must be; no "/" and no "." or ".." segment can appear in it.
NAME_PATTERN = rf"^{_DNS_LABEL}(\.{_DNS_LABEL})*$"
#: A namespace name (DNS-1123 label), at most NAMESPACE_MAX_LENGTH characters.
NAMESPACE_PATTERN = rf"^{_DNS_LABEL}$"
NAMESPACE_MAX_LENGTH = 63
#: Longest Kubernetes object name.
NAME_MAX_LENGTH = 253
#: Longest binding name: injected pods carry it as a label value.
BINDING_NAME_MAX_LENGTH = 63
#: A ConfigMap or Secret key (as the API server checks it): [-._a-zA-Z0-9]+, neither "." nor "..", not
#: starting with ".."; used as a file name in the sidecar's volumes, so it never leaves them.
KEY_PATTERN = r"^\.?[-_a-zA-Z0-9][-._a-zA-Z0-9]*$"
#: Longest ConfigMap or Secret key.
KEY_MAX_LENGTH = 253


#: The CreateSession endpoint (the CRD's pattern for spec.sidecar.endpoint); plain http:// only with
#: spec.sidecar.allowInsecureEndpoint, since the response carries the session's secret key.
ENDPOINT_PATTERN = r"^https?://[^\s/]+(/.*)?$"
#: A proxy URL with credentials in it (user:password@), which the sidecar's env would show to anyone who
#: can read the pod (the CRD's CEL rule for spec.sidecar.proxy.httpsProxy refuses the same).
PROXY_CREDENTIALS_PATTERN = r"^([^:/]+://)?[^/]*@"

#: A resource quantity as the API server takes one, without a sign (requests and limits cannot be
#: negative); the CRD's pattern for spec.sidecar.resources.
QUANTITY_PATTERN = (
    r"^(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
#: What the sidecar's requests and limits may name (the CRD's rule for spec.sidecar.resources).
SIDECAR_RESOURCE_NAMES = ("cpu", "memory", "ephemeral-storage")
_QUANTITY_SUFFIXES = {
    "": Decimal(1), "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "k": Decimal("1e3"),
    "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"), "P": Decimal("1e15"), "E": Decimal("1e18"),
    **{f"{p}i": Decimal(1024) ** n for n, p in enumerate("KMGTPE", 1)},
}


def quantity(value: object) -> Decimal:
    """The amount in a resource quantity such as 10m, 64Mi, 1e3 or 2; ValueError when it is not one."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return Decimal(value)
    if not isinstance(value, str) or not re.fullmatch(QUANTITY_PATTERN, value):
        raise ValueError(f"expected a quantity such as 10m, 64Mi or 1, got {value!r}")
    digits = re.match(r"[0-9.]+", value)
    assert digits is not None  # QUANTITY_PATTERN starts with them
    number, suffix = digits.group(), value[digits.end():]
    if re.fullmatch(r"[eE][-+]?[0-9.]+", suffix):  # an exponent; "E" alone is exa
        return Decimal(number) * Decimal(10) ** Decimal(suffix[1:])
    return Decimal(number) * _QUANTITY_SUFFIXES[suffix]


def resources_problem(value: object) -> tuple[str, str] | None:
    """Why `value` is not a sidecar's `resources` the API server takes: (the field under it, why); None if it is."""
    if not isinstance(value, Mapping) or set(value) - {"requests", "limits"}:
        return "", f"expected requests and/or limits, got {value!r}"
    amounts: dict[str, dict[str, Decimal]] = {}
    for group in ("requests", "limits"):
        entries = value.get(group) or {}
        if not isinstance(entries, Mapping):
            return group, f"expected a map of {', '.join(SIDECAR_RESOURCE_NAMES)} to quantities, got {entries!r}"
        for name, amount in entries.items():
            if name not in SIDECAR_RESOURCE_NAMES:
                return f"{group}.{name}", f"expected one of {', '.join(SIDECAR_RESOURCE_NAMES)}"
            try:
                amounts.setdefault(group, {})[name] = quantity(amount)
            except ValueError as error:
                return f"{group}.{name}", str(error)
    for name, request in amounts.get("requests", {}).items():
        limit = amounts.get("limits", {}).get(name)
        if limit is not None and request > limit:
            why = (f"{value['requests'][name]!r} is more than limits.{name} ({value['limits'][name]!r}), "
                   "which the API server refuses for every pod")
            return f"requests.{name}", why
    return None


def proxy_problem(value: object) -> str | None:
    """Why `value` cannot be the sidecar's HTTPS_PROXY; None when it can."""
    if not isinstance(value, str) or not value.strip():
        return f"expected a proxy URL such as http://proxy.example:3128, got {value!r}"
    if re.match(PROXY_CREDENTIALS_PATTERN, value):
        return ("holds credentials (user:password@), which anyone who can read an injected pod would see in its "
                "env; give the URL without them and let the proxy admit the sidecar's pods another way "
                "(e.g. by source address)")
    return None


#: A Go duration as cert-manager takes it (the CRD's pattern for duration and renewBefore).
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$"
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration_seconds(text: str) -> float:
    """Seconds in a Go duration such as "2h45m" or "1.5h"; ValueError when it is not one."""
    if not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"expected a Go duration such as 24h or 90m, got {text!r}")
    return sum(float(n) * _DURATION_UNITS[u] for n, _, u in re.findall(r"([0-9]+(\.[0-9]+)?)(ns|us|ms|s|m|h)", text))


def name_problem(value: object, *, max_length: int = NAME_MAX_LENGTH) -> str | None:
    """Why `value` is not a Kubernetes object name of at most `max_length` characters; None when it is."""
    return _text_problem(value, "a Kubernetes name", max_length, NAME_PATTERN, "lower-case letters, digits, '-' and '.'")


def key_problem(value: object) -> str | None:
    """Why `value` is not a ConfigMap or Secret key; None when it is."""
    return _text_problem(
        value, "a key", KEY_MAX_LENGTH, KEY_PATTERN, "letters, digits, '-', '_' and '.'; not '.', '..' or '..'-prefixed"
    )


def _text_problem(value: object, what: str, max_length: int, pattern: str, alphabet: str) -> str | None:
    if not isinstance(value, str) or not value:
        return f"expected {what}, got {value!r}"
    if len(value) > max_length:
        return f"expected {what} of at most {max_length} characters, got {len(value)}"
    if not re.fullmatch(pattern, value):
        return f"expected {what} ({alphabet}), got {value!r}"
    return None


class InvalidBindingError(Exception):
    """A binding's spec is invalid; the message names the field and what is expected.

    Permanent: retrying cannot help until someone edits the binding. One that reaches a kopf handler
    leaves it as kopf.PermanentError (handlers.py), so kopf does not retry it.
    """


@dataclass(frozen=True)
class IssuerRef:
    name: str
    kind: str
    group: str


@dataclass(frozen=True)
class IssuedCertificate:
    """A certificate cert-manager issues (and renews) for the binding."""

    issuer: IssuerRef
    common_name: str
    organizational_units: tuple[str, ...]
    duration: str  # a Go duration; DEFAULT_CERTIFICATE_DURATION when the binding sets none
    renew_before: str | None
    private_key_algorithm: str  # "ECDSA" or "RSA"
    #: constants.IDENTITY_SHARED (one Certificate and Secret for the binding) or IDENTITY_POD (a key and a
    #: CertificateRequest per pod; duration is then each pod's certificate lifetime, renewBefore unset).
    identity: str = c.IDENTITY_SHARED

    @property
    def per_pod(self) -> bool:
        return self.identity == c.IDENTITY_POD


@dataclass(frozen=True)
class SecretCertificate:
    """A certificate issued elsewhere, in an existing Secret with tls.crt and tls.key."""

    secret_name: str
    intermediates_key: str | None
    passphrase_key: str | None


@dataclass(frozen=True)
class CABundle:
    config_map: str
    key: str


@dataclass(frozen=True)
class SidecarOptions:
    endpoint: str | None = None
    ca_bundle: CABundle | None = None
    https_proxy: str | None = None
    no_proxy: str | None = None
    resources: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class RoleSessionName:
    """The role session name a binding asks for (spec.roleSessionName); None on a Binding asks for none."""

    source: str  # constants.SESSION_NAME_FROM_POD or SESSION_NAME_FIXED
    name: str | None = None  # with SESSION_NAME_FIXED


@dataclass(frozen=True)
class Binding:
    name: str
    namespace: str
    uid: str
    trust_anchor_arn: str
    profile_arn: str
    role_arn: str
    #: Region of the trust anchor; where CreateSession goes.
    trust_anchor_region: str
    #: Region the app containers get as AWS_REGION (spec.region, default the trust anchor's).
    app_region: str
    session_duration: int
    #: None: no name is sent, and the service uses the certificate's serial (accepted by every profile).
    role_session_name: RoleSessionName | None
    certificate: IssuedCertificate | SecretCertificate
    #: One of constants.DELIVERIES (a former name already replaced by its current one).
    delivery: str
    sidecar: SidecarOptions
    #: Whether the operator checks the certificate with a real CreateSession (spec.verifyCredentials).
    verify_credentials: bool = True
    #: What happens to opted-in pods running without the sidecar (spec.missedPods; missed.py).
    missed_pods: str = c.MISSED_PODS_RECREATE

    @property
    def per_pod(self) -> bool:
        """Whether each pod gets a certificate of its own (spec.certificate.identity: Pod)."""
        return isinstance(self.certificate, IssuedCertificate) and self.certificate.per_pod

    @property
    def secret_name(self) -> str:
        """The Secret holding the certificate and key the sidecar presents."""
        if isinstance(self.certificate, SecretCertificate):
            return self.certificate.secret_name
        return c.certificate_secret_name(self.name)


def parse_binding(body: Mapping[str, Any]) -> Binding:
    """A `Binding` from a RolesAnywhereBinding object; raises InvalidBindingError naming the bad field."""
    metadata = body.get("metadata") or {}
    name, namespace = metadata.get("name", ""), metadata.get("namespace", "")
    spec = body.get("spec")
    if not isinstance(spec, Mapping):
        raise InvalidBindingError(f"binding {namespace}/{name}: spec is missing")
    where = f"binding {namespace}/{name}: spec"

    trust_anchor = _matching(spec, "trustAnchorArn", TRUST_ANCHOR_ARN_PATTERN, where, "a trust anchor ARN")
    profile = _matching(spec, "profileArn", PROFILE_ARN_PATTERN, where, "a Roles Anywhere profile ARN")
    role = _matching(spec, "roleArn", ROLE_ARN_PATTERN, where, "an IAM role ARN")
    anchor_parts, profile_parts = trust_anchor.split(":"), profile.split(":")
    if profile_parts[3] != anchor_parts[3]:
        raise InvalidBindingError(f"{where}.profileArn: must be in the same region as spec.trustAnchorArn")
    for field, arn in (("profileArn", profile), ("roleArn", role)):
        if arn.split(":")[1] != anchor_parts[1]:
            raise InvalidBindingError(f"{where}.{field}: must be in the same partition as spec.trustAnchorArn")

    region = spec.get("region")
    if region is not None:
        region = _matching(spec, "region", REGION_PATTERN, where, "an AWS region such as eu-west-1")
    duration = spec.get("sessionDuration", SESSION_DURATION_DEFAULT)
    if isinstance(duration, bool) or not isinstance(duration, int) or not (
        SESSION_DURATION_MIN <= duration <= SESSION_DURATION_MAX
    ):
        raise InvalidBindingError(
            f"{where}.sessionDuration: expected seconds from {SESSION_DURATION_MIN} to "
            f"{SESSION_DURATION_MAX}, got {duration!r}"
        )
    delivery = spec.get("delivery", c.DELIVERY_ENDPOINT)
    delivery = c.DELIVERY_ALIASES.get(delivery, delivery) if isinstance(delivery, str) else delivery
    if delivery not in c.DELIVERIES:
        former = ", ".join(f"{old} (the former name of {new})" for old, new in c.DELIVERY_ALIASES.items())
        raise InvalidBindingError(
            f"{where}.delivery: expected one of {', '.join(c.DELIVERIES)} or {former}, "
            f"got {spec.get('delivery')!r}"
        )
    return Binding(
        name=name,
        namespace=namespace,
        uid=metadata.get("uid", ""),
        trust_anchor_arn=trust_anchor,
        profile_arn=profile,
        role_arn=role,
        trust_anchor_region=anchor_parts[3],
        app_region=region or anchor_parts[3],
        session_duration=duration,
        role_session_name=_role_session_name(spec.get("roleSessionName"), f"{where}.roleSessionName"),
        certificate=_certificate(spec.get("certificate"), name, namespace, f"{where}.certificate"),
        delivery=delivery,
        sidecar=_sidecar(spec.get("sidecar") or {}, f"{where}.sidecar"),
        verify_credentials=_boolean(spec, "verifyCredentials", True, where),
        missed_pods=_missed_pods(spec.get("missedPods", c.MISSED_PODS_RECREATE), f"{where}.missedPods"),
    )


def _matching(spec: Mapping[str, Any], field: str, pattern: str, where: str, expected: str) -> str:
    value = spec.get(field)
    if not isinstance(value, str) or not re.fullmatch(pattern, value):
        raise InvalidBindingError(f"{where}.{field}: expected {expected}, got {value!r}")
    return value


def _role_session_name(value: Any, where: str) -> RoleSessionName | None:
    if value is None:
        return None
    expected = (
        f"expected {{source: {c.SESSION_NAME_FROM_POD}}} or {{source: {c.SESSION_NAME_FIXED}, name: NAME}}; "
        "leave it out to send no name (accepted by every profile)"
    )
    if not isinstance(value, Mapping):
        raise InvalidBindingError(f"{where}: {expected}, got {value!r}")
    source, name = value.get("source"), value.get("name")
    if source == c.SESSION_NAME_FROM_POD and name is None:
        return RoleSessionName(source)
    if source == c.SESSION_NAME_FIXED and isinstance(name, str) and re.fullmatch(ROLE_SESSION_NAME_PATTERN, name):
        return RoleSessionName(source, name)
    if source == c.SESSION_NAME_FIXED:
        raise InvalidBindingError(
            f"{where}.name: expected 2 to 64 of the characters A-Z a-z 0-9 + = , . @ _ -, got {name!r}"
        )
    raise InvalidBindingError(f"{where}: {expected}, got {dict(value)!r}")


def _missed_pods(value: Any, where: str) -> str:
    if value not in (c.MISSED_PODS_RECREATE, c.MISSED_PODS_REPORT):
        raise InvalidBindingError(f"{where}: expected {c.MISSED_PODS_RECREATE} or {c.MISSED_PODS_REPORT}, got {value!r}")
    return str(value)


def _boolean(spec: Mapping[str, Any], field: str, default: bool, where: str) -> bool:
    value = spec.get(field, default)
    if not isinstance(value, bool):
        raise InvalidBindingError(f"{where}.{field}: expected true or false, got {value!r}")
    return value
def _checked_name(parent: Mapping[str, Any], field: str, where: str) -> str:
    problem = name_problem(parent.get(field))
    if problem:
        raise InvalidBindingError(f"{where}.{field}: {problem}")
    return str(parent[field])


def _checked_key(parent: Mapping[str, Any], field: str, where: str) -> str:
    problem = key_problem(parent.get(field))
    if problem:
        raise InvalidBindingError(f"{where}.{field}: {problem}")
    return str(parent[field])


def _certificate(
    certificate: Any, name: str, namespace: str, where: str
) -> IssuedCertificate | SecretCertificate:
    if not isinstance(certificate, Mapping):
        raise InvalidBindingError(f"{where}: missing; set issuerRef or secretRef")
    issuer, secret = certificate.get("issuerRef"), certificate.get("secretRef")
    if (issuer is None) == (secret is None):
        raise InvalidBindingError(f"{where}: exactly one of issuerRef and secretRef must be set")
    identity = certificate.get("identity", c.IDENTITY_SHARED)
    if identity not in c.IDENTITIES:
        raise InvalidBindingError(f"{where}.identity: expected one of {', '.join(c.IDENTITIES)}, got {identity!r}")
    per_pod = identity == c.IDENTITY_POD
    if per_pod and secret is not None:
        raise InvalidBindingError(
            f"{where}.identity: Pod needs issuerRef (each pod's certificate is issued by it), not secretRef"
        )
    if per_pod and "renewBefore" in certificate:
        raise InvalidBindingError(
            f"{where}.renewBefore: does not apply with identity Pod (each sidecar renews its certificate at about "
            "two thirds of its lifetime)"
        )
    if secret is not None:
        if not isinstance(secret, Mapping):
            raise InvalidBindingError(f"{where}.secretRef: expected an object with name, got {secret!r}")
        issuer_only = [k for k in ("commonName", "organizationalUnits", "duration", "renewBefore", "privateKey")
                       if k in certificate]
        if issuer_only:
            raise InvalidBindingError(f"{where}: {', '.join(issuer_only)} apply only with issuerRef")
        if not secret.get("name"):
            raise InvalidBindingError(f"{where}.secretRef.name: expected the name of a Secret")
        _checked_name(secret, "name", f"{where}.secretRef")
        for key in ("intermediatesKey", "passphraseKey"):
            if secret.get(key) is not None:
                _checked_key(secret, key, f"{where}.secretRef")
        return SecretCertificate(
            secret_name=secret["name"],
            intermediates_key=secret.get("intermediatesKey"),
            passphrase_key=secret.get("passphraseKey"),
        )
    if not isinstance(issuer, Mapping):
        raise InvalidBindingError(f"{where}.issuerRef: expected an object with name, kind and group, got {issuer!r}")
    if not issuer.get("name"):
        raise InvalidBindingError(f"{where}.issuerRef.name: expected the name of a cert-manager issuer")
    _checked_name(issuer, "name", f"{where}.issuerRef")
    algorithm = (certificate.get("privateKey") or {}).get("algorithm", c.DEFAULT_PRIVATE_KEY_ALGORITHM)
    if algorithm not in c.PRIVATE_KEY_SIZES:
        raise InvalidBindingError(
            f"{where}.privateKey.algorithm: expected one of {', '.join(c.PRIVATE_KEY_SIZES)}, got {algorithm!r}"
        )
    common_name = certificate.get("commonName") or f"{name}.{namespace}"
    if len(common_name) > c.MAX_COMMON_NAME_LENGTH:
        told = "" if certificate.get("commonName") else f"the default <binding>.<namespace>, {common_name}, is "
        raise InvalidBindingError(
            f"{where}.commonName: {told}{len(common_name)} characters, more than the {c.MAX_COMMON_NAME_LENGTH} "
            "cert-manager allows; set a shorter spec.certificate.commonName"
        )
    duration, renew_before = _durations(
        certificate, where, c.MIN_POD_CERTIFICATE_DURATION if per_pod else c.MIN_CERTIFICATE_DURATION
    )
    return IssuedCertificate(
        issuer=IssuerRef(
            name=issuer["name"],
            kind=issuer.get("kind", c.DEFAULT_ISSUER_KIND),
            group=issuer.get("group", c.DEFAULT_ISSUER_GROUP),
        ),
        common_name=common_name,
        organizational_units=tuple(certificate.get("organizationalUnits") or ()),
        duration=duration,
        renew_before=renew_before,
        private_key_algorithm=algorithm,
        identity=identity,
    )


def _durations(certificate: Mapping[str, Any], where: str, minimum: str) -> tuple[str, str | None]:
    """(duration, renewBefore) within cert-manager's limits (a lifetime of at least `minimum`); duration
    defaults to DEFAULT_CERTIFICATE_DURATION."""
    values: dict[str, float] = {}
    for field in ("duration", "renewBefore"):
        text = certificate.get(field)
        if text is None:
            continue
        try:
            values[field] = duration_seconds(text if isinstance(text, str) else repr(text))
        except ValueError as error:
            raise InvalidBindingError(f"{where}.{field}: {error}") from None
    duration = certificate.get("duration") or c.DEFAULT_CERTIFICATE_DURATION
    lifetime = values.get("duration", duration_seconds(c.DEFAULT_CERTIFICATE_DURATION))
    if lifetime < duration_seconds(minimum):
        whose = "cert-manager's minimum" if minimum == c.MIN_CERTIFICATE_DURATION else "the minimum with identity Pod"
        raise InvalidBindingError(f"{where}.duration: must be at least {minimum} ({whose}), got {duration}")
    renew_before = certificate.get("renewBefore")
    if "renewBefore" in values:
        if values["renewBefore"] < duration_seconds(c.MIN_RENEW_BEFORE):
            raise InvalidBindingError(
                f"{where}.renewBefore: must be at least {c.MIN_RENEW_BEFORE} (cert-manager's minimum), got {renew_before}"
            )
        if values["renewBefore"] >= lifetime:
            raise InvalidBindingError(
                f"{where}.renewBefore: must be shorter than spec.certificate.duration ({duration}), got {renew_before}"
            )
    return duration, renew_before


def _sidecar(sidecar: Mapping[str, Any], where: str) -> SidecarOptions:
    endpoint = sidecar.get("endpoint")
    if endpoint is not None and not (isinstance(endpoint, str) and re.fullmatch(ENDPOINT_PATTERN, endpoint)):
        raise InvalidBindingError(f"{where}.endpoint: expected an http:// or https:// URL, got {endpoint!r}")
    insecure = _boolean(sidecar, "allowInsecureEndpoint", False, where)
    if endpoint is not None and endpoint.startswith("http://") and not insecure:
        raise InvalidBindingError(
            f"{where}.endpoint: {endpoint!r} is plain http, which would carry the session's secret key in clear; "
            "use https:// (with spec.sidecar.caBundle for a private CA), or set spec.sidecar.allowInsecureEndpoint: "
            "true for a test endpoint"
        )
    bundle = sidecar.get("caBundle")
    ca_bundle = None
    if bundle is not None:
        if not bundle.get("configMapName"):
            raise InvalidBindingError(f"{where}.caBundle.configMapName: expected the name of a ConfigMap")
        _checked_name(bundle, "configMapName", f"{where}.caBundle")
        if bundle.get("key") is not None:
            _checked_key(bundle, "key", f"{where}.caBundle")
        ca_bundle = CABundle(bundle["configMapName"], bundle.get("key", c.DEFAULT_CA_BUNDLE_KEY))
    proxy = sidecar.get("proxy") or {}
    if proxy.get("httpsProxy") is not None:
        problem = proxy_problem(proxy["httpsProxy"])
        if problem:
            raise InvalidBindingError(f"{where}.proxy.httpsProxy: {problem}")
    resources = sidecar.get("resources")
    if resources is not None:
        resources_refused = resources_problem(resources)
        if resources_refused:
            field, why = resources_refused
            raise InvalidBindingError(f"{where}.resources{'.' if field else ''}{field}: {why}")
    return SidecarOptions(
        endpoint=endpoint,
        ca_bundle=ca_bundle,
        https_proxy=proxy.get("httpsProxy"),
        no_proxy=proxy.get("noProxy"),
        resources=resources,
    )
