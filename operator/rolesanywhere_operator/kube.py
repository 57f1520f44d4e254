"""A thin asyncio Kubernetes API client that speaks plain dicts.

The operator reads and writes a handful of objects (bindings, Certificates, Secrets, Pods, workloads,
issuers); plain JSON by path keeps that uniform for core and custom resources alike. Authentication,
TLS and kubeconfig handling come from kubernetes.aio.
"""

from __future__ import annotations

import builtins
import datetime as dt
import json
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any, cast
from urllib.parse import quote

from kubernetes.aio import client as aio_client
from kubernetes.aio import config as aio_config

from . import constants as c


class ApiError(Exception):
    """The API server refused a request; `status` is the HTTP status, the message the server's."""

    def __init__(self, method: str, path: str, status: int, message: str) -> None:
        super().__init__(f"{method} {path}: HTTP {status}: {message}")
        self.status = status
        self.message = message


def path(api_version: str, plural: str, namespace: str | None = None, name: str | None = None,
         subresource: str | None = None) -> str:
    """The API path of a collection or an object: path("v1", "pods", "ns", "web-1").

    The namespace and the name are one path segment each, whatever they hold: "/" is escaped and a "."
    or ".." (which HTTP clients resolve) is refused, so no value can address another object.
    """
    root = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    parts = [root]
    if namespace:
        parts.append(f"namespaces/{segment(namespace)}")
    parts.append(plural)
    if name:
        parts.append(segment(name))
    if subresource:
        parts.append(subresource)
    return "/".join(parts)


def segment(value: str) -> str:
    """`value` as exactly one escaped path segment; ValueError for "." and "..", which are not names."""
    if value in (".", ".."):
        raise ValueError(f"{value!r} is not a Kubernetes name")
    return quote(value, safe="")


#: The status of an ApiError raised by the operator itself, for an object outside the namespace asked for.
OUTSIDE_NAMESPACE_STATUS = 403


def in_namespace(found: Any, namespace: str, api_path: str) -> dict[str, Any]:
    """`found`, if it is an object of `namespace`; ApiError otherwise (a path that resolved elsewhere)."""
    got = ((found or {}).get("metadata") or {}).get("namespace") if isinstance(found, dict) else None
    if got != namespace:
        raise ApiError("GET", api_path, OUTSIDE_NAMESPACE_STATUS,
                       f"the object read is in namespace {got!r}, not {namespace!r} as asked; refused")
    return cast(dict[str, Any], found)


def binding_path(namespace: str, name: str | None = None, subresource: str | None = None) -> str:
    return path(c.API_VERSION, c.PLURAL, namespace, name, subresource)


#: Seconds an API request may take before it fails (the webhook passes less: it answers within its own).
REQUEST_TIMEOUT_SECONDS = 30.0


class Kube:
    def __init__(self, api: aio_client.ApiClient) -> None:
        self._api = api

    @classmethod
    async def connect(cls) -> Kube:
        """In a pod: its service account. Elsewhere: $KUBECONFIG (or ~/.kube/config), as kubectl does."""
        configuration = aio_client.Configuration()
        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            aio_config.load_incluster_config(client_configuration=configuration)
        else:
            await aio_config.load_kube_config(client_configuration=configuration, persist_config=False)
        # Like kopf's own client: no proxy variables or ~/.netrc, which aiohttp would otherwise re-read from
        # disk, in a thread, on every request to the API server (bench figure 6).
        configuration.client_session_kwargs = {"trust_env": False}
        return cls(aio_client.ApiClient(configuration=configuration))

    async def close(self) -> None:
        await self._api.close()

    async def request(
        self,
        method: str,
        api_path: str,
        *,
        query: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: float = REQUEST_TIMEOUT_SECONDS,
    ) -> Any:
        headers = {"Accept": "application/json", "Content-Type": content_type}
        method_, url, headers, body_, _ = await self._api.param_serialize(
            method,
            api_path,
            query_params=list((query or {}).items()),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        response = await self._api.call_api(method_, url, header_params=headers, body=body_, _request_timeout=timeout)
        raw = await response.read()
        if response.status >= 400:
            try:
                message = json.loads(raw).get("message", "")
            except ValueError:
                message = raw.decode(errors="replace")
            raise ApiError(method, api_path, response.status, message)
        return json.loads(raw) if raw else None

    async def _object(self, method: str, api_path: str, **request: Any) -> dict[str, Any]:
        # What a write answers: the object as the API server now holds it.
        return cast(dict[str, Any], await self.request(method, api_path, **request))

    async def get(
        self, api_path: str, *, namespace: str | None = None, timeout: float = REQUEST_TIMEOUT_SECONDS
    ) -> dict[str, Any] | None:
        """The object, or None when it does not exist.

        With `namespace`, an object found outside it is refused (ApiError), never returned.
        """
        try:
            found = await self.request("GET", api_path, timeout=timeout)
        except ApiError as error:
            if error.status == 404:
                return None
            raise
        return found if namespace is None else in_namespace(found, namespace, api_path)

    async def list(self, api_path: str, *, label_selector: str | None = None) -> list[dict[str, Any]]:
        return (await self.list_with_version(api_path, label_selector=label_selector))[0]

    async def list_with_version(
        self, api_path: str, *, label_selector: str | None = None
    ) -> tuple[builtins.list[dict[str, Any]], str]:
        """The items and the list's resourceVersion, from which a watch starts."""
        query = {"labelSelector": label_selector} if label_selector else None
        found = await self.request("GET", api_path, query=query)
        return found.get("items") or [], str((found.get("metadata") or {}).get("resourceVersion", ""))

    async def watch(
        self, api_path: str, *, resource_version: str, timeout_seconds: int
    ) -> AsyncIterator[dict[str, Any]]:
        """The watch events ({type, object}) after `resource_version`, until the server ends the watch."""
        query = {
            "watch": "1",
            "resourceVersion": resource_version,
            "timeoutSeconds": str(timeout_seconds),
            "allowWatchBookmarks": "true",
        }
        method, url, headers, _, _ = await self._api.param_serialize(
            "GET", api_path, query_params=list(query.items()), header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        response = await self._api.call_api(method, url, header_params=headers, _request_timeout=timeout_seconds + 30)
        try:
            if response.status >= 400:
                raw = await response.read()
                raise ApiError("WATCH", api_path, response.status, raw.decode(errors="replace")[:500])
            async for line in response.response.content:
                if line.strip():
                    yield json.loads(line)
        finally:
            response.response.release()

    async def apply(self, api_path: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply as the operator: the fields it sets are its own, others' stay untouched."""
        return await self._object(
            "PATCH",
            api_path,
            query={"fieldManager": c.OPERATOR_NAME, "force": "true"},
            body=obj,
            content_type="application/apply-patch+yaml",
        )

    async def merge_patch(self, api_path: str, patch: dict[str, Any]) -> dict[str, Any]:
        return await self._object(
            "PATCH", api_path, query={"fieldManager": c.OPERATOR_NAME}, body=patch,
            content_type="application/merge-patch+json",
        )

    async def delete(self, api_path: str) -> None:
        try:
            await self.request("DELETE", api_path)
        except ApiError as error:
            if error.status != 404:
                raise

    async def post_event(self, involved: Mapping[str, Any], type: str, reason: str, message: str) -> None:
        """A core/v1 Event about `involved` (an object's body), as kubectl describe shows them."""
        metadata = involved.get("metadata") or {}
        now = dt.datetime.now(dt.UTC).strftime(c.TIME_FORMAT)
        await self.request("POST", path("v1", "events", metadata.get("namespace")), body={
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"generateName": f"{metadata.get('name', 'object')}.", "namespace": metadata.get("namespace")},
            "involvedObject": {"apiVersion": involved.get("apiVersion"), "kind": involved.get("kind"),
                               "name": metadata.get("name"), "namespace": metadata.get("namespace"),
                               "uid": metadata.get("uid")},
            "type": type, "reason": reason, "message": message[:1024],
            "source": {"component": c.OPERATOR_NAME}, "reportingComponent": c.OPERATOR_NAME,
            "firstTimestamp": now, "lastTimestamp": now, "count": 1,
        })

    async def server_version(self) -> tuple[int, int]:
        """(major, minor) of the API server; "29+" style minors count as 29."""
        version = await self.request("GET", "/version")
        minor = "".join(ch for ch in str(version.get("minor", "0")) if ch.isdigit()) or "0"
        return int(version.get("major", "1")), int(minor)
