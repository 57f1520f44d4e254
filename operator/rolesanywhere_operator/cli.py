"""`rolesanywhere-operator`: run the reconciler and the pod-injecting admission webhook.

The Kubernetes API is reached as kubectl does: the pod's service account in a cluster, $KUBECONFIG
(or ~/.kube/config) elsewhere. Every other setting is a flag or an environment variable (see --help).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys

import kopf

from . import settings as settings_module
from .handlers import registry
from .injection import unsupported_server
from .kube import Kube


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rolesanywhere-operator",
        description="Kubernetes operator giving pods AWS credentials through IAM Roles Anywhere.",
    )
    settings_module.add_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = settings_module.resolve(vars(args), os.environ)
    except settings_module.SettingsError as error:
        print(f"rolesanywhere-operator: {error}", file=sys.stderr)
        return 2
    unsupported = asyncio.run(_unsupported_api_server())
    if unsupported:
        print(f"rolesanywhere-operator: {unsupported}", file=sys.stderr)
        return 1
    kopf.configure(
        debug=settings.log_level == "debug",
        quiet=settings.log_level == "warning",
        log_format=kopf.LogFormat[settings.log_format.upper()],
    )
    # With a peering name, replicas see each other and only the highest-priority one reconciles (every
    # replica still serves the webhook); without one, the operator runs standalone.
    priority = random.randrange(1, 2**31) if settings.peering else None
    kopf.run(
        registry=registry,
        clusterwide=True,
        standalone=settings.peering is None,
        peering_name=settings.peering,
        priority=priority,
        liveness_endpoint=settings.liveness_endpoint,
        memo=kopf.Memo(settings=settings, priority=priority),
    )
    return 0


async def _unsupported_api_server() -> str | None:
    """Why the API server cannot be served, said once before kopf starts; None when it can, or when it
    cannot be asked yet (kopf then retries the connection, and its start-up handler checks again)."""
    try:
        kube = await Kube.connect()
        try:
            return unsupported_server(await kube.server_version())
        finally:
            await kube.close()
    except Exception:  # noqa: BLE001 - unreachable now is kopf's to report and retry
        return None


if __name__ == "__main__":
    sys.exit(main())
