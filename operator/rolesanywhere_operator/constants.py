"""The operator's user-facing contract: every API name, annotation, label, path and default, declared once.

Annotations and labels a user sets:

- `BINDING_ANNOTATION` on a Pod (or a Deployment, StatefulSet or DaemonSet, which copies it into its pod
  template) names the RolesAnywhereBinding, in the pod's namespace, whose role the pod assumes.
- `INJECT_LABEL` (value `INJECT_LABEL_VALUE`) on a Pod opts it in: only labelled pods are sent to the
  webhook. The operator sets it in a Deployment's, StatefulSet's or DaemonSet's pod template together
  with the annotation; a bare Pod or a Job's template needs both.
- `SKIP_CONTAINERS_ANNOTATION` on a Pod lists containers (comma-separated names) that get neither the
  credentials env vars nor the credentials volume.

Everything else here is written by the operator.
"""

from __future__ import annotations

from dataclasses import dataclass

# The sidecar's contract, which the pods the operator builds follow, named here with the rest.
from rolesanywhere_sidecar.contract import (  # noqa: F401
    CREDENTIALS_FILE,
    CREDENTIALS_PATH,
    METRICS_PATH,
    READYZ_PATH,
    TOKEN_FILE,
)
from rolesanywhere_sidecar.settings import Settings as _SidecarSettings

# --- The RolesAnywhereBinding API ------------------------------------------------------------------

GROUP = "rolesanywhere.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
#: How Kubernetes writes a time (metav1.Time: RFC 3339, UTC, whole seconds); status and Events use it.
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
KIND = "RolesAnywhereBinding"
PLURAL = "rolesanywherebindings"

#: Name of the operator as a field manager, in Events and in the managed-by label.
OPERATOR_NAME = "rolesanywhere-operator"

# --- Annotations and labels -------------------------------------------------------------------------

#: Pod/workload annotation (set by the user): the name of the binding to inject, in the same namespace.
BINDING_ANNOTATION = f"{GROUP}/binding"
#: Pod label (set by the user on bare pods and Job templates, by the operator in workload templates): the
#: pod opts in to injection; only pods labelled `true` are sent to the webhook (its objectSelector), so an
#: unavailable webhook holds up no other pod.
INJECT_LABEL = f"{GROUP}/inject"
INJECT_LABEL_VALUE = "true"
#: Pod annotation (set by the user): comma-separated container names left without credentials.
SKIP_CONTAINERS_ANNOTATION = f"{GROUP}/skip-containers"
#: Pod annotation (set by the webhook): the idempotency marker; its value is the binding injected.
#: A pod carrying it is never injected again, so a re-invoked or re-submitted pod keeps one sidecar.
INJECTED_ANNOTATION = f"{GROUP}/injected"
#: Pod label (set by the webhook): the binding the pod was injected for; the binding's status counts
#: the pods selected by it.
INJECTED_LABEL = f"{GROUP}/injected-binding"
#: Pod-template annotation (set by the operator): the binding annotation in this template was copied
#: from the workload, so removing the workload's annotation removes it again (and nothing else).
COPIED_FROM_WORKLOAD_ANNOTATION = f"{GROUP}/binding-from-workload"
#: Binding annotation (set by kopf for the operator): the spec last handled. Its presence means the
#: binding's create handler ran, so a missing Certificate was deleted (and is created again), not pending.
LAST_HANDLED_ANNOTATION = f"{GROUP}/last-handled-configuration"
#: Label on the Certificate and its Secret (set by the operator): the binding they belong to.
BINDING_LABEL = f"{GROUP}/binding-name"
#: Standard label on everything the operator creates.
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
#: Namespace label: `disabled` keeps the webhook away from every pod of the namespace.
INJECTION_NAMESPACE_LABEL = f"{GROUP}/injection"

# Service meshes. Their proxies start after the sidecar (the first init container), but with Istio CNI or
# Linkerd CNI (and with Istio's istio-init, which runs before it) the pod's traffic is already redirected
# to the proxy's ports: the sidecar's CreateSession would go nowhere, nor would the kubelet's probes of
# the sidecar's health port, and the pod never start. The webhook therefore excludes the port the sidecar
# calls out on from the outbound redirect, and its health port from the inbound one, in the mesh's own
# annotations, for pods it sees joining a mesh (the hints below, or the proxy container already there).

#: Pod label or annotation (Istio's, set by the user): `true` asks Istio to inject its proxy (the webhook
#: reads it as a hint that the pod joins an Istio mesh; `false` that it does not).
ISTIO_INJECT_LABEL = "sidecar.istio.io/inject"
#: Pod label (Istio's, set by the user): the Istio revision whose proxy the pod gets (a mesh hint).
ISTIO_REVISION_LABEL = "istio.io/rev"
#: Pod annotation (Linkerd's, set by the user): `enabled` or `ingress` asks Linkerd to inject its proxy
#: (the webhook reads it as a hint that the pod joins a Linkerd mesh).
LINKERD_INJECT_ANNOTATION = "linkerd.io/inject"
#: Pod annotation (Istio's; the webhook adds to it for Istio pods): comma-separated outbound ports left
#: out of the redirect to the proxy. The sidecar's outbound port (443, or that of spec.sidecar.endpoint
#: or of its HTTPS proxy) is added, so every container's traffic to that port bypasses the proxy.
ISTIO_EXCLUDE_OUTBOUND_PORTS_ANNOTATION = "traffic.sidecar.istio.io/excludeOutboundPorts"
#: Pod annotation (Linkerd's; the webhook adds to it for Linkerd pods): comma-separated outbound ports
#: (or ranges) that skip the proxy; the sidecar's outbound port is added, as for Istio.
LINKERD_SKIP_OUTBOUND_PORTS_ANNOTATION = "config.linkerd.io/skip-outbound-ports"
#: Pod annotation (Istio's; the webhook adds to it for Istio pods): comma-separated inbound ports left out
#: of the redirect to the proxy. The sidecar's health port is added, so the kubelet's probes reach the
#: sidecar before the proxy runs (and Prometheus scrapes it without the mesh's mTLS); it serves only
#: /healthz, /readyz and /metrics.
ISTIO_EXCLUDE_INBOUND_PORTS_ANNOTATION = "traffic.sidecar.istio.io/excludeInboundPorts"
#: Pod annotation (Linkerd's; the webhook adds to it for Linkerd pods): comma-separated inbound ports (or
#: ranges) that skip the proxy; the sidecar's health port is added, as for Istio.
LINKERD_SKIP_INBOUND_PORTS_ANNOTATION = "config.linkerd.io/skip-inbound-ports"
ISTIO_PROXY_CONTAINER = "istio-proxy"
LINKERD_PROXY_CONTAINER = "linkerd-proxy"

#: Namespaces the webhook never touches (besides the operator's own and --webhook-excluded-namespaces,
#: added at run time).
EXCLUDED_NAMESPACES = ("kube-system",)

#: API group of kopf's peering objects (ClusterKopfPeering), through which replicas take turns.
KOPF_PEERING_GROUP = "kopf.dev"

# --- cert-manager ------------------------------------------------------------------------------------

CERT_MANAGER_GROUP = "cert-manager.io"
CERT_MANAGER_VERSION = "v1"
#: apiVersion of cert-manager's resources.
CERT_MANAGER_API_VERSION = f"{CERT_MANAGER_GROUP}/{CERT_MANAGER_VERSION}"
CERTIFICATES = "certificates"
CERTIFICATE_REQUESTS = "certificaterequests"
#: Annotation cert-manager puts on each CertificateRequest: the Certificate it is for.
CERT_MANAGER_CERTIFICATE_NAME_ANNOTATION = "cert-manager.io/certificate-name"
#: Annotation cert-manager puts on each CertificateRequest: which revision of its Certificate it issues.
CERT_MANAGER_REVISION_ANNOTATION = "cert-manager.io/certificate-revision"
#: CertificateRequest label (set by the operator on per-pod requests): the uid of the pod it is for.
POD_UID_LABEL = f"{GROUP}/pod-uid"


def certificate_name(binding: str) -> str:
    """Name of the cert-manager Certificate a binding owns."""
    return f"rolesanywhere-{binding}"


def certificate_secret_name(binding: str) -> str:
    """Name of the Secret cert-manager writes for a binding's Certificate."""
    return f"rolesanywhere-{binding}-tls"


# Keys of a kubernetes.io/tls Secret.
TLS_CERT_KEY = "tls.crt"
TLS_KEY_KEY = "tls.key"

# --- The injected pod ---------------------------------------------------------------------------------

#: Name of the injected credentials sidecar container (a native sidecar: the first init container).
SIDECAR_CONTAINER = "rolesanywhere-sidecar"
#: Volume holding the certificate Secret; mounted in the sidecar only.
CERTIFICATE_VOLUME = "rolesanywhere-certificate"
#: In-memory volume the sidecar writes credentials to; mounted read-only in the app containers.
CREDENTIALS_VOLUME = "rolesanywhere-credentials"
#: Projected volume of per-pod identity: the sidecar's service-account token for the identity endpoint and
#: the endpoint's CA bundle (from POD_IDENTITY_CA_ANNOTATION); mounted in the sidecar only.
IDENTITY_VOLUME = "rolesanywhere-identity"
#: Pod annotation (set by the webhook on per-pod identity pods): the identity endpoint's CA bundle (PEM),
#: which the identity volume projects into a file for the sidecar.
POD_IDENTITY_CA_ANNOTATION = f"{GROUP}/identity-ca"
#: Volume holding the CA bundle ConfigMap for the CreateSession endpoint; mounted in the sidecar only.
CA_BUNDLE_VOLUME = "rolesanywhere-ca-bundle"
#: In-memory volume for the credentials files with delivery EndpointOnly; mounted in the sidecar only.
SIDECAR_CREDENTIALS_VOLUME = "rolesanywhere-sidecar-credentials"

#: Where the sidecar sees the certificate Secret.
CERTIFICATE_MOUNT_PATH = "/etc/rolesanywhere/certificate"
#: Where the sidecar sees the CA bundle ConfigMap.
CA_BUNDLE_MOUNT_PATH = "/etc/rolesanywhere/ca"
#: Where the sidecar writes the credentials files with delivery EndpointOnly (outside every path the
#: app containers get mounted).
SIDECAR_CREDENTIALS_MOUNT_PATH = "/var/run/rolesanywhere-sidecar"
#: Size limit of the in-memory credentials volume (three small files).
CREDENTIALS_VOLUME_SIZE = "1Mi"

#: User and group the sidecar runs as (those of the project's image, set explicitly so they are known):
#: the credentials files are readable by this group, which app containers get as a supplemental group
#: when the pod has no fsGroup (an fsGroup already makes the files readable to every container).
SIDECAR_USER_ID = 65532
SIDECAR_GROUP_ID = 65532

#: The oldest API server the operator starts against: native sidecars (init containers with
#: restartPolicy Always) are on by default from this version, and every supported Kubernetes has them.
NATIVE_SIDECAR_MIN_VERSION = (1, 29)

# --- The sidecar's contract (declared in rolesanywhere_sidecar.settings) ------------------------------

_SIDECAR_DEFAULTS = _SidecarSettings()

#: The sidecar's executable in its image.
SIDECAR_EXECUTABLE = "rolesanywhere-sidecar"
#: Directory shared by the sidecar and the app containers (the sidecar's default output directory).
CREDENTIALS_MOUNT_PATH = str(_SIDECAR_DEFAULTS.output_dir)
#: Loopback port of the sidecar's credentials endpoint.
SIDECAR_PORT = _SIDECAR_DEFAULTS.port
#: Port of the sidecar's health listener on every address of the pod (/healthz, /readyz and /metrics;
#: never credentials): the kubelet's probes and Prometheus reach it from the pod network.
SIDECAR_HEALTH_PORT = _SIDECAR_DEFAULTS.health_port
#: Name of the sidecar's declared health port (at most 15 characters), which a PodMonitor selects (the
#: chart's does): distinct from the port names apps commonly use, so no app port is scraped by mistake.
SIDECAR_HEALTH_PORT_NAME = "ra-health"
#: Name of the credentials port, declared only in hostNetwork pods (where it becomes a hostPort).
SIDECAR_CREDENTIALS_PORT_NAME = "ra-credentials"

#: Variables an app container may set that the AWS SDKs' credential chains use before the container
#: credentials endpoint or the credentials file: the webhook warns about each.
OVERRIDING_ENV = ("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE")


# --- Binding spec defaults (mirrored by the CRD's OpenAPI defaults) -----------------------------------

#: spec.delivery (the default): the app's SDKs use the sidecar's loopback endpoint, and the credentials
#: files are in the shared volume too, for tools and scripts that only read files.
DELIVERY_ENDPOINT = "Endpoint"
#: spec.delivery: the loopback endpoint only. The shared volume holds the token alone; the sidecar keeps
#: the credentials files (its restarts' state) in a volume only it mounts.
DELIVERY_ENDPOINT_ONLY = "EndpointOnly"
#: spec.delivery: AWS_SHARED_CREDENTIALS_FILE only. The sidecar writes no token and its endpoint hands
#: out no credentials (it still answers /healthz, /readyz and /metrics on the loopback).
DELIVERY_FILE_ONLY = "FileOnly"
#: The former name of FileOnly, still accepted (and read as FileOnly).
DELIVERY_FILE = "File"
DELIVERIES = (DELIVERY_ENDPOINT, DELIVERY_ENDPOINT_ONLY, DELIVERY_FILE_ONLY)
DELIVERY_ALIASES = {DELIVERY_FILE: DELIVERY_FILE_ONLY}


# --- Env vars the app containers get ------------------------------------------------------------------


@dataclass(frozen=True)
class AppEnvVar:
    """A variable every app container gets, unless it sets a variable of the same group itself."""

    name: str
    #: Containers that set one variable of a group keep their own for the whole group (their own region is
    #: never paired with another default region, their own credentials URI with the sidecar's token).
    group: str
    #: The spec.delivery values that get it.
    deliveries: tuple[str, ...]
    #: A str.format template over port, credentials_path, mount, token_file, credentials_file and region
    #: (injection.build_app_env fills them in).
    value: str
    meaning: str


#: The group whose variables point at credentials; the webhook warns when a container keeps its own.
APP_ENV_CREDENTIALS = "credentials"
_WITH_ENDPOINT = (DELIVERY_ENDPOINT, DELIVERY_ENDPOINT_ONLY)

#: What the app containers get, in this order (README's table is generated from it).
APP_ENV = (
    AppEnvVar("AWS_CONTAINER_CREDENTIALS_FULL_URI", APP_ENV_CREDENTIALS, _WITH_ENDPOINT,
              "http://127.0.0.1:{port}{credentials_path}",
              "the sidecar's loopback credentials endpoint, which the SDKs fetch from and refresh from by themselves"),
    AppEnvVar("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", APP_ENV_CREDENTIALS, _WITH_ENDPOINT, "{mount}/{token_file}",
              "the token the endpoint asks for, which the SDKs read at every fetch"),
    AppEnvVar("AWS_SHARED_CREDENTIALS_FILE", APP_ENV_CREDENTIALS, (DELIVERY_FILE_ONLY,), "{mount}/{credentials_file}",
              "the credentials file the sidecar keeps fresh"),
    AppEnvVar("AWS_REGION", "region", DELIVERIES, "{region}",
              "spec.region, or the trust anchor's region"),
    AppEnvVar("AWS_DEFAULT_REGION", "region", DELIVERIES, "{region}",
              "the same, for the AWS CLI v1 and older SDKs"),
)
DEFAULT_PRIVATE_KEY_ALGORITHM = "ECDSA"
#: Key size per private key algorithm (ECDSA P-256, RSA 2048).
PRIVATE_KEY_SIZES = {"ECDSA": 256, "RSA": 2048}
DEFAULT_CA_BUNDLE_KEY = "ca.crt"
#: Lifetime of a binding's certificate when spec.certificate.duration is unset: short, since deleting a
#: binding revokes nothing (running pods keep the last certificate until it expires). cert-manager renews
#: it at two thirds of its life unless renewBefore says otherwise. (A Go duration, as cert-manager takes.)
DEFAULT_CERTIFICATE_DURATION = "24h"
#: cert-manager's limits (its validating webhook refuses a Certificate beyond them): the certificate's
#: lifetime is at least MIN_CERTIFICATE_DURATION, renewBefore at least MIN_RENEW_BEFORE and shorter than
#: the lifetime, the subject CN at most MAX_COMMON_NAME_LENGTH characters.
MIN_CERTIFICATE_DURATION = "1h"
MIN_RENEW_BEFORE = "5m"
#: spec.certificate.identity (the default): one certificate per binding, in a Secret every pod mounts.
IDENTITY_SHARED = "Shared"
#: spec.certificate.identity: each pod's sidecar makes its own key in memory and gets a certificate of its
#: own from the operator's identity endpoint; no Secret holds a key.
IDENTITY_POD = "Pod"
IDENTITIES = (IDENTITY_SHARED, IDENTITY_POD)
#: Shortest per-pod certificate lifetime: cert-manager sets no minimum on a CertificateRequest, and the
#: sidecar renews at two thirds of the lifetime, so less leaves too little time for a retry.
MIN_POD_CERTIFICATE_DURATION = "2m"
#: Path of the identity endpoint on the operator's webhook server (kopf routes POST /<id> to a handler id).
IDENTITY_HANDLER_ID = "pod-identity"
#: The SPIFFE trust domain of per-pod certificates' URI SAN (spiffe://<domain>/ns/<ns>/sa/<sa>/pod/<pod>)
#: when the operator's --identity-trust-domain is unset.
DEFAULT_IDENTITY_TRUST_DOMAIN = "cluster.local"
MAX_COMMON_NAME_LENGTH = 64
DEFAULT_ISSUER_KIND = "Issuer"
DEFAULT_ISSUER_GROUP = CERT_MANAGER_GROUP
#: spec.missedPods: an opted-in pod running without the sidecar is deleted so its controller recreates it.
MISSED_PODS_RECREATE = "Recreate"
#: spec.missedPods: such a pod is only reported (a Warning Event, status.pods.missed).
MISSED_PODS_REPORT = "Report"
#: spec.roleSessionName.source: each session is named after its pod (the kubelet fills the name in).
SESSION_NAME_FROM_POD = "PodName"
#: spec.roleSessionName.source: every session gets spec.roleSessionName.name.
SESSION_NAME_FIXED = "Fixed"

# --- Status -------------------------------------------------------------------------------------------

CONDITION_READY = "Ready"
CONDITION_CERTIFICATE_READY = "CertificateReady"
#: Whether Roles Anywhere accepted a CreateSession the operator made with the binding's certificate.
CONDITION_CREDENTIALS_VERIFIED = "CredentialsVerified"
