"""The admission webhook's serving side: kopf's HTTPS server, and the MutatingWebhookConfiguration the
operator keeps pointing at it (with the current CA bundle, re-applied whenever the serving certificate
files change, e.g. when cert-manager renews them).

The operator writes the configuration itself instead of kopf's managed mode because the webhook needs a
namespaceSelector (kube-system, the operator's namespace and opted-out namespaces are never sent to it),
which kopf's generated configuration cannot express.

The pod webhook's failurePolicy is settings.webhook_failure_policy; why it defaults to Fail, and why that
holds up only opted-in pods (the objectSelector on INJECT_LABEL), is README's "The webhook's failurePolicy".
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, cast

import kopf

from . import constants as c

#: kopf handler id of the pod mutation; kopf's server routes POST /<id> to it.
INJECT_HANDLER_ID = "inject-pod"
#: kopf handler id of the workload mutation (binding annotation copied into the pod template).
WORKLOAD_HANDLER_ID = "copy-workload-binding"
#: kopf handler id the identity endpoint is served at (POST /pod-identity; identity_endpoint.py).
IDENTITY_HANDLER_ID = c.IDENTITY_HANDLER_ID
#: Names of the webhooks inside the configuration (must be fully qualified names).
WEBHOOK_NAME = f"inject.pods.{c.GROUP}"
WORKLOAD_WEBHOOK_NAME = f"template.workloads.{c.GROUP}"
#: How long the API server waits for the webhook (it fails the request per failurePolicy after that).
WEBHOOK_TIMEOUT_SECONDS = 10


def build_webhook_configuration(
    name: str,
    client_config: dict[str, Any],
    *,
    failure_policy: str,
    excluded_namespaces: tuple[str, ...],
    owner: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The MutatingWebhookConfiguration sending Pod and workload requests to the operator (pure).

    Two webhooks: Pod CREATE of pods labelled INJECT_LABEL (injection, `failure_policy`), and
    Deployment/StatefulSet/DaemonSet CREATE and
    UPDATE (the binding annotation copied into the pod template in the same request, so the first pods
    already carry it). The second is Ignore: the operator also copies the annotation when it sees the
    workload change, so a missed call only costs one more rollout.
    """
    namespace_selector = {
        "matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": sorted(set(excluded_namespaces))},
            {"key": c.INJECTION_NAMESPACE_LABEL, "operator": "NotIn", "values": ["disabled"]},
        ]
    }
    common = {
        "namespaceSelector": namespace_selector,
        "matchPolicy": "Equivalent",
        # The webhooks only read (the binding); a dry run changes nothing either.
        "sideEffects": "None",
        # Later webhooks adding containers would not get credentials; that is the user's call.
        "reinvocationPolicy": "Never",
        "timeoutSeconds": WEBHOOK_TIMEOUT_SECONDS,
        "admissionReviewVersions": ["v1"],
    }
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {
            "name": name,
            "labels": {c.MANAGED_BY_LABEL: c.OPERATOR_NAME},
            **({"ownerReferences": [owner]} if owner else {}),
        },
        "webhooks": [
            {
                "name": WEBHOOK_NAME,
                "clientConfig": _for_handler(client_config, INJECT_HANDLER_ID),
                "rules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "resources": ["pods"],
                        "operations": ["CREATE"],
                        "scope": "Namespaced",
                    }
                ],
                # Only opted-in pods: while no replica answers, Fail holds up these and nothing else.
                "objectSelector": {"matchLabels": {c.INJECT_LABEL: c.INJECT_LABEL_VALUE}},
                "failurePolicy": failure_policy,
                **common,
            },
            {
                "name": WORKLOAD_WEBHOOK_NAME,
                "clientConfig": _for_handler(client_config, WORKLOAD_HANDLER_ID),
                "rules": [
                    {
                        "apiGroups": ["apps"],
                        "apiVersions": ["v1"],
                        "resources": ["deployments", "statefulsets", "daemonsets"],
                        "operations": ["CREATE", "UPDATE"],
                        "scope": "Namespaced",
                    }
                ],
                "failurePolicy": "Ignore",
                **common,
            },
        ],
    }


def client_config_for(served: dict[str, Any], service: str | None) -> dict[str, Any]:
    """Where the API server reaches the operator: kopf's URL, or the in-cluster Service, plus the CA bundle."""
    config: dict[str, Any] = {}
    if service:
        namespace, _, rest = service.partition("/")
        name, _, port = rest.partition(":")
        config["service"] = {"namespace": namespace, "name": name, "port": int(port or 443)}
    else:
        config["url"] = served["url"].rstrip("/")
    if served.get("caBundle"):
        config["caBundle"] = served["caBundle"]
    return config


def _for_handler(client_config: dict[str, Any], handler_id: str) -> dict[str, Any]:
    """The client config of one kopf handler: kopf's server routes POST /<handler id> to it."""
    config = copy.deepcopy(client_config)
    if "url" in config:
        config["url"] = f"{config['url']}/{handler_id}"
    else:
        config["service"]["path"] = f"/{handler_id}"
    return config


#: Answers one request (its JSON body, its headers) with the JSON to send back (the AdmissionReview response
#: for a webhook); may raise aiohttp's HTTPException for another status.
Answer = Callable[[dict[str, Any], Mapping[str, str]], Awaitable[dict[str, Any]]]


class RegisteringWebhookServer(kopf.WebhookServer):
    """kopf's webhook server that, each time it (re)starts serving, applies the webhook configuration.

    The handler ids in `answers` are answered by those functions directly (the pod webhook, see
    admission.py for why; the identity endpoint, which is no admission webhook), every other one by kopf's
    admission handlers."""

    def __init__(self, *, register: Callable[[dict[str, Any]], Awaitable[None]], service: str | None,
                 answers: Mapping[str, Answer] | None = None, **server_options: Any) -> None:
        super().__init__(**server_options)
        self._register = register
        self._service = service
        self._answers = dict(answers or {})

    async def __call__(self, fn: kopf.WebhookFn) -> AsyncIterator[Any]:
        async def serve(review: Any, *, webhook: str | None = None, **kwargs: Any) -> Any:
            answer = self._answers.get(webhook or "")
            if answer is None:
                return await fn(review, webhook=webhook, **kwargs)
            return await answer(review, kwargs.get("headers") or {})

        # kopf types the review by its keys (a TypedDict); it passes through here as the JSON dict it is.
        async for served in super().__call__(cast(kopf.WebhookFn, serve)):
            await self._register(client_config_for(dict(served), self._service))
            yield served
