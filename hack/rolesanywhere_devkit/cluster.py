"""What a test needs of a cluster: its kubeconfig and a kubectl bound to it (the integration and node tiers)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from localcluster.controlplane import ControlPlane, kubectl


@dataclass
class Cluster:
    """What a test needs of a cluster: its kubeconfig and a kubectl bound to it."""

    kubeconfig: Path
    bin_dir: Path
    #: The local control plane (None for a cluster given by TEST_KUBECONFIG_ENV): its audit log.
    plane: ControlPlane | None = None

    def kubectl(self, *args: str, check: bool = True, input: str | None = None):
        return kubectl(self.bin_dir, self.kubeconfig, *args, check=check, input=input)

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict:
        ns = ["-n", namespace] if namespace else []
        return json.loads(self.kubectl("get", kind, name, *ns, "-o", "json").stdout)

    def apply(self, manifest: dict | str, namespace: str | None = None):
        text = manifest if isinstance(manifest, str) else json.dumps(manifest)
        ns = ["-n", namespace] if namespace else []
        return self.kubectl("apply", *ns, "-f", "-", input=text)
