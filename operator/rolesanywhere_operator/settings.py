"""Every setting of the operator, declared once: flag, environment variable, default and meaning.

Each field of `Settings` is one setting. Its flag is `--<name-with-dashes>` and its environment variable
`ROLESANYWHERE_OPERATOR_<NAME_UPPER_SNAKE>`. Precedence: flag > environment variable > default.
Precedence for what a pod's sidecar gets: the binding's spec.sidecar > these operator defaults.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rolesanywhere_settings import (
    Declaration,
    SettingsError,
    choice,
    optional_text,
    port,
    seconds,
    setting,
    switch,
    text,
)

from .constants import DEFAULT_CA_BUNDLE_KEY, DEFAULT_IDENTITY_TRUST_DOMAIN, IDENTITY_HANDLER_ID
from .spec import (
    NAMESPACE_MAX_LENGTH,
    NAMESPACE_PATTERN,
    key_problem,
    name_problem,
    proxy_problem,
    resources_problem,
)

__all__ = ["SETTINGS", "Settings", "SettingsError", "resolve"]

ENV_PREFIX = "ROLESANYWHERE_OPERATOR_"


def _resources(value: str) -> str:
    try:
        parsed = json.loads(value)
    except ValueError:
        raise ValueError(f'expected JSON like {{"requests": {{"cpu": "10m"}}}}, got {value!r}') from None
    problem = resources_problem(parsed)
    if problem:
        field, why = problem
        raise ValueError(f"{field}: {why}" if field else f"expected a JSON object with requests and/or limits, got {value!r}")
    return json.dumps(parsed, sort_keys=True)


def _proxy(value: str) -> str | None:
    if not value.strip():
        return None
    problem = proxy_problem(value.strip())
    if problem:
        raise ValueError(problem)
    return value.strip()


def _config_map_key(value: str) -> tuple[str, str] | None:
    if not value.strip():
        return None
    name, _, key = value.strip().partition("/")
    if not name:
        raise ValueError(f"expected CONFIGMAP or CONFIGMAP/KEY, got {value!r}")
    key = key or DEFAULT_CA_BUNDLE_KEY
    problem = name_problem(name) or key_problem(key)
    if problem:
        raise ValueError(f"expected CONFIGMAP or CONFIGMAP/KEY: {problem}")
    return (name, key)


def _https_url(value: str) -> str | None:
    if not value.strip():
        return None
    if not re.fullmatch(r"https://[^/\s]+(/\S*)?", value.strip()):
        raise ValueError(f"expected an https:// URL, got {value!r}")
    return value.strip().rstrip("/")


def _trust_domain(value: str) -> str:
    # SPIFFE: a trust domain is lowercase letters, digits, dots, dashes and underscores.
    if not re.fullmatch(r"[a-z0-9._-]{1,255}", value):
        raise ValueError(f"expected a SPIFFE trust domain (lowercase letters, digits, '.', '-', '_'), got {value!r}")
    return value


def _namespaces(value: str) -> tuple[str, ...] | None:
    names = tuple(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))
    for name in names:
        if not re.fullmatch(NAMESPACE_PATTERN, name) or len(name) > NAMESPACE_MAX_LENGTH:
            raise ValueError(f"expected comma-separated namespace names, got {name!r}")
    return names or None


def _cluster_issuers(value: str) -> tuple[str, ...] | None:
    names = tuple(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))
    for name in names:
        problem = None if name == ANY_CLUSTER_ISSUER else name_problem(name)
        if problem:
            raise ValueError(f"expected comma-separated ClusterIssuer names or {ANY_CLUSTER_ISSUER}: {problem}")
    return names or None


#: In --allowed-cluster-issuers: every ClusterIssuer (any binding creator may then mint from any of them).
ANY_CLUSTER_ISSUER = "*"


DEFAULT_SIDECAR_RESOURCES = '{"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "64Mi"}}'


@dataclass(frozen=True)
class Settings:
    # --- The injected sidecar ---
    sidecar_image: str = setting(
        "rolesanywhere-sidecar:0.1.0", "image of the injected credentials sidecar", text
    )
    sidecar_image_pull_policy: str = setting(
        "IfNotPresent", "imagePullPolicy of the sidecar", choice("Always", "IfNotPresent", "Never")
    )
    sidecar_resources: str = setting(
        DEFAULT_SIDECAR_RESOURCES, "sidecar resources as JSON, unless the binding sets spec.sidecar.resources",
        _resources,
    )
    default_endpoint: str | None = setting(
        None, "CreateSession endpoint URL for bindings that set none (default the regional endpoint)",
        optional_text,
    )
    default_ca_bundle: tuple[str, str] | None = setting(
        None, "CONFIGMAP[/KEY] in the pod's namespace trusted for the endpoint, for bindings that set none",
        _config_map_key, render=lambda bundle: "/".join(bundle),
    )
    default_https_proxy: str | None = setting(
        None, "HTTPS proxy for the sidecar, for bindings that set none (no user:password@ in it)", _proxy
    )
    default_no_proxy: str | None = setting(None, "NO_PROXY for the sidecar, for bindings that set none", optional_text)
    # --- The admission webhook ---
    webhook_listen_address: str = setting("0.0.0.0", "address the webhook server listens on", text)
    webhook_port: int = setting(9443, "port of the webhook server (0 picks a free port)", port)
    webhook_host: str | None = setting(
        None, "host name or IP in the webhook URL registered with the API server (out-of-cluster runs)",
        optional_text,
    )
    webhook_service: str | None = setting(
        None, "NAMESPACE/NAME of the Service in front of the webhook (in-cluster runs; overrides the URL)",
        optional_text,
    )
    webhook_cert_file: str | None = setting(None, "PEM serving certificate of the webhook (reloaded on change)", optional_text)
    webhook_key_file: str | None = setting(None, "PEM private key of the webhook's serving certificate", optional_text)
    webhook_ca_file: str | None = setting(
        None, "PEM CA bundle the API server trusts for the webhook; written into the webhook configuration", optional_text
    )
    webhook_reload_interval: float = setting(
        10.0, "seconds between checks of the serving certificate files for a renewal (then reloaded)", seconds
    )
    webhook_configuration: str = setting(
        "rolesanywhere-operator", "name of the MutatingWebhookConfiguration the operator keeps", text
    )
    # Fail: a pod that asked for a role never starts silently without credentials, and a pod naming a
    # missing binding is always refused. Only pods labelled rolesanywhere.dev/inject=true are sent to the
    # webhook, so while it is down every other pod (the control plane's, cert-manager's, the operator's
    # own) is still created, and Fail cannot deadlock the cluster.
    webhook_failure_policy: str = setting(
        "Fail", "failurePolicy of the pod webhook: Fail (no pod starts without its credentials) or Ignore",
        choice("Fail", "Ignore"),
    )
    webhook_owner_cluster_role: str | None = setting(
        None,
        "ClusterRole made the owner of the webhook configuration, so deleting it (helm uninstall) removes "
        "the configuration too",
        optional_text,
    )
    webhook_excluded_namespaces: tuple[str, ...] | None = setting(
        None,
        "comma-separated namespaces whose pods the webhook never sees, besides kube-system and the operator's "
        "own (e.g. cert-manager, whose pods the operator's serving certificate depends on)",
        _namespaces,
    )
    operator_namespace: str | None = setting(
        None, "namespace the operator runs in; the webhook never touches it", optional_text
    )
    # --- Per-pod identity (spec.certificate.identity: Pod): served on the webhook's server ---
    identity_url: str | None = setting(
        None,
        "URL at which sidecars reach the identity endpoint (default: the webhook Service's, else the webhook "
        "server's URL, path /pod-identity); its host must be in the serving certificate",
        _https_url,
    )
    identity_trust_domain: str = setting(
        DEFAULT_IDENTITY_TRUST_DOMAIN,
        "SPIFFE trust domain of per-pod certificates' URI SAN (spiffe://DOMAIN/ns/NS/sa/SA/pod/POD)",
        _trust_domain,
    )
    # --- Reconciliation ---
    resync_interval: float = setting(
        60.0, "seconds between full status refreshes of each binding (events refresh sooner)", seconds
    )
    # A ClusterIssuer signs for every namespace: a binding creator who may use it mints certificates from
    # that CA. So none is usable unless a cluster admin names it here.
    allowed_cluster_issuers: tuple[str, ...] | None = setting(
        None,
        f"comma-separated ClusterIssuers bindings may name in issuerRef ({ANY_CLUSTER_ISSUER}: any); none when "
        "unset, namespaced Issuers are always allowed",
        _cluster_issuers,
    )
    # --- Verification: one real CreateSession per certificate (verification.py) ---
    verify_credentials: bool = setting(
        True,
        "check each binding's certificate with one real CreateSession after every issuance, renewal and spec "
        "change (CredentialsVerified condition); off where the operator may not reach the endpoint",
        switch,
    )
    verify_interval: float = setting(
        3600.0, "seconds after which a binding's verification is repeated though nothing changed here", seconds
    )
    verify_rate: float = setting(1.0, "verification calls per second, at most, across all bindings", seconds)
    # --- Process ---
    peering: str | None = setting(
        None,
        "name of the ClusterKopfPeering through which replicas agree that one reconciles at a time "
        "(created if missing); unset runs standalone",
        optional_text,
    )
    liveness_endpoint: str | None = setting(
        None, "URL the liveness probe endpoint listens on, e.g. http://0.0.0.0:8080/healthz", optional_text
    )
    log_format: str = setting("full", "log line format: plain, full or json", choice("plain", "full", "json"))
    log_level: str = setting("info", "lowest level logged: debug, info or warning", choice("debug", "info", "warning"))

    def identity_endpoint_url(self) -> str | None:
        """Where sidecars reach the identity endpoint: --identity-url, else through the webhook's Service."""
        if self.identity_url or not self.webhook_service:
            return self.identity_url
        namespace, _, rest = self.webhook_service.partition("/")
        name, _, service_port = rest.partition(":")
        return f"https://{name}.{namespace}.svc:{service_port or 443}/{IDENTITY_HANDLER_ID}"

    def cluster_issuer_allowed(self, name: str) -> bool:
        allowed = self.allowed_cluster_issuers or ()
        return ANY_CLUSTER_ISSUER in allowed or name in allowed

    def sidecar_resource_requirements(self) -> dict[str, Any]:
        """The sidecar's default resources as a container's `resources` object."""
        requirements: dict[str, Any] = json.loads(self.sidecar_resources)
        return requirements


#: The operator's settings: flags, environment, parsing and the reference table.
SETTINGS: Declaration[Settings] = Declaration(Settings, ENV_PREFIX)


def resolve(flags: Mapping[str, object], environ: Mapping[str, str]) -> Settings:
    """Settings from parsed flags (text), the environment and the defaults; SettingsError names the source."""
    settings = SETTINGS.resolve(flags, environ)
    if (settings.webhook_cert_file is None) != (settings.webhook_key_file is None):
        raise SettingsError("--webhook-cert-file and --webhook-key-file must be given together")
    return settings
