"""The operator's startup handler sets only kopf settings this kopf has (make test-lowest runs it at the floor).

Importing the handlers proves little: kopf's settings are plain attributes, read only when the startup
handler runs (settings.watching.label_selectors arrived in kopf 1.45.0; with 1.44 the operator never served).
"""

from __future__ import annotations

import asyncio
import logging

import kopf
import pytest
from rolesanywhere_operator import constants as c
from rolesanywhere_operator import handlers


class Connected(Exception):
    """The startup handler got as far as connecting to the API server: every setting before it exists."""


def test_the_startup_handler_configures_kopf_before_it_connects(monkeypatch):
    async def connect():
        raise Connected

    monkeypatch.setattr(handlers.Kube, "connect", connect)
    settings = kopf.OperatorSettings()
    with pytest.raises(Connected):
        asyncio.run(handlers.configure(settings=settings, memo=kopf.Memo(settings=None),
                                       logger=logging.getLogger("test")))
    # Server-side selectors, so the pod and Certificate watches carry only the operator's own.
    pods = kopf.Resource(group="", version="v1", plural="pods", kind="Pod", namespaced=True)
    certificates = kopf.Resource(group=c.CERT_MANAGER_GROUP, version=c.CERT_MANAGER_VERSION,
                                                          plural=c.CERTIFICATES, kind="Certificate", namespaced=True)
    assert list(settings.watching.label_selectors.collect(pods)) == [f"{c.INJECT_LABEL}={c.INJECT_LABEL_VALUE}"]
    assert list(settings.watching.label_selectors.collect(certificates)) == [
        f"{c.MANAGED_BY_LABEL}={c.OPERATOR_NAME},{c.BINDING_LABEL}"]
