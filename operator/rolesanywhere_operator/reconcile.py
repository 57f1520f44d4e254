"""Reconciliation I/O for one binding: keep its Certificate, observe, write status, post Events.

Secrets: the operator reads none to know an issuerRef binding's certificate (the Certificate and the
CertificateRequest of its current revision say it, without the key). It GETs one binding's own Secret
only to check a secretRef binding's certificate and to sign the verification call; the API refuses that
unless a RoleBinding in the namespace grants it (the chart's secretAccess.namespaces), and the status
then says what is not checked. It never watches, lists or patches a Secret.

Everything here reads or writes the API through `Kube`; every decision is made by the pure modules
(spec, certificates, status). Each step is idempotent (server-side apply by a fixed name, status
computed from scratch), so a restarted operator converges to the same state.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from rolesanywhere_protocol.clock import Clock, utc_now

from . import constants as c
from .certificates import build_certificate, certificate_missing, missing_certificate_event, shared_issued
from .kube import ApiError, Kube, binding_path, path
from .missed import plan, status_fields
from .pod_certificates import valid_pod_certificates
from .pod_index import PodIndex
from .settings import Settings
from .spec import Binding, InvalidBindingError, IssuedCertificate, parse_binding
from .status import (
    CertificateInfo,
    Event,
    Observed,
    compute_status,
    invalid_spec_status,
    parse_certificate,
    same_status,
)
from .verification import Endpoint, Verification, Verifier, due

#: The API server's status for a request RBAC refuses.
FORBIDDEN = 403
#: Statuses with which the API server refuses an object itself (invalid, or denied by an admission webhook or
#: policy): applying it again unchanged cannot succeed.
REFUSED_STATUSES = frozenset({400, 403, 422})

#: Refreshes and Certificate applies that run at once, across bindings. Enough to keep the API server busy;
#: few enough that a thousand bindings created together do not queue a thousand requests in the client
#: (whose timeout counts the wait for a connection: bench figure 6 saw hundreds of them time out after
#: 30 s), and that the webhook's reads of bindings it has not cached find a connection free.
CONCURRENCY = 10

PostEvent = Callable[[Mapping[str, Any], Event], None]


@dataclass
class Reconciler:
    kube: Kube
    post_event: PostEvent
    now: Clock = utc_now
    #: Makes the verification calls; None when the operator verifies no binding.
    verifier: Verifier | None = None
    settings: Settings = field(default_factory=Settings)
    #: The opted-in pods, fed by the pod watch (handlers.py).
    pods: PodIndex = field(default_factory=PodIndex)
    # One refresh at a time per binding, so two events never post the same Event twice.
    _locks: dict[tuple[str, str], asyncio.Lock] = field(default_factory=dict)
    _waiting: set[tuple[str, str]] = field(default_factory=set)
    _verified: dict[tuple[str, str], Verification] = field(default_factory=dict)
    # The API server's refusal of a binding's Certificate, by binding, with the generation it was for.
    _refused: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)
    # The certificate of each binding's current revision, with the (revision, notAfter) it was found for:
    # a refresh lists the CertificateRequests again only when the Certificate changed revision.
    _issued: dict[tuple[str, str], tuple[tuple[Any, Any], bytes]] = field(default_factory=dict)
    _slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(CONCURRENCY))

    async def reconcile(self, body: Mapping[str, Any]) -> None:
        """Create or update the binding's Certificate, then refresh its status."""
        namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
        try:
            binding = parse_binding(body)
        except InvalidBindingError:
            binding = None
        if binding is not None and shared_issued(binding) and self._may_issue(binding):
            async with self._slots:  # a refresh holds its slot itself, so _apply_certificate takes none
                await self._apply_certificate(binding, body["metadata"].get("generation", 0))
        await self.refresh(namespace, name)

    def _may_issue(self, binding: Binding) -> bool:
        """An issuerRef binding whose issuer the operator lets it use (a ClusterIssuer must be allowed)."""
        if not isinstance(binding.certificate, IssuedCertificate):
            return False
        issuer = binding.certificate.issuer
        return not (issuer.group == c.CERT_MANAGER_GROUP and issuer.kind == "ClusterIssuer"
                    and not self.settings.cluster_issuer_allowed(issuer.name))

    async def _apply_certificate(self, binding: Binding, generation: int) -> bool:
        """Apply the binding's Certificate. One the API server refuses (cert-manager's webhook, a cluster
        policy) is remembered with the server's message, which the status shows, instead of raised into
        kopf's retries; False then."""
        key = (binding.namespace, binding.name)
        try:
            await self.kube.apply(_certificate_path(binding), build_certificate(binding))
        except ApiError as error:
            if error.status not in REFUSED_STATUSES:
                raise
            self._refused[key] = (generation, error.message)
            return False
        self._refused.pop(key, None)
        return True

    def _refusal(self, binding: Binding, generation: int) -> str | None:
        refused = self._refused.get((binding.namespace, binding.name))
        return refused[1] if refused and refused[0] == generation else None

    async def refresh(self, namespace: str, name: str, *, gather: float = 0.0) -> None:
        """Recompute and write the binding's status from what exists now; post Events on transitions.

        Refreshes of one binding run one at a time, and at most one waits: a call made while another is
        already waiting returns at once, since that one has not read anything yet and will see the change
        too. A rollout's burst of pod events so costs a couple of refreshes, not one per pod. With `gather`,
        the waiting one waits that many seconds more first, so changes arriving one by one (pods created one
        at a time) share it too.
        """
        key = (namespace, name)
        if key in self._waiting:
            return
        self._waiting.add(key)
        lock = self._locks.setdefault(key, asyncio.Lock())
        try:
            if gather:
                await asyncio.sleep(gather)
            await lock.acquire()
        finally:  # also when cancelled while waiting: a key left here would never be refreshed again
            self._waiting.discard(key)
        try:
            async with self._slots:
                await self._refresh_locked(namespace, name, key)
        finally:
            lock.release()

    async def _refresh_locked(self, namespace: str, name: str, key: tuple[str, str]) -> None:
        body = await self.kube.get(binding_path(namespace, name), namespace=namespace)
        if body is None:
            self._locks.pop(key, None)
            self._verified.pop(key, None)
            self._issued.pop(key, None)
            return
        previous = body.get("status") or {}
        generation = body["metadata"].get("generation", 0)
        try:
            binding = parse_binding(body)
        except InvalidBindingError as error:
            status, events = invalid_spec_status(str(error), generation, previous, self.now())
        else:
            observed = await self.observe(binding, generation)
            # Level-triggered: a missing Certificate is applied at the next refresh (its deletion event, or
            # the periodic resync), not only when kopf hands over a change of the binding; one the API server
            # refused is tried again too (a policy may have changed), its refusal shown meanwhile.
            if certificate_missing(binding, body, observed) and self._may_issue(binding):
                if await self._apply_certificate(binding, generation):
                    recreated = missing_certificate_event(binding, body, observed)
                    if recreated is not None:
                        self.post_event(body, recreated)
                observed = await self.observe(binding, generation)
            if self.verifier is not None and binding.verify_credentials and not binding.per_pod:
                record, readable = await self._verification(binding, observed, previous)
                observed = replace(
                    observed, verification_enabled=True, verification=record,
                    secret_readable=observed.secret_readable and readable,
                )
            status, events = compute_status(binding, observed, previous, self.now())
            ready = any(x["type"] == c.CONDITION_READY and x["status"] == "True" for x in status["conditions"])
            missed = plan(binding, observed.missed, previous, ready=ready)
            for pod in missed.recreate:
                await self.kube.delete(path("v1", "pods", namespace, pod))
            status["pods"].update(status_fields(missed))
            events = [*events, *missed.events]
        if not same_status(previous, status):
            await self.kube.apply(
                binding_path(namespace, name, "status"),
                {
                    "apiVersion": c.API_VERSION,
                    "kind": c.KIND,
                    "metadata": {"name": name, "namespace": namespace},
                    "status": status,
                },
            )
        for event in events:
            self.post_event(body, event)

    async def observe(self, binding: Binding, generation: int) -> Observed:
        ns = binding.namespace
        pods, missed = self.pods.pods(ns, binding.name)
        if not isinstance(binding.certificate, IssuedCertificate):
            secret, readable = await self._read_secret(binding)
            return Observed(generation=generation, secret=secret, secret_readable=readable, pods=pods, missed=missed)
        if not self._may_issue(binding):
            return Observed(generation=generation, cluster_issuer_refused=True, pods=pods, missed=missed)
        if binding.per_pod:
            requests = await self.kube.list(path(c.CERT_MANAGER_API_VERSION, c.CERTIFICATE_REQUESTS, ns),
                                            label_selector=f"{c.BINDING_LABEL}={binding.name},{c.POD_UID_LABEL}")
            live = {str((p.get("metadata") or {}).get("uid")) for p in pods}
            return Observed(generation=generation, issuer_found=await self._issuer_found(binding, None), pods=pods,
                            missed=missed, pods_certified=valid_pod_certificates(requests, live, self.now()))
        certificate = await self.kube.get(_certificate_path(binding), namespace=ns)
        return Observed(
            generation=generation, certificate=certificate, issuer_found=await self._issuer_found(binding, certificate),
            issued_pem=await self._issued_pem(binding, certificate), certificate_refused=self._refusal(binding, generation),
            pods=pods, missed=missed,
        )

    async def _issued_pem(self, binding: Binding, certificate: Mapping[str, Any] | None) -> bytes | None:
        """The certificate of the Certificate's current revision, from that revision's CertificateRequest
        (cert-manager labels requests as their Certificate; it keeps the newest one at least).

        cert-manager's readiness controller can mark the Certificate Ready (with notAfter) a moment before
        its issuing controller records the revision; then the newest request whose certificate ends at
        that notAfter is the one."""
        facts = (certificate or {}).get("status") or {}
        if facts.get("revision") is None and not facts.get("notAfter"):
            return None
        key, found_for = (binding.namespace, binding.name), (facts.get("revision"), facts.get("notAfter"))
        known = self._issued.get(key)
        if known is not None and known[0] == found_for:
            return known[1]
        pem = await self._read_issued_pem(binding, facts)
        if pem is not None:
            self._issued[key] = (found_for, pem)
        return pem

    async def _read_issued_pem(self, binding: Binding, facts: Mapping[str, Any]) -> bytes | None:
        requests = await self.kube.list(
            path(c.CERT_MANAGER_API_VERSION, c.CERTIFICATE_REQUESTS, binding.namespace),
            label_selector=f"{c.BINDING_LABEL}={binding.name}",
        )
        issued: dict[int, bytes] = {}
        for request in requests:
            annotations = (request.get("metadata") or {}).get("annotations") or {}
            if annotations.get(c.CERT_MANAGER_CERTIFICATE_NAME_ANNOTATION) != c.certificate_name(binding.name):
                continue
            try:
                revision = int(annotations.get(c.CERT_MANAGER_REVISION_ANNOTATION, ""))
                issued[revision] = base64.b64decode((request.get("status") or {}).get("certificate") or "",
                                                    validate=True)
            except (ValueError, binascii.Error):
                continue
        if facts.get("revision") is not None:
            return issued.get(int(facts["revision"])) or None
        for revision in sorted(issued, reverse=True):
            info = parse_certificate_or_none(issued[revision])
            if info is not None and info.not_after.strftime(c.TIME_FORMAT) == facts["notAfter"]:
                return issued[revision]
        return None

    async def _read_secret(self, binding: Binding) -> tuple[Mapping[str, Any] | None, bool]:
        """The binding's own Secret (None if missing), and False if the API does not let the operator read it."""
        try:
            secret = await self.kube.get(path("v1", "secrets", binding.namespace, binding.secret_name),
                                         namespace=binding.namespace)
        except ApiError as error:
            if error.status == FORBIDDEN:
                return None, False
            raise
        return secret, True

    async def _verification(
        self, binding: Binding, observed: Observed, previous: Mapping[str, Any]
    ) -> tuple[Verification | None, bool]:
        """The verification record to show (a new call's when one is due and allowed, else the last one),
        and False when the call was due but the operator may not read the key it signs with."""
        assert self.verifier is not None
        key = (binding.namespace, binding.name)
        # The newest of what the status holds and what this replica recorded: a status write that failed
        # must not make every refresh call again.
        recorded = max(
            (r for r in (Verification.from_status(previous.get("verification")), self._verified.get(key)) if r),
            key=lambda r: r.time, default=None,
        )
        issued = isinstance(binding.certificate, IssuedCertificate)
        secret: Mapping[str, Any] | None = None
        current = observed.issued_pem if issued else None
        if current is None:  # a secretRef binding, or an issued one whose request is gone: its Secret says
            secret, readable = await self._read_secret(binding) if issued else (observed.secret, observed.secret_readable)
            if not readable:
                return recorded, False
            current = _decoded(secret).get(c.TLS_CERT_KEY)
        info = parse_certificate_or_none(current)
        now = self.now()
        if info is None or not info.not_before <= now < info.not_after:
            return recorded, True  # the certificate condition says what is wrong
        if not due(recorded, info.serial_number, observed.generation, now, self.verifier.interval):
            return recorded, True
        if secret is None:
            secret, readable = await self._read_secret(binding)
            if not readable:
                return recorded, False
        secret_data = _decoded(secret)
        if parse_certificate_or_none(secret_data.get(c.TLS_CERT_KEY)) != info:
            return recorded, True  # the Secret does not hold that certificate yet: a later refresh calls
        if not self.verifier.limiter.acquire():
            return recorded, True  # a later refresh (the periodic one at the latest) makes the call
        endpoint = await self._endpoint(binding)
        verified = await self.verifier.verify(binding, secret_data, endpoint, info.serial_number, observed.generation)
        self._verified[key] = verified
        return verified, True

    async def _endpoint(self, binding: Binding) -> Endpoint:
        """Where the binding's sidecars send CreateSession, with the CA bundle they trust and their proxy."""
        settings = self.settings
        bundle = binding.sidecar.ca_bundle
        config_map = (bundle.config_map, bundle.key) if bundle else settings.default_ca_bundle
        ca_pem = None
        if config_map is not None:
            found = await self.kube.get(
                path("v1", "configmaps", binding.namespace, config_map[0]), namespace=binding.namespace
            )
            ca_pem = ((found or {}).get("data") or {}).get(config_map[1])
        return Endpoint(
            url=binding.sidecar.endpoint or settings.default_endpoint,
            ca_pem=ca_pem,
            https_proxy=binding.sidecar.https_proxy or settings.default_https_proxy,
        )

    async def _issuer_found(self, binding: Binding, certificate: Mapping[str, Any] | None) -> bool | None:
        """Whether a cert-manager issuer exists; None when not ours to check (external) or not needed."""
        assert isinstance(binding.certificate, IssuedCertificate)
        issuer = binding.certificate.issuer
        if issuer.group != c.CERT_MANAGER_GROUP or issuer.kind not in ("Issuer", "ClusterIssuer"):
            return None
        ready = any(
            cond.get("type") == "Ready" and cond.get("status") == "True"
            for cond in ((certificate or {}).get("status") or {}).get("conditions") or []
        )
        if ready:
            return None
        if issuer.kind == "ClusterIssuer":
            found = await self.kube.get(path(c.CERT_MANAGER_API_VERSION, "clusterissuers", None, issuer.name))
        else:
            found = await self.kube.get(path(c.CERT_MANAGER_API_VERSION, "issuers", binding.namespace, issuer.name),
                                       namespace=binding.namespace)
        return found is not None


def _certificate_path(binding: Binding) -> str:
    return path(c.CERT_MANAGER_API_VERSION, c.CERTIFICATES, binding.namespace, c.certificate_name(binding.name))


def parse_certificate_or_none(pem: bytes | None) -> CertificateInfo | None:
    try:
        return parse_certificate(pem) if pem else None
    except ValueError:
        return None


def _decoded(secret: Mapping[str, Any] | None) -> dict[str, bytes]:
    """A Secret's data, base64-decoded; keys that do not decode are left out."""
    decoded = {}
    for key, value in ((secret or {}).get("data") or {}).items():
        try:
            decoded[key] = base64.b64decode(value, validate=True)
        except (binascii.Error, TypeError):
            continue
    return decoded
