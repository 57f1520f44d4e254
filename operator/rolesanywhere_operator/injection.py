"""Pod injection as a pipeline of pure stages: should inject -> (resolve the binding: the handler's I/O)
-> build the sidecar, volumes and env -> the injected pod.

What a pod gets (and why):

- the certificate Secret, mounted in the sidecar only: the app containers never see the private key;
- an in-memory emptyDir the sidecar writes credentials to, mounted read-only in the app containers;
  what it holds depends on spec.delivery: the token and the credentials files (Endpoint), the token
  only (EndpointOnly: the sidecar writes the credentials files, which its restarts read,
  into a second emptyDir only it mounts), or the credentials files only (FileOnly: no token, and the
  sidecar's endpoint hands out no credentials);
- the sidecar as a native sidecar (the first init container, `restartPolicy: Always`, with an httpGet
  startupProbe of /readyz on its health port, declared by name): kubelet starts the app containers, and
  any later init containers, only once credentials exist, and a Job's pod still completes; the same
  request as a readinessProbe keeps the pod un-Ready while its credentials are not valid (no probe spawns
  a process); the sidecar passes the `restricted` Pod Security Standard by itself. (Every supported
  Kubernetes has native sidecars; the operator refuses to start on an older API server, see
  `unsupported_server`.)
- in every app container not listed in the skip-containers annotation: the env vars that point the AWS
  SDKs at the sidecar (or at the credentials file for delivery FileOnly), and the region. They come in
  groups (credentials, region): a container that sets any variable of a group keeps its own setting
  for the whole group. An admission warning names what in a container would win over the sidecar's
  credentials (static keys, a profile, web identity, envFrom, whose contents cannot be seen here).
- without a pod fsGroup, the sidecar's group as a supplemental group of the pod (additive; it chowns no
  volume), so app containers running as any user can read the credentials files (mode 0640);
- the INJECTED_LABEL label and the INJECTED_ANNOTATION marker: a pod carrying the marker is never
  injected again, so a re-invoked webhook or a re-submitted pod keeps exactly one sidecar;
- for a pod joining an Istio or Linkerd mesh, the sidecar's outbound port excluded from the mesh's
  outbound redirect and its health port from the inbound one (see constants: the proxy starts after the
  sidecar), with a warning saying so.

Admission warnings also name what weakens the sidecar's isolation: hostNetwork (the endpoint is on the
node's loopback, the health port on the node's addresses), shareProcessNamespace (app containers can
signal the sidecar), and a container that already has the sidecar's name without the marker (the pod is
left alone).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rolesanywhere_protocol.pod_identity import TOKEN_AUDIENCE, TOKEN_EXPIRATION_SECONDS
from rolesanywhere_sidecar.settings import SETTINGS as SIDECAR
from rolesanywhere_sidecar.settings import Settings as SidecarSettings

from . import constants as c
from .settings import Settings
from .spec import BINDING_NAME_MAX_LENGTH, Binding, IssuedCertificate, SecretCertificate, name_problem


class InjectionError(ValueError):
    """The pod cannot be injected as it is; the message names the stage, the container or the volume."""


@dataclass(frozen=True)
class Decision:
    """The outcome of the should-inject stage; `reason` says why a pod is left alone."""

    inject: bool
    reason: str
    binding: str | None = None
    #: Admission warnings for a pod left alone that asked for injection.
    warnings: tuple[str, ...] = ()


@dataclass
class Injected:
    pod: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


def should_inject(pod: dict[str, Any], namespace: str, excluded_namespaces: tuple[str, ...]) -> Decision:
    """Stage 1: does the webhook touch this pod at all?"""
    metadata = pod.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    binding = annotations.get(c.BINDING_ANNOTATION)
    if namespace in excluded_namespaces:
        return Decision(False, f"namespace {namespace} is excluded from injection")
    if binding is None:
        return Decision(False, f"no {c.BINDING_ANNOTATION} annotation")
    if c.INJECTED_ANNOTATION in annotations:
        return Decision(False, f"already injected (annotation {c.INJECTED_ANNOTATION})")
    spec = pod.get("spec") or {}
    names = {x.get("name") for x in (spec.get("containers") or []) + (spec.get("initContainers") or [])}
    if c.SIDECAR_CONTAINER in names:
        reason = f"already has a container named {c.SIDECAR_CONTAINER}"
        # Without the marker this is not a pod injected before: its author asked for a binding and gets none.
        warning = (
            f"not injected for binding {binding.strip()!r}: the pod already has a container named "
            f"{c.SIDECAR_CONTAINER} but not the {c.INJECTED_ANNOTATION} annotation; rename that container"
        )
        return Decision(False, reason, warnings=(warning,))
    if not binding.strip():
        raise InjectionError(
            f"should-inject: annotation {c.BINDING_ANNOTATION} is empty; expected the name of a {c.KIND}"
        )
    # The name goes into an API path: anything but a binding name (a "/" or a ".." above all) could
    # make the operator read an object of another namespace.
    problem = name_problem(binding.strip(), max_length=BINDING_NAME_MAX_LENGTH)
    if problem:
        raise InjectionError(f"should-inject: annotation {c.BINDING_ANNOTATION}: {problem} (the name of a {c.KIND})")
    return Decision(True, "annotated", binding=binding.strip())


def unsupported_server(version: tuple[int, int]) -> str | None:
    """Why the operator cannot serve an API server of `version` (major, minor); None when it can."""
    if version >= c.NATIVE_SIDECAR_MIN_VERSION:
        return None
    need = ".".join(map(str, c.NATIVE_SIDECAR_MIN_VERSION))
    return (
        f"the API server is Kubernetes {version[0]}.{version[1]}; the operator needs {need} or later, whose "
        "native sidecars (init containers with restartPolicy Always) give the app credentials before it starts"
    )


def inject_pod(pod: dict[str, Any], binding: Binding, settings: Settings, *, identity_ca: str | None = None
               ) -> Injected:
    """Stage 3: the pod with the sidecar, volumes, env, label and marker added (a new dict).

    `identity_ca` is the PEM CA bundle of the operator's identity endpoint, which a per-pod identity
    binding's sidecar needs (InjectionError without it)."""
    per_pod = binding.per_pod
    if per_pod and (identity_ca is None or settings.identity_endpoint_url() is None):
        raise InjectionError(
            f"build: {c.KIND} {binding.name} gives each pod its own certificate (spec.certificate.identity: "
            f"{c.IDENTITY_POD}), and the operator's identity endpoint is not serving: set --identity-url or "
            "--webhook-service"
        )
    pod = copy.deepcopy(pod)
    metadata = pod.setdefault("metadata", {})
    spec = pod.setdefault("spec", {})
    containers = spec.setdefault("containers", [])
    init_containers = spec.get("initContainers") or []
    warnings: list[str] = []

    skip = _skipped_containers(metadata, containers + init_containers, warnings)
    volumes = spec.get("volumes") or []
    taken = {v.get("name") for v in volumes}
    new_volumes = build_volumes(binding, settings)
    clash = sorted(taken & {v["name"] for v in new_volumes})
    if clash:
        raise InjectionError(f"build: the pod already has a volume named {clash[0]}")

    app_env = build_app_env(binding)
    for container in [*containers, *init_containers]:
        if container.get("name") not in skip:
            warnings.extend(_precedence_warnings(container, app_env[0]))
    spec_containers = [
        container if container.get("name") in skip else _with_credentials(container, app_env)
        for container in containers
    ]
    # Init containers after the native sidecar run with credentials.
    spec_init = [
        container if container.get("name") in skip else _with_credentials(container, app_env)
        for container in init_containers
    ]
    sidecar = build_sidecar(binding, settings)
    if spec.get("hostNetwork"):
        # The sidecar takes the node's ports; declared, they become hostPorts, so the scheduler keeps a
        # second such pod off the node instead of letting its sidecar crash-loop on the bind.
        sidecar["ports"] = [
            {"name": c.SIDECAR_CREDENTIALS_PORT_NAME, "containerPort": c.SIDECAR_PORT, "protocol": "TCP"},
            *sidecar["ports"],
        ]
        warnings.append(
            f"the pod uses hostNetwork: the sidecar's endpoint listens on the node's 127.0.0.1:{c.SIDECAR_PORT}, "
            "where every host-network process of the node reaches it (credentials still need the token), its "
            f"health port {c.SIDECAR_HEALTH_PORT} (/healthz, /readyz, /metrics) on every address of the node, "
            "and one such pod per node can run (the ports are declared, so they are hostPorts)"
        )
    if spec.get("shareProcessNamespace"):
        warnings.append(
            "the pod sets shareProcessNamespace: its containers see the sidecar's processes and can signal "
            "them; the sidecar makes itself undumpable, so only a container with CAP_SYS_PTRACE could read its "
            "memory or its private key through /proc"
        )
    spec_init = [sidecar, *spec_init]

    spec["containers"] = spec_containers
    spec["initContainers"] = spec_init
    spec["volumes"] = [*volumes, *new_volumes]
    security = _with_sidecar_group(spec.get("securityContext") or {})
    if security:
        spec["securityContext"] = security
    metadata.setdefault("labels", {})[c.INJECTED_LABEL] = binding.name
    annotations = metadata.setdefault("annotations", {})
    mesh_annotations, mesh_warnings = build_mesh_exclusions(
        metadata, containers + init_containers, outbound_port(binding, settings), c.SIDECAR_HEALTH_PORT
    )
    annotations.update(mesh_annotations)
    warnings.extend(mesh_warnings)
    annotations[c.INJECTED_ANNOTATION] = binding.name
    if per_pod:
        annotations[c.POD_IDENTITY_CA_ANNOTATION] = identity_ca
    return Injected(pod=pod, warnings=warnings)



def outbound_port(binding: Binding, settings: Settings) -> int:
    """The TCP port the sidecar's CreateSession calls go to: its HTTPS proxy's, else the endpoint's."""
    target = (
        binding.sidecar.https_proxy
        or settings.default_https_proxy
        or binding.sidecar.endpoint
        or settings.default_endpoint
    )
    if not target:
        return 443  # the regional endpoints are all HTTPS on the default port
    parts = urlsplit(target)
    return parts.port or (80 if parts.scheme == "http" else 443)


def build_mesh_exclusions(
    metadata: dict[str, Any], containers: list[dict[str, Any]], outbound: int, inbound: int
) -> tuple[dict[str, str], list[str]]:
    """The mesh annotations that let the sidecar's `outbound` port and its `inbound` (health) port bypass
    the mesh proxy's redirects, and warnings saying what was added; nothing for a pod joining no mesh we
    know or already excluding them."""
    labels = metadata.get("labels") or {}
    annotations = metadata.get("annotations") or {}
    names = {x.get("name") for x in containers}
    istio_hint = labels.get(c.ISTIO_INJECT_LABEL, annotations.get(c.ISTIO_INJECT_LABEL))
    istio = c.ISTIO_PROXY_CONTAINER in names or (
        str(istio_hint).lower() == "true" or (c.ISTIO_REVISION_LABEL in labels and str(istio_hint).lower() != "false")
    )
    linkerd = c.LINKERD_PROXY_CONTAINER in names or annotations.get(c.LINKERD_INJECT_ANNOTATION) in ("enabled", "ingress")
    added: dict[str, str] = {}
    warnings: list[str] = []
    out_why = (
        f"so the sidecar reaches Roles Anywhere before the mesh proxy runs; every container's outbound traffic "
        f"to port {outbound} bypasses the proxy"
    )
    in_why = (
        f"so the kubelet's probes reach the sidecar before the mesh proxy runs; traffic to the pod's port "
        f"{inbound} (the sidecar's /healthz, /readyz and /metrics) bypasses the proxy"
    )
    for mesh, present, annotation, port, why in (
        ("Istio", istio, c.ISTIO_EXCLUDE_OUTBOUND_PORTS_ANNOTATION, outbound, out_why),
        ("Istio", istio, c.ISTIO_EXCLUDE_INBOUND_PORTS_ANNOTATION, inbound, in_why),
        ("Linkerd", linkerd, c.LINKERD_SKIP_OUTBOUND_PORTS_ANNOTATION, outbound, out_why),
        ("Linkerd", linkerd, c.LINKERD_SKIP_INBOUND_PORTS_ANNOTATION, inbound, in_why),
    ):
        if not present:
            continue
        merged = _with_port(annotations.get(annotation), port)
        if merged == annotations.get(annotation):
            continue
        added[annotation] = merged
        warnings.append(f"the pod joins the {mesh} mesh: annotation {annotation} now includes {port}, {why}")
    return added, warnings


def _with_port(ports: str | None, port: int) -> str:
    """A comma-separated port list (items may be ranges such as 4000-4100) that covers `port`."""
    items = [item.strip() for item in (ports or "").split(",") if item.strip()]
    for item in items:
        low, _, high = item.partition("-")
        if low.isdigit() and (high or low).isdigit() and int(low) <= port <= int(high or low):
            return ports or ""
    return ",".join([*items, str(port)])


def build_volumes(binding: Binding, settings: Settings) -> list[dict[str, Any]]:
    volumes: list[dict[str, Any]] = [
        _identity_volume() if binding.per_pod else
        {"name": c.CERTIFICATE_VOLUME, "secret": {"secretName": binding.secret_name}},
        {"name": c.CREDENTIALS_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": c.CREDENTIALS_VOLUME_SIZE}},
    ]
    if binding.delivery == c.DELIVERY_ENDPOINT_ONLY:
        volumes.append(
            {
                "name": c.SIDECAR_CREDENTIALS_VOLUME,
                "emptyDir": {"medium": "Memory", "sizeLimit": c.CREDENTIALS_VOLUME_SIZE},
            }
        )
    bundle = _ca_bundle(binding, settings)
    if bundle is not None:
        name, key = bundle
        volumes.append({"name": c.CA_BUNDLE_VOLUME, "configMap": {"name": name, "items": [{"key": key, "path": key}]}})
    return volumes


#: Where the sidecar of a per-pod identity pod finds its service-account token (the sidecar's default, so
#: its image and the pod agree) and, next to it, the identity endpoint's CA bundle.
_IDENTITY_TOKEN_FILE = SidecarSettings().identity_token_file
IDENTITY_MOUNT_PATH = str(_IDENTITY_TOKEN_FILE.parent)
IDENTITY_CA_FILE = "ca.crt"


def _identity_volume() -> dict[str, Any]:
    """The sidecar's own projected token (audience and lifetime of the identity exchange; the kubelet
    rotates it) and the CA bundle the webhook put in the pod's annotation. No Secret: nothing holds a key."""
    return {"name": c.IDENTITY_VOLUME, "projected": {"sources": [
        {"serviceAccountToken": {"audience": TOKEN_AUDIENCE, "expirationSeconds": TOKEN_EXPIRATION_SECONDS,
                                 "path": _IDENTITY_TOKEN_FILE.name}},
        {"downwardAPI": {"items": [{"path": IDENTITY_CA_FILE, "fieldRef": {
            "fieldPath": f"metadata.annotations['{c.POD_IDENTITY_CA_ANNOTATION}']"}}]}},
    ]}}


#: Sidecar settings written into every injected pod even where they are the sidecar's defaults: the app
#: containers' env and mounts depend on them, so a sidecar image with other defaults cannot break the pod.
PINNED_SIDECAR_SETTINGS = ("output_dir", "port", "health_port", "session_duration")
#: The sidecar's key algorithm for each spec.certificate.privateKey.algorithm of a per-pod binding.
POD_KEY_ALGORITHMS = {"ECDSA": "ecdsa-p256", "RSA": "rsa-2048"}


def build_sidecar_settings(binding: Binding, settings: Settings) -> SidecarSettings:
    """What the injected sidecar is to do, as its own typed settings (rendered to its env by the caller).

    A pod-named role session name is not among them: the kubelet fills it in (build_sidecar_env)."""
    cert_dir = Path(c.CERTIFICATE_MOUNT_PATH)
    secret = binding.certificate if isinstance(binding.certificate, SecretCertificate) else None
    bundle = _ca_bundle(binding, settings)
    endpoint = binding.sidecar.endpoint or settings.default_endpoint
    session_name = binding.role_session_name
    if isinstance(binding.certificate, IssuedCertificate) and binding.certificate.per_pod:
        identity: dict[str, Any] = {
            "identity_url": settings.identity_endpoint_url(),
            "identity_ca_bundle": Path(IDENTITY_MOUNT_PATH) / IDENTITY_CA_FILE,
            "identity_token_file": _IDENTITY_TOKEN_FILE,
            "key_algorithm": POD_KEY_ALGORITHMS[binding.certificate.private_key_algorithm],
        }
    else:
        identity = {
            "certificate": cert_dir / c.TLS_CERT_KEY,
            "private_key": cert_dir / c.TLS_KEY_KEY,
        }
    return SidecarSettings(
        **identity,
        intermediates=cert_dir / secret.intermediates_key if secret and secret.intermediates_key else None,
        private_key_passphrase_file=cert_dir / secret.passphrase_key if secret and secret.passphrase_key else None,
        trust_anchor_arn=binding.trust_anchor_arn,
        profile_arn=binding.profile_arn,
        role_arn=binding.role_arn,
        region=binding.trust_anchor_region,
        endpoint=endpoint.rstrip("/") if endpoint else None,
        session_duration=binding.session_duration,
        role_session_name=(
            session_name.name if session_name is not None and session_name.source == c.SESSION_NAME_FIXED else None
        ),
        ca_bundle=Path(c.CA_BUNDLE_MOUNT_PATH) / bundle[1] if bundle is not None else None,
        with_proxy=bool(binding.sidecar.https_proxy or settings.default_https_proxy),
        output_dir=Path(c.CREDENTIALS_MOUNT_PATH),
        credentials_dir=(
            Path(c.SIDECAR_CREDENTIALS_MOUNT_PATH) if binding.delivery == c.DELIVERY_ENDPOINT_ONLY else None
        ),
        no_credentials_endpoint=binding.delivery == c.DELIVERY_FILE_ONLY,
        port=c.SIDECAR_PORT,
        health_port=c.SIDECAR_HEALTH_PORT,
    )


def build_sidecar_env(binding: Binding, settings: Settings) -> list[dict[str, Any]]:
    """The sidecar's env: its settings (rendered as rolesanywhere_sidecar.settings reads them), then what
    only the kubelet or the proxy's users know."""
    # The token's path is the identity volume's mount: pinned like the other paths the pod depends on.
    pinned = (*PINNED_SIDECAR_SETTINGS, "identity_token_file") if binding.per_pod else PINNED_SIDECAR_SETTINGS
    rendered = SIDECAR.render_env(build_sidecar_settings(binding, settings), command="serve", always=pinned)
    env: list[dict[str, Any]] = [{"name": name, "value": value} for name, value in rendered.items()]
    session_name = binding.role_session_name
    if session_name is not None and session_name.source == c.SESSION_NAME_FROM_POD:
        # The pod's own name: unknown at admission for generateName pods, so the kubelet fills it in.
        env.append({"name": SIDECAR.env("role_session_name"), "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}})
    https_proxy = binding.sidecar.https_proxy or settings.default_https_proxy
    no_proxy = binding.sidecar.no_proxy or settings.default_no_proxy
    if https_proxy:
        env.append({"name": "HTTPS_PROXY", "value": https_proxy})
        if no_proxy:
            env.append({"name": "NO_PROXY", "value": no_proxy})
    return env


def build_sidecar(binding: Binding, settings: Settings) -> dict[str, Any]:
    """The long-running sidecar, a native sidecar: an init container with restartPolicy Always."""
    container: dict[str, Any] = {
        "name": c.SIDECAR_CONTAINER,
        "image": settings.sidecar_image,
        "imagePullPolicy": settings.sidecar_image_pull_policy,
        "command": [c.SIDECAR_EXECUTABLE, "serve"],
        "env": build_sidecar_env(binding, settings),
        # Only the health port: the credentials endpoint is on the pod's loopback, which nothing outside
        # the pod reaches (see inject_pod for hostNetwork pods, whose ports are the node's).
        "ports": [{"name": c.SIDECAR_HEALTH_PORT_NAME, "containerPort": c.SIDECAR_HEALTH_PORT, "protocol": "TCP"}],
        "resources": _resources(binding, settings),
        "securityContext": _SIDECAR_SECURITY_CONTEXT,
        "volumeMounts": _sidecar_mounts(binding, settings),
    }
    # Ready only while the served credentials are valid (for at least a minute more): a pod whose sidecar
    # cannot refresh them leaves its Service's endpoints instead of failing its AWS calls.
    container["readinessProbe"] = _READINESS_PROBE
    container["restartPolicy"] = "Always"
    container["startupProbe"] = _STARTUP_PROBE
    return copy.deepcopy(container)


def app_env_fields(region: str) -> dict[str, object]:
    """What the templates of constants.APP_ENV are filled in with."""
    return {"port": c.SIDECAR_PORT, "credentials_path": c.CREDENTIALS_PATH, "mount": c.CREDENTIALS_MOUNT_PATH,
            "token_file": c.TOKEN_FILE, "credentials_file": c.CREDENTIALS_FILE, "region": region}


def build_app_env(binding: Binding) -> list[list[dict[str, str]]]:
    """What every app container gets (constants.APP_ENV), in groups, the credentials group first."""
    fields = app_env_fields(binding.app_region)
    groups: dict[str, list[dict[str, str]]] = {c.APP_ENV_CREDENTIALS: []}
    for variable in c.APP_ENV:
        if binding.delivery in variable.deliveries:
            value = variable.value.format(**fields)
            groups.setdefault(variable.group, []).append({"name": variable.name, "value": value})
    return list(groups.values())


#: The sidecar's containers pass the `restricted` Pod Security Standard on their own (non-root, no privilege
#: escalation, ALL capabilities dropped, the runtime's default seccomp profile), so injecting them never
#: makes a compliant pod non-compliant.
_SIDECAR_SECURITY_CONTEXT = {
    "runAsNonRoot": True,
    "runAsUser": c.SIDECAR_USER_ID,
    "runAsGroup": c.SIDECAR_GROUP_ID,
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}

#: What both probes ask: the sidecar's /readyz (credentials served, and written, valid for a minute more) on
#: its health port, by name; an HTTP request the sidecar answers from memory, where an exec probe would
#: start a Python process each time.
_READYZ = {"httpGet": {"path": c.READYZ_PATH, "port": c.SIDECAR_HEALTH_PORT_NAME, "scheme": "HTTP"}}
#: Every second, so the app starts within a second of the first credentials; the sidecar is restarted after
#: two minutes without them (its log says why: the binding's status and Troubleshooting have the causes).
_STARTUP_PROBE = {**_READYZ, "periodSeconds": 1, "timeoutSeconds": 2, "failureThreshold": 120}
#: Every 10 s, not Ready after three failures in a row (30 s, well within the minute /readyz keeps in hand).
_READINESS_PROBE = {**_READYZ, "periodSeconds": 10, "timeoutSeconds": 2, "failureThreshold": 3}


def _resources(binding: Binding, settings: Settings) -> dict[str, Any]:
    if binding.sidecar.resources:
        return copy.deepcopy(dict(binding.sidecar.resources))
    return settings.sidecar_resource_requirements()


def _ca_bundle(binding: Binding, settings: Settings) -> tuple[str, str] | None:
    if binding.sidecar.ca_bundle is not None:
        return (binding.sidecar.ca_bundle.config_map, binding.sidecar.ca_bundle.key)
    return settings.default_ca_bundle


def _sidecar_mounts(binding: Binding, settings: Settings) -> list[dict[str, Any]]:
    mounts: list[dict[str, Any]] = [
        {"name": c.IDENTITY_VOLUME, "mountPath": IDENTITY_MOUNT_PATH, "readOnly": True} if binding.per_pod else
        {"name": c.CERTIFICATE_VOLUME, "mountPath": c.CERTIFICATE_MOUNT_PATH, "readOnly": True},
        {"name": c.CREDENTIALS_VOLUME, "mountPath": c.CREDENTIALS_MOUNT_PATH},
    ]
    if binding.delivery == c.DELIVERY_ENDPOINT_ONLY:
        mounts.append({"name": c.SIDECAR_CREDENTIALS_VOLUME, "mountPath": c.SIDECAR_CREDENTIALS_MOUNT_PATH})
    if _ca_bundle(binding, settings) is not None:
        mounts.append({"name": c.CA_BUNDLE_VOLUME, "mountPath": c.CA_BUNDLE_MOUNT_PATH, "readOnly": True})
    return mounts


def _precedence_warnings(container: dict[str, Any], credentials: list[dict[str, str]]) -> list[str]:
    """What in the container's own env would win over the sidecar's credentials in the SDKs' chain."""
    name = container.get("name")
    own = [e.get("name") for e in container.get("env") or []]
    warnings = [
        f"container {name} sets {variable}, which the AWS SDKs use before the sidecar's credentials"
        for variable in c.OVERRIDING_ENV if variable in own
    ]
    ours = [e["name"] for e in credentials]
    kept = [variable for variable in ours if variable in own]
    if kept:
        warnings.append(
            f"container {name} sets {', '.join(kept)} itself, so it gets none of {', '.join(ours)} from the sidecar"
        )
    if container.get("envFrom"):
        warnings.append(
            f"container {name} has envFrom: a variable there such as {c.OVERRIDING_ENV[0]} would be used before "
            "the sidecar's credentials"
        )
    return warnings


def _with_credentials(container: dict[str, Any], app_env: list[list[dict[str, str]]]) -> dict[str, Any]:
    container = copy.deepcopy(container)
    name = container.get("name")
    mounts = container.get("volumeMounts") or []
    for mount in mounts:
        if mount.get("mountPath", "").rstrip("/") == c.CREDENTIALS_MOUNT_PATH:
            raise InjectionError(
                f"build: container {name} already mounts volume {mount.get('name')} at {c.CREDENTIALS_MOUNT_PATH}, "
                "where the credentials go; list it in the "
                f"{c.SKIP_CONTAINERS_ANNOTATION} annotation or move that mount"
            )
    env = container.get("env") or []
    already = {e.get("name") for e in env}
    added = [e for group in app_env if not already & {e["name"] for e in group} for e in group]
    container["env"] = [*env, *copy.deepcopy(added)]
    container["volumeMounts"] = [
        *mounts,
        {"name": c.CREDENTIALS_VOLUME, "mountPath": c.CREDENTIALS_MOUNT_PATH, "readOnly": True},
    ]
    return container


def _with_sidecar_group(security: dict[str, Any]) -> dict[str, Any]:
    """The pod securityContext letting app containers read the sidecar's files (group-readable)."""
    groups = security.get("supplementalGroups") or []
    if security.get("fsGroup") is not None or c.SIDECAR_GROUP_ID in groups:
        return security  # an fsGroup already makes the shared volume's files the pod's group
    return {**security, "supplementalGroups": [*groups, c.SIDECAR_GROUP_ID]}


def _skipped_containers(metadata: dict[str, Any], containers: list[dict[str, Any]], warnings: list[str]) -> set[str]:
    text = (metadata.get("annotations") or {}).get(c.SKIP_CONTAINERS_ANNOTATION, "")
    skip = {name.strip() for name in text.split(",") if name.strip()}
    unknown = sorted(skip - {x.get("name") for x in containers})
    if unknown:
        warnings.append(f"{c.SKIP_CONTAINERS_ANNOTATION} names containers the pod does not have: {', '.join(unknown)}")
    return skip
