"""The identity endpoint: a sidecar's CSR in, its pod's certificate out (per-pod identity).

Served on the webhook's HTTPS server (webhook.RegisteringWebhookServer routes POST /pod-identity here),
so it shares its Service, serving certificate and CA bundle. Each request: a TokenReview of the Bearer
token (audience rolesanywhere_protocol.pod_identity.TOKEN_AUDIENCE, bound to a pod), that pod read from
the API (it must exist with that uid and carry the operator's injection for a per-pod binding), the
CertificationRequestInfo the operator decides (pod_certificates) compared with the CSR's (409 with the
decided one when they differ, which the sidecar signs), then a CertificateRequest created, approved and
waited for. Every refusal is logged and posted as an Event on the pod it names.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web
from rolesanywhere_protocol.clock import Clock, utc_now
from rolesanywhere_protocol.pod_identity import (
    ISSUE_WAIT_SECONDS,
    RESIGN_STATUS,
    ExchangeError,
    issued_fields,
    message_fields,
    parse_request,
    resign_fields,
)

from . import constants as c
from .kube import ApiError, Kube, binding_path, path
from .pod_certificates import (
    Caller,
    Refused,
    approval,
    binding_of,
    build_certificate_request,
    caller_of,
    decided_request_info,
    outcome,
    per_pod_certificate,
    token_review,
)
from .settings import Settings
from .spec import InvalidBindingError, parse_binding

#: Seconds a request waits for cert-manager to sign (inside the sidecar's own timeout, both declared in the
#: protocol); after that the sidecar is told to come back, and the next request makes a new CertificateRequest.
ISSUE_TIMEOUT_SECONDS = ISSUE_WAIT_SECONDS
#: How often the request's status is read while waiting.
ISSUE_POLL_SECONDS = 0.2
#: At most one refusal Event per pod in this many seconds: a sidecar retrying with a bad token must not
#: flood the pod's Events.
EVENT_INTERVAL_SECONDS = 60.0
#: Pods whose last refusal Event is remembered before the expired ones are forgotten.
EVENT_MEMORY = 1000

_ERRORS: dict[int, type[web.HTTPException]] = {
    400: web.HTTPBadRequest, 401: web.HTTPUnauthorized, 403: web.HTTPForbidden, RESIGN_STATUS: web.HTTPConflict,
    502: web.HTTPBadGateway, 503: web.HTTPServiceUnavailable,
}

#: The binding (namespace, name) from the operator's watch cache, or None.
CachedBinding = Callable[[str, str], "dict[str, Any] | None"]
#: Posts a Warning Event (reason, message) about the pod (namespace, name).
PostPodEvent = Callable[[tuple[str, str], str, str], Awaitable[None]]


def http_error(status: int, fields: Mapping[str, str]) -> web.HTTPException:
    return _ERRORS.get(status, web.HTTPInternalServerError)(text=json.dumps(fields), content_type="application/json")


class IdentityEndpoint:
    def __init__(self, kube: Kube, settings: Settings, cached: CachedBinding, post_event: PostPodEvent,
                 logger: logging.Logger, *, now: Clock = utc_now, clock: Callable[[], float] = time.monotonic) -> None:
        self._kube, self._settings, self._cached, self._post_event, self._log = kube, settings, cached, post_event, logger
        self._now, self._clock = now, clock
        self._last_event: dict[tuple[str, str], float] = {}

    async def answer(self, body: Mapping[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        """The issued certificate's fields; raises the HTTP error that tells the sidecar why not."""
        try:
            return await self._issue(body, headers)
        except Refused as refused:
            await self._refusal(refused)
            raise http_error(refused.status, message_fields(str(refused))) from None

    async def _issue(self, body: Mapping[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        token = _bearer(headers)
        try:
            review = await self._kube.request("POST", path("authentication.k8s.io/v1", "tokenreviews"),
                                              body=token_review(token))
        except ApiError as error:
            raise http_error(503, message_fields(f"cannot review the token: {error}")) from None
        try:
            caller = caller_of(review)
        except Refused as refused:
            refused.pod = _claimed_pod(token)  # for the Event only: the claims are not trusted for anything else
            raise
        pod = await self._get(path("v1", "pods", caller.namespace, caller.pod_name), caller.namespace)
        name = binding_of(caller, pod)
        found = self._cached(caller.namespace, name) or await self._get(binding_path(caller.namespace, name),
                                                                        caller.namespace)
        try:
            binding = parse_binding(found) if found is not None else None
        except InvalidBindingError as error:
            raise Refused(403, str(error), caller.pod) from None
        certificate = per_pod_certificate(binding, name, caller)
        assert binding is not None
        issuer = certificate.issuer
        if (issuer.group == c.CERT_MANAGER_GROUP and issuer.kind == "ClusterIssuer"
                and not self._settings.cluster_issuer_allowed(issuer.name)):
            raise Refused(403, f"ClusterIssuer {issuer.name} is not one the operator lets bindings use "
                               "(--allowed-cluster-issuers)", caller.pod)
        try:
            csr = parse_request(body)
        except ExchangeError as error:
            raise http_error(400, message_fields(str(error))) from None
        if not csr.is_signature_valid:
            raise http_error(400, message_fields("the CSR's signature does not verify with its own public key"))
        decided = decided_request_info(binding, certificate, caller, self._settings.identity_trust_domain, csr)
        if csr.tbs_certrequest_bytes != decided:
            raise http_error(RESIGN_STATUS, resign_fields(
                "the operator decides the subject and SANs: sign this CertificationRequestInfo and send it again",
                decided))
        leaf, chain = await self._certificate_request(binding.namespace, build_certificate_request(
            binding, certificate, caller, csr), caller)
        return issued_fields(leaf, chain)

    async def _certificate_request(self, namespace: str, request: dict[str, Any], caller: Caller) -> tuple[str, str]:
        requests = path(c.CERT_MANAGER_API_VERSION, c.CERTIFICATE_REQUESTS, namespace)
        try:
            created = await self._kube.request("POST", requests, body=request)
        except ApiError as error:
            if error.status in (400, 403, 422):
                raise Refused(403, f"the API server refused the CertificateRequest: {error.message}", caller.pod) from None
            raise http_error(503, message_fields(f"cannot create the CertificateRequest: {error}")) from None
        name = created["metadata"]["name"]
        where = f"CertificateRequest {namespace}/{name}"
        await self._approve(requests, name, created)
        deadline = self._clock() + ISSUE_TIMEOUT_SECONDS
        current: Mapping[str, Any] = created
        while True:
            result = outcome(current)
            if result.failed:
                raise http_error(502, message_fields(f"{where} {result.failed}"))
            if result.issued is not None:
                break
            if self._clock() >= deadline:
                raise http_error(503, message_fields(f"{where} not issued within {ISSUE_TIMEOUT_SECONDS:g}s; try again"))
            await asyncio.sleep(ISSUE_POLL_SECONDS)
            current = await self._kube.get(f"{requests}/{name}", namespace=namespace) or {}
        self._log.info("issued a certificate for pod %s/%s through %s", caller.namespace, caller.pod_name, where)
        await self._forget_older(requests, caller.pod_uid, keep=name)
        return result.issued

    async def _approve(self, requests: str, name: str, request: Mapping[str, Any]) -> None:
        patch = approval(request, self._now().strftime(c.TIME_FORMAT))
        if patch is None:
            return
        try:
            await self._kube.merge_patch(f"{requests}/{name}/status", patch)
        except ApiError as error:
            # cert-manager's approver may have been first (a second Approved is refused); otherwise the
            # request waits for another approver, and the timeout says so.
            self._log.info("did not approve CertificateRequest %s: %s", name, error)

    async def _forget_older(self, requests: str, pod_uid: str, keep: str) -> None:
        """The pod's earlier requests: its sidecar holds the new certificate now."""
        try:
            for request in await self._kube.list(requests, label_selector=f"{c.POD_UID_LABEL}={pod_uid}"):
                name = request["metadata"]["name"]
                if name != keep:
                    await self._kube.delete(f"{requests}/{name}")
        except ApiError as error:
            self._log.warning("cannot delete the earlier CertificateRequests of pod uid %s: %s", pod_uid, error)

    async def _get(self, api_path: str, namespace: str) -> dict[str, Any] | None:
        try:
            return await self._kube.get(api_path, namespace=namespace)
        except ApiError as error:
            raise http_error(503, message_fields(f"cannot read {api_path}: {error}")) from None

    async def _refusal(self, refused: Refused) -> None:
        who = f"pod {refused.pod[0]}/{refused.pod[1]}" if refused.pod else "a caller"
        self._log.warning("refused an identity request of %s: %s", who, refused)
        if refused.pod is None:
            return
        now = self._clock()
        if now - self._last_event.get(refused.pod, -EVENT_INTERVAL_SECONDS) < EVENT_INTERVAL_SECONDS:
            return
        if len(self._last_event) > EVENT_MEMORY:  # forget pods whose interval has passed
            self._last_event = {k: t for k, t in self._last_event.items() if now - t < EVENT_INTERVAL_SECONDS}
        self._last_event[refused.pod] = now
        try:
            await self._post_event(refused.pod, "PodIdentityRefused", f"identity endpoint: {refused}")
        except ApiError as error:
            self._log.warning("cannot post the refusal Event: %s", error)


def _bearer(headers: Mapping[str, str]) -> str:
    value = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Refused(401, "no Authorization: Bearer <service-account token> header")
    return token.strip()


def _claimed_pod(token: str) -> tuple[str, str] | None:
    """The pod a (refused, so unverified) token says it belongs to: only which pod the Event is posted on."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        kubernetes = claims["kubernetes.io"]
        return str(kubernetes["namespace"]), str(kubernetes["pod"]["name"])
    except (IndexError, KeyError, TypeError, ValueError, binascii.Error):
        return None

