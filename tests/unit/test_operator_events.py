"""Events posted outside kopf's handlers (the periodic resync) are posted, not lost with the task.

kopf.event needs kopf's event queue, which only its handlers' context has: called from the resync task
it raised LookupError, and that ended the resync for good (no binding was refreshed again)."""

from __future__ import annotations

import asyncio
import logging

from rolesanywhere_operator.handlers import _event_poster
from rolesanywhere_operator.status import Event


class RecordingKube:
    """Stands in for the API client: records the Events the poster sends."""

    def __init__(self) -> None:
        self.posted: list[tuple[str, str, str, str]] = []

    async def post_event(self, involved, type, reason, message) -> None:
        self.posted.append((involved["metadata"]["name"], type, reason, message))


def test_an_event_posted_outside_kopfs_handlers_is_sent_by_the_operator_itself():
    kube = RecordingKube()
    post = _event_poster(kube, logging.getLogger("test"))
    body = {"apiVersion": "rolesanywhere.dev/v1alpha1", "kind": "RolesAnywhereBinding",
            "metadata": {"name": "kept", "namespace": "shop", "uid": "u1"}}

    async def resync_like_task() -> None:
        post(body, Event("Warning", "CertificateRecreated", "created it again"))  # must not raise
        for _ in range(100):
            if kube.posted:
                return
            await asyncio.sleep(0.01)

    asyncio.run(resync_like_task())
    assert kube.posted == [("kept", "Warning", "CertificateRecreated", "created it again")]
