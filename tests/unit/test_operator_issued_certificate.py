"""The certificate of a binding's current revision is read from its CertificateRequests once per revision:
a refresh whose Certificate did not change revision lists none (bench figure 6: a pod event or a resync
refreshed the status, and each listed the binding's requests)."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import yaml
from rolesanywhere_operator import constants as c
from rolesanywhere_operator.reconcile import Reconciler
from rolesanywhere_operator.spec import parse_binding

BINDING = parse_binding(yaml.safe_load((Path(__file__).parent / "testdata" / "injection" / "binding.yaml").read_text()))


class RequestsKube:
    """Holds the binding's CertificateRequests, one per revision; counts the lists."""

    def __init__(self, revisions: list[int]) -> None:
        self.revisions, self.listed = revisions, 0

    async def list(self, api_path: str, *, label_selector: str | None = None) -> list[dict]:
        self.listed += 1
        return [{
            "metadata": {"annotations": {c.CERT_MANAGER_CERTIFICATE_NAME_ANNOTATION: c.certificate_name(BINDING.name),
                                         c.CERT_MANAGER_REVISION_ANNOTATION: str(revision)}},
            "status": {"certificate": base64.b64encode(f"pem {revision}".encode()).decode()},
        } for revision in self.revisions]  # fmt: skip


def certificate(revision: int) -> dict:
    return {"status": {"revision": revision, "notAfter": f"2027-01-0{revision}T00:00:00Z"}}


def test_the_issued_certificate_is_listed_once_per_revision():
    kube = RequestsKube([1])
    reconciler = Reconciler(kube=kube, post_event=lambda body, event: None)

    async def scenario() -> list[bytes | None]:
        found = [await reconciler._issued_pem(BINDING, certificate(1)) for _ in range(3)]
        kube.revisions.append(2)
        return [*found, await reconciler._issued_pem(BINDING, certificate(2))]

    assert asyncio.run(scenario()) == [b"pem 1", b"pem 1", b"pem 1", b"pem 2"]
    assert kube.listed == 2


def test_a_revision_whose_request_is_not_there_yet_is_looked_for_again():
    kube = RequestsKube([])
    reconciler = Reconciler(kube=kube, post_event=lambda body, event: None)

    async def scenario() -> list[bytes | None]:
        missing = await reconciler._issued_pem(BINDING, certificate(1))
        kube.revisions.append(1)
        return [missing, await reconciler._issued_pem(BINDING, certificate(1))]

    assert asyncio.run(scenario()) == [None, b"pem 1"]
    assert kube.listed == 2
