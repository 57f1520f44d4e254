"""The dev kit: what the tests, the demo and the benchmarks share to run the product without a cloud.

  processes      free_port, wait_for, stop/terminate: the primitives everything below uses
  cluster        Cluster: a kubeconfig and a kubectl bound to it (the local control plane is `localcluster`)
  aws            MotoServer, EmulatorProcess, test certificate authorities (pki: localcluster.pki)
  operator       OperatorProcess (the operator out of cluster, with the chart's RBAC) and manifests
  sidecar        SidecarProcess, an isolated AWS environment, a Secret volume updated as the kubelet does
  console        the demo's step-by-step console
  docs, pydeps   README.md's generated blocks; pyproject.toml's dependency ranges
  pytest_plugin  the shared fixtures (entry point pytest11)

The Roles Anywhere emulator is a package of its own, rolesanywhere_emulator, in the same distribution.
"""

from pathlib import Path

#: The repository: the kit is installed editable from its hack/ folder.
REPO = Path(__file__).resolve().parents[2]
