"""Thin kopf adapters: each handler gathers its input and calls the pure code or the Reconciler.

All handlers live in `registry`, which the CLI (or a test's KopfRunner) runs; importing this module
registers nothing globally.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import kopf
from rolesanywhere_protocol.ratelimit import TokenBucket

from . import constants as c
from .binding_cache import BindingCache
from .injection import InjectionError, inject_pod, should_inject, unsupported_server
from .kube import ApiError, Kube, binding_path, path
from .reconcile import Reconciler
from .resync import resync_forever
from .settings import Settings
from .spec import InvalidBindingError, parse_binding
from .status import Event
from .verification import Verifier
from .webhook import (
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
#: Seconds the webhook waits for a binding it has not cached, well inside its own timeout (webhook.py), so a
#: slow API server yields this webhook's error rather than the API server's generic one.
ADMISSION_READ_TIMEOUT_SECONDS = 5.0
#: Seconds after which the API server ends each of kopf's watch requests (kopf then starts a new one).
WATCH_SERVER_TIMEOUT = 120


#: Events posted outside kopf's handlers (the resync task), kept until sent, so none is garbage-collected.
_posting: set[asyncio.Task[None]] = set()


def _event_poster(kube: Kube, logger: logging.Logger) -> Callable[[Any, Event], None]:
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


# --- Start-up -------------------------------------------------------------------------------------


@kopf.on.login(registry=registry)
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """As kubectl: the pod's service account in a cluster, $KUBECONFIG (or ~/.kube/config) elsewhere."""
    return kopf.login_via_client(**kwargs)


@kopf.on.startup(registry=registry)
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, logger: logging.Logger, **_: Any) -> None:
    ours: Settings = memo.settings
    # kopf's bookkeeping goes into annotations under our group: the status belongs to the user.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=c.GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=c.GROUP, key=c.LAST_HANDLED_ANNOTATION.removeprefix(f"{c.GROUP}/")
    )
    # Only what a person must act on becomes an Event; handlers' info logs stay in the log.
    settings.posting.level = logging.WARNING
    # A watch the API server ends every few minutes, and one the client gives up on when nothing came for
    # longer than that: a connection that died silently then costs minutes of events, not all of them.
    settings.watching.server_timeout = WATCH_SERVER_TIMEOUT
    settings.watching.client_timeout = WATCH_SERVER_TIMEOUT + 30
    settings.watching.connect_timeout = 10
    # Watch only opted-in pods (injected or missed), with a server-side selector.
    settings.watching.label_selectors["v1", "pods"] = f"{c.INJECT_LABEL}={c.INJECT_LABEL_VALUE}"

    kube = await Kube.connect()
    memo.kube = kube
    verifier = (
        Verifier(interval=ours.verify_interval, limiter=TokenBucket(ours.verify_rate, burst=VERIFY_BURST))
        if ours.verify_credentials
        else None
    )
    memo.reconciler = Reconciler(kube=kube, post_event=_event_poster(kube, logger), verifier=verifier,
                                 settings=ours)
    unsupported = unsupported_server(await kube.server_version())  # cli.main said so already, if it could ask
    if unsupported:
        raise kopf.PermanentError(unsupported)
    memo.excluded_namespaces = (
        *c.EXCLUDED_NAMESPACES,
        *([ours.operator_namespace] if ours.operator_namespace else []),
        *(ours.webhook_excluded_namespaces or ()),
    )

    if ours.peering:
        await _ensure_peering(kube, ours.peering)
    owner = await _webhook_owner(kube, ours.webhook_owner_cluster_role)

    configuration_path = path(
        "admissionregistration.k8s.io/v1", "mutatingwebhookconfigurations", None, ours.webhook_configuration
    )
    served: dict[str, Any] = {}

    async def apply_configuration(client_config: dict[str, Any]) -> None:
        served["client_config"] = client_config
        configuration = build_webhook_configuration(
            ours.webhook_configuration,
            client_config,
            failure_policy=ours.webhook_failure_policy,
            excluded_namespaces=memo.excluded_namespaces,
            owner=owner,
        )
        await kube.apply(configuration_path, configuration)

    async def register(client_config: dict[str, Any]) -> None:
        await apply_configuration(client_config)
        logger.info("webhook configuration %s points at %s", ours.webhook_configuration,
                    client_config.get("url") or client_config.get("service"))

    async def keep_registered() -> None:
        """Level-triggered: a deleted (or edited) webhook configuration is applied again within one resync
        interval; without it, opted-in pods would start uninjected."""
        while True:
            await asyncio.sleep(ours.resync_interval)
            if "client_config" not in served:
                continue
            try:
                missing = await kube.get(configuration_path) is None
                await apply_configuration(served["client_config"])  # quietly: unchanged, it changes nothing
            except ApiError as error:
                logger.warning("cannot keep webhook configuration %s: %s", ours.webhook_configuration, error)
                continue
            if missing:
                logger.warning("webhook configuration %s was missing (deleted?); created it again",
                               ours.webhook_configuration)

    memo.keep_registered = asyncio.create_task(keep_registered())
    memo.reported_workloads = ReportedOnce()
    memo.bindings = BindingCache(kube, logger)
    memo.binding_cache = asyncio.create_task(memo.bindings.run())
    memo.resync = asyncio.create_task(
        resync_forever(kube, memo.reconciler.refresh, interval=ours.resync_interval, peering=ours.peering,
                       priority=memo.priority, logger=logger)
    )

    settings.admission.managed = None
    settings.admission.server = RegisteringWebhookServer(
        register=register,
        service=ours.webhook_service,
        addr=ours.webhook_listen_address,
        port=ours.webhook_port or None,
        host=ours.webhook_host,
        certfile=ours.webhook_cert_file,
        pkeyfile=ours.webhook_key_file,
        cafile=ours.webhook_ca_file,
        file_check_interval=ours.webhook_reload_interval,
    )


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
    for task in (getattr(memo, "resync", None), getattr(memo, "binding_cache", None),
                 getattr(memo, "keep_registered", None)):
        if task is not None:
            task.cancel()
    kube = getattr(memo, "kube", None)
    if kube is not None:
        await kube.close()


# --- Bindings ---------------------------------------------------------------------------------------


@kopf.on.resume(*BINDING, registry=registry)
@kopf.on.create(*BINDING, registry=registry)
@kopf.on.update(*BINDING, registry=registry)
async def reconcile_binding(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    try:
        await memo.reconciler.reconcile(body)
    except InvalidBindingError as error:
        raise kopf.PermanentError(str(error)) from error
    except ApiError as error:
        raise kopf.TemporaryError(str(error), delay=RETRY_DELAY) from error


# cert-manager writes each issuance into the Certificate's status (revision, notAfter), so its events say
# when the certificate changed; the Secret, which holds the key, is never watched.
@kopf.on.event(c.CERT_MANAGER_GROUP, c.CERT_MANAGER_VERSION, c.CERTIFICATES, registry=registry,
               labels={c.MANAGED_BY_LABEL: c.OPERATOR_NAME, c.BINDING_LABEL: kopf.PRESENT})
async def certificate_changed(namespace: str, labels: kopf.Labels, memo: kopf.Memo, **_: Any) -> None:
    await _refresh(memo, namespace, labels[c.BINDING_LABEL])


@kopf.on.event("v1", "pods", registry=registry, labels={c.INJECT_LABEL: c.INJECT_LABEL_VALUE})
async def opted_in_pod_changed(type: str | None, namespace: str, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Keep the pod index current; refresh the status of a binding whose pods changed as it counts them."""
    for pod_namespace, binding in memo.reconciler.pods.update(type, namespace, body):
        await _refresh(memo, pod_namespace, binding)


async def _refresh(memo: kopf.Memo, namespace: str, name: str) -> None:
    try:
        await memo.reconciler.refresh(namespace, name)
    except InvalidBindingError as error:
        raise kopf.PermanentError(str(error)) from error
    except ApiError as error:
        raise kopf.TemporaryError(str(error), delay=RETRY_DELAY) from error


# --- Workloads --------------------------------------------------------------------------------------


async def workload_changed(body: kopf.Body, memo: kopf.Memo, logger: logging.Logger, **_: Any) -> None:
    """A workload whose pod template is not in step with its annotation: the workload webhook missed the
    change (the operator was down; it is Ignore). The operator may not patch workloads, so it says so once
    per generation, with the command that applies it (any update goes through the webhook again)."""
    namespace = body.metadata.namespace or ""
    if namespace in memo.excluded_namespaces or template_patch(body) is None:
        return
    if not memo.reported_workloads.add(body.metadata.uid, body.metadata.get("generation")):
        return
    try:
        found = await memo.kube.get(path("v1", "namespaces", None, namespace))
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


@kopf.on.mutate("v1", "pods", operations=["CREATE"], id=INJECT_HANDLER_ID, registry=registry)
async def inject(
    body: kopf.Body, patch: kopf.Patch, warnings: list[str], memo: kopf.Memo, logger: logging.Logger, **_: Any
) -> None:
    """Stages: should inject -> resolve the binding -> build -> patch. Errors name the stage."""
    pod = _raw(body)
    namespace = body.metadata.namespace or ""
    try:
        decision = should_inject(pod, namespace, memo.excluded_namespaces)
    except InjectionError as error:
        raise kopf.AdmissionError(str(error), code=400) from error
    if not decision.inject:
        warnings.extend(decision.warnings)
        return
    assert decision.binding is not None

    found, source = memo.bindings.get(namespace, decision.binding), "the watch cache"
    try:
        if found is None:  # created a moment ago, or not at all
            found = await memo.kube.get(binding_path(namespace, decision.binding), namespace=namespace,
                                        timeout=ADMISSION_READ_TIMEOUT_SECONDS)
            source = "the API server"
    except ApiError as error:
        raise kopf.AdmissionError(
            f"resolve: cannot read {c.KIND} {decision.binding!r} in namespace {namespace!r}: {error}", code=500
        ) from error
    except TimeoutError as error:
        raise kopf.AdmissionError(
            f"resolve: the API server did not answer for {c.KIND} {decision.binding!r} in namespace {namespace!r} "
            f"within {ADMISSION_READ_TIMEOUT_SECONDS:g}s", code=500,
        ) from error
    if found is None:
        raise kopf.AdmissionError(
            f"resolve: {c.KIND} {decision.binding!r} named by annotation {c.BINDING_ANNOTATION} "
            f"does not exist in namespace {namespace!r}",
            code=404,
        )
    try:
        binding = parse_binding(found)
        injected = inject_pod(pod, binding, memo.settings)
    except (InvalidBindingError, InjectionError) as error:
        raise kopf.AdmissionError(f"{error}", code=400) from error

    new_pod = injected.pod
    patch.fns.append(lambda target: _replace(target, new_pod))
    warnings.extend(injected.warnings)
    logger.info("injected the sidecar for binding %s (read from %s)", binding.name, source)


def _raw(body: kopf.Body) -> dict[str, Any]:
    # Not a deep copy: should_inject only reads, and inject_pod copies the pod before changing it (a unit
    # test holds it to that), so one copy per admission is enough (bench figure 4's profile).
    return dict(body)


def _replace(target: dict[str, Any], new: dict[str, Any]) -> None:
    target.clear()
    target.update(new)

