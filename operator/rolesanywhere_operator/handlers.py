"""Thin kopf adapters: each handler gathers its input and calls the pure code or the Reconciler.

All handlers live in `registry`, which the CLI (or a test's KopfRunner) runs; importing this module
registers nothing globally.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import kopf
from rolesanywhere_protocol.ratelimit import TokenBucket

from . import constants as c
from .admission import Admitted, ReadFailed, Refused, admit, review_response
from .binding_cache import BindingCache
from .identity_endpoint import IdentityEndpoint
from .injection import unsupported_server
from .kube import ApiError, Kube, binding_path, path
from .reconcile import Reconciler
from .resync import resync_forever
from .runtime import Runtime, excluded_namespaces
from .settings import Settings
from .spec import InvalidBindingError
from .status import Event
from .verification import Verifier
from .webhook import (
    IDENTITY_HANDLER_ID,
    INJECT_HANDLER_ID,
    WORKLOAD_HANDLER_ID,
    RegisteringWebhookServer,
    build_webhook_configuration,
)
from .workloads import WORKLOAD_RESOURCES, ReportedOnce, missed_template_event, template_patch

registry = kopf.OperatorRegistry()

BINDING = (c.GROUP, c.VERSION, c.PLURAL)
#: How long to wait before retrying after an API error.
RETRY_DELAY = 5
#: Verification calls that may be made at once before the rate applies (e.g. at start-up).
VERIFY_BURST = 5
#: Seconds the status refresh a pod's or a Certificate's event asks for waits for more events of the same
#: binding: pods created one at a time (a rollout; bench figure 4 at 1 in flight) and cert-manager's several
#: writes of one issuance (bench figure 6) then cost a refresh per this interval, not one per event.
EVENTS_GATHER_SECONDS = 0.5
#: Seconds after which the API server ends each of kopf's watch requests (kopf then starts a new one).
WATCH_SERVER_TIMEOUT = 120


#: The pod webhook's log (one line per injection or refusal); kopf's handler loggers are per object.
admission_logger = logging.getLogger(f"{__package__}.admission")

#: The identity endpoint's log (one line per certificate issued or request refused).
identity_logger = logging.getLogger(f"{__package__}.identity")

#: Events posted outside kopf's handlers (the resync task), kept until sent, so none is garbage-collected.
_posting: set[asyncio.Task[None]] = set()


def _event_poster(kube: Kube, logger: kopf.Logger) -> Callable[[Any, Event], None]:
    """Post through kopf inside its handlers; elsewhere (the periodic resync) kopf's event queue does not
    exist in the task's context (kopf.event raises LookupError, which once ended the resync for good), so
    the operator posts the Event itself."""

    async def post(body: Any, event: Event) -> None:
        try:
            await kube.post_event(body, event.type, event.reason, event.message)
        except ApiError as error:
            logger.warning("could not post Event %s %s: %s", event.reason, event.message, error)

    def post_event(body: Any, event: Event) -> None:
        try:
            kopf.event(body, type=event.type, reason=event.reason, message=event.message)
        except LookupError:
            task = asyncio.get_running_loop().create_task(post(body, event))
            _posting.add(task)
            task.add_done_callback(_posting.discard)

    return post_event


def _pod_event_poster(kube: Kube, logger: kopf.Logger) -> Callable[[tuple[str, str], str, str], Awaitable[None]]:
    """Posts a Warning Event on a pod, if it exists (an Event needs the pod's uid)."""

    async def post(pod: tuple[str, str], reason: str, message: str) -> None:
        body = await kube.get(path("v1", "pods", pod[0], pod[1]), namespace=pod[0])
        if body is not None:
            await kube.post_event({"apiVersion": "v1", "kind": "Pod", **body}, "Warning", reason, message)

    return post


# --- Start-up -------------------------------------------------------------------------------------


@kopf.on.login(registry=registry)
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """As kubectl: the pod's service account in a cluster, $KUBECONFIG (or ~/.kube/config) elsewhere."""
    return kopf.login_via_client(**kwargs)


@kopf.on.startup(registry=registry)
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    """Configure kopf, then build the runtime (memo.runtime) and start what runs beside the handlers."""
    ours: Settings = memo.settings
    _configure_kopf(settings)
    kube = await Kube.connect()
    unsupported = unsupported_server(await kube.server_version())  # cli.main said so already, if it could ask
    if unsupported:
        await kube.close()
        raise kopf.PermanentError(unsupported)
    if ours.log_level != "debug":
        # The pod webhook logs each injection and refusal itself (admission_logger); aiohttp's access log
        # would add a line for every request as well.
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    verifier = (
        Verifier(interval=ours.verify_interval, limiter=TokenBucket(ours.verify_rate, burst=VERIFY_BURST))
        if ours.verify_credentials
        else None
    )
    reconciler = Reconciler(kube=kube, post_event=_event_poster(kube, logger), verifier=verifier, settings=ours)
    excluded = excluded_namespaces(ours)
    if ours.peering:
        await _ensure_peering(kube, ours.peering)
    registration = WebhookRegistration(kube, ours, excluded, await _webhook_owner(kube, ours.webhook_owner_cluster_role),
                                       logger)
    bindings = BindingCache(kube, logger)
    tasks = (
        asyncio.create_task(bindings.run()),
        asyncio.create_task(resync_forever(kube, reconciler.refresh, bindings.keys, interval=ours.resync_interval,
                                           peering=ours.peering, priority=memo.priority, logger=logger)),
        asyncio.create_task(registration.keep(ours.resync_interval)),
    )
    runtime = Runtime(settings=ours, kube=kube, reconciler=reconciler, bindings=bindings,
                      excluded_namespaces=excluded, reported_workloads=ReportedOnce(), tasks=tasks,
                      identity_ca=registration.ca_pem)
    memo.runtime = runtime
    settings.admission.managed = None
    identity = IdentityEndpoint(kube, ours, bindings.get, _pod_event_poster(kube, logger), identity_logger)

    async def answer_pod(review: dict[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        return await inject(review, runtime, admission_logger)

    settings.admission.server = RegisteringWebhookServer(
        register=registration.register,
        answers={INJECT_HANDLER_ID: answer_pod, IDENTITY_HANDLER_ID: identity.answer},
        service=ours.webhook_service,
        addr=ours.webhook_listen_address,
        port=ours.webhook_port or None,
        host=ours.webhook_host,
        certfile=ours.webhook_cert_file,
        pkeyfile=ours.webhook_key_file,
        cafile=ours.webhook_ca_file,
        file_check_interval=ours.webhook_reload_interval,
    )


def _configure_kopf(settings: kopf.OperatorSettings) -> None:
    # kopf's bookkeeping goes into annotations under our group: the status belongs to the user.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=c.GROUP)
    settings.persistence.diffbase_storage = BindingsDiffBase(
        prefix=c.GROUP, key=c.LAST_HANDLED_ANNOTATION.removeprefix(f"{c.GROUP}/")
    )
    # Only what a person must act on becomes an Event; handlers' info logs stay in the log.
    settings.posting.level = logging.WARNING
    # A watch the API server ends every few minutes, and one the client gives up on when nothing came for
    # longer than that: a connection that died silently then costs minutes of events, not all of them.
    settings.watching.server_timeout = WATCH_SERVER_TIMEOUT
    settings.watching.client_timeout = WATCH_SERVER_TIMEOUT + 30
    settings.watching.connect_timeout = 10
    # Watch only opted-in pods (injected or missed) and the operator's own Certificates, with server-side
    # selectors: a cluster's other pods and cert-manager's other Certificates never reach the operator.
    settings.watching.label_selectors["v1", "pods"] = f"{c.INJECT_LABEL}={c.INJECT_LABEL_VALUE}"
    settings.watching.label_selectors[c.CERT_MANAGER_GROUP, c.CERT_MANAGER_VERSION, c.CERTIFICATES] = (
        f"{c.MANAGED_BY_LABEL}={c.OPERATOR_NAME},{c.BINDING_LABEL}"
    )


class BindingsDiffBase(kopf.AnnotationsDiffBaseStorage):
    """kopf's last-handled state, kept for the bindings: the only resource with create/update handlers. kopf
    builds that state (a deep copy of the object) on every event of every object it watches; for pods,
    Certificates and workloads, whose handlers only see events, an empty one does (bench figure 4's profile:
    a tenth of the operator's CPU while pods were created went into copying them)."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        if body.get("kind") != c.KIND or body.get("apiVersion") != c.API_VERSION:
            return kopf.BodyEssence()
        return super().build(body=body, extra_fields=extra_fields)


class WebhookRegistration:
    """Keeps the MutatingWebhookConfiguration pointing at the served webhook: applied when the server
    (re)starts, and level-triggered after that: a deleted or edited configuration is applied again within
    one resync interval (without it, opted-in pods would start uninjected)."""

    def __init__(self, kube: Kube, settings: Settings, excluded: tuple[str, ...], owner: dict[str, Any] | None,
                 logger: kopf.Logger) -> None:
        self._kube, self._settings, self._excluded, self._owner, self._logger = kube, settings, excluded, owner, logger
        self._path = path("admissionregistration.k8s.io/v1", "mutatingwebhookconfigurations", None,
                          settings.webhook_configuration)
        self._client_config: dict[str, Any] | None = None

    async def _apply(self, client_config: dict[str, Any]) -> None:
        self._client_config = client_config
        configuration = build_webhook_configuration(
            self._settings.webhook_configuration, client_config, failure_policy=self._settings.webhook_failure_policy,
            excluded_namespaces=self._excluded, owner=self._owner,
        )
        await self._kube.apply(self._path, configuration)

    def ca_pem(self) -> str | None:
        """The CA bundle (PEM) clients of the served endpoints trust: the identity endpoint's sidecars too."""
        bundle = (self._client_config or {}).get("caBundle")
        return base64.b64decode(bundle).decode("ascii") if bundle else None

    async def register(self, client_config: dict[str, Any]) -> None:
        await self._apply(client_config)
        self._logger.info("webhook configuration %s points at %s", self._settings.webhook_configuration,
                          client_config.get("url") or client_config.get("service"))

    async def keep(self, interval: float) -> None:
        name = self._settings.webhook_configuration
        while True:
            await asyncio.sleep(interval)
            if self._client_config is None:
                continue
            try:
                missing = await self._kube.get(self._path) is None
                await self._apply(self._client_config)  # quietly: unchanged, it changes nothing
            except ApiError as error:
                self._logger.warning("cannot keep webhook configuration %s: %s", name, error)
                continue
            if missing:
                self._logger.warning("webhook configuration %s was missing (deleted?); created it again", name)


async def _ensure_peering(kube: Kube, name: str) -> None:
    """Create the ClusterKopfPeering object kopf peers through (a chart cannot ship a custom resource
    together with its CRD). Applying only its name leaves an existing one, and kopf's status in it, as is."""
    await kube.apply(
        path(f"{c.KOPF_PEERING_GROUP}/v1", "clusterkopfpeerings", None, name),
        {"apiVersion": f"{c.KOPF_PEERING_GROUP}/v1", "kind": "ClusterKopfPeering", "metadata": {"name": name}},
    )


async def _webhook_owner(kube: Kube, cluster_role: str | None) -> dict[str, Any] | None:
    """The owner reference the webhook configuration carries, so it goes away with the install."""
    if not cluster_role:
        return None
    role = await kube.get(path("rbac.authorization.k8s.io/v1", "clusterroles", None, cluster_role))
    if role is None:
        raise kopf.PermanentError(f"--webhook-owner-cluster-role: ClusterRole {cluster_role!r} does not exist")
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "name": cluster_role, "uid": role["metadata"]["uid"]}


@kopf.on.cleanup(registry=registry)
async def close(memo: kopf.Memo, **_: Any) -> None:
    runtime: Runtime | None = getattr(memo, "runtime", None)
    if runtime is not None:
        await runtime.close()


# --- Bindings ---------------------------------------------------------------------------------------


@kopf.on.resume(*BINDING, registry=registry)
@kopf.on.create(*BINDING, registry=registry)
@kopf.on.update(*BINDING, registry=registry)
async def reconcile_binding(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    try:
        await memo.runtime.reconciler.reconcile(body)
    except InvalidBindingError as error:
        raise kopf.PermanentError(str(error)) from error
    except ApiError as error:
        raise kopf.TemporaryError(str(error), delay=RETRY_DELAY) from error


# cert-manager writes each issuance into the Certificate's status (revision, notAfter), so its events say
# when the certificate changed; the Secret, which holds the key, is never watched.
@kopf.on.event(c.CERT_MANAGER_GROUP, c.CERT_MANAGER_VERSION, c.CERTIFICATES, registry=registry,
               labels={c.MANAGED_BY_LABEL: c.OPERATOR_NAME, c.BINDING_LABEL: kopf.PRESENT})
async def certificate_changed(namespace: str | None, labels: kopf.Labels, memo: kopf.Memo, **_: Any) -> None:
    await _refresh(memo, namespace or "", labels[c.BINDING_LABEL], gather=EVENTS_GATHER_SECONDS)


@kopf.on.event("v1", "pods", registry=registry, labels={c.INJECT_LABEL: c.INJECT_LABEL_VALUE})
async def opted_in_pod_changed(
    type: str | None, namespace: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any
) -> None:
    """Keep the pod index current; refresh the status of a binding whose pods changed as it counts them."""
    for pod_namespace, binding in memo.runtime.reconciler.pods.update(type, namespace or "", body):
        await _refresh(memo, pod_namespace, binding, gather=EVENTS_GATHER_SECONDS)


async def _refresh(memo: kopf.Memo, namespace: str, name: str, gather: float = 0.0) -> None:
    try:
        await memo.runtime.reconciler.refresh(namespace, name, gather=gather)
    except InvalidBindingError as error:
        raise kopf.PermanentError(str(error)) from error
    except ApiError as error:
        raise kopf.TemporaryError(str(error), delay=RETRY_DELAY) from error


# --- Workloads --------------------------------------------------------------------------------------


async def workload_changed(body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    """A workload whose pod template is not in step with its annotation: the workload webhook missed the
    change (the operator was down; it is Ignore). The operator may not patch workloads, so it says so once
    per generation, with the command that applies it (any update goes through the webhook again)."""
    runtime: Runtime = memo.runtime
    namespace = body.metadata.namespace or ""
    if namespace in runtime.excluded_namespaces or template_patch(body) is None:
        return
    if not runtime.reported_workloads.add(body.metadata.uid, body.metadata.get("generation")):
        return
    try:
        found = await runtime.kube.get(path("v1", "namespaces", None, namespace))
    except ApiError as error:
        logger.warning("cannot read namespace %s (%s); reporting the workload anyway", namespace, error)
        found = None
    if ((found or {}).get("metadata", {}).get("labels") or {}).get(c.INJECTION_NAMESPACE_LABEL) == "disabled":
        return  # the webhook never sees this namespace on purpose
    report = missed_template_event(body)
    kopf.event(body, type=report.type, reason=report.reason, message=report.message)
    logger.warning("%s", report.message)


async def copy_workload_binding(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    """At admission: the template gets the annotation in the same request (no extra rollout, no race
    with the controller creating the first pods from the old template)."""
    template = template_patch(body)
    if template is not None:
        patch.update(template)


for _group, _version, _plural in WORKLOAD_RESOURCES:
    # Report workloads changed while no operator ran (or whose webhook call was missed).
    kopf.on.event(_group, _version, _plural, registry=registry, id=f"workload-{_plural}")(workload_changed)
    kopf.on.mutate(_group, _version, _plural, operations=["CREATE", "UPDATE"], id=WORKLOAD_HANDLER_ID,
                   registry=registry)(copy_workload_binding)


# --- Admission ----------------------------------------------------------------------------------------


async def inject(review: dict[str, Any], runtime: Runtime, logger: logging.Logger) -> dict[str, Any]:
    """The pod webhook (served by RegisteringWebhookServer, not a kopf handler): admission.admit on the
    review's pod, answered by admission.review_response."""
    request = review.get("request") or {}
    pod = request.get("object")
    outcome: Admitted | Refused
    if not isinstance(pod, dict):
        outcome = Refused("the admission request holds no pod", code=400)
    else:
        namespace = request.get("namespace") or (pod.get("metadata") or {}).get("namespace") or ""

        async def read(namespace: str, name: str, timeout: float) -> dict[str, Any] | None:
            try:
                return await runtime.kube.get(binding_path(namespace, name), namespace=namespace, timeout=timeout)
            except ApiError as error:
                raise ReadFailed(str(error)) from error

        try:
            outcome = await admit(pod, namespace, settings=runtime.settings,
                                  excluded_namespaces=runtime.excluded_namespaces, cached=runtime.bindings.get,
                                  read=read, identity_ca=runtime.identity_ca())
        except Refused as refused:
            outcome = refused
            logger.warning("refused pod %s in namespace %s: %s", _pod_name(pod), namespace, refused)
        else:
            if outcome.pod is not None:
                logger.info("injected the sidecar into pod %s in namespace %s for binding %s (read from %s)",
                            _pod_name(pod), namespace, outcome.binding, outcome.source)
    return review_response(review, outcome, pod if isinstance(pod, dict) else None)


def _pod_name(pod: dict[str, Any]) -> str:
    metadata = pod.get("metadata") or {}
    return str(metadata.get("name") or f"{metadata.get('generateName', '')}*")
