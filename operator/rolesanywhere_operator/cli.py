"""`rolesanywhere-operator`: run the reconciler and the pod-injecting admission webhook;
`rolesanywhere-operator trust-policy NAMESPACE/NAME`: print the IAM trust policy for one binding.

The Kubernetes API is reached as kubectl does: the pod's service account in a cluster, $KUBECONFIG
(or ~/.kube/config) elsewhere. Every other setting is a flag or an environment variable (see --help).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
from typing import Any

import kopf
from kubernetes.aio.config.config_exception import ConfigException

from . import constants as c
from . import settings as settings_module
from .handlers import registry
from .injection import unsupported_server
from .kube import ApiError, Kube, binding_path
from .spec import InvalidBindingError, parse_binding
from .trust_policy import NoSubjectYet, build_trust_policy


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rolesanywhere-operator",
        description="Kubernetes operator giving pods AWS credentials through IAM Roles Anywhere.",
    )
    settings_module.SETTINGS.add_arguments(parser)
    return parser


def trust_policy_main(argv: list[str]) -> int:
    """`rolesanywhere-operator trust-policy NAMESPACE/NAME`: print the trust policy admitting that binding."""
    parser = argparse.ArgumentParser(
        prog="rolesanywhere-operator trust-policy",
        description="Print the IAM trust policy (JSON) that admits exactly this binding's certificate: put it on "
        "the binding's role (aws iam update-assume-role-policy --role-name ROLE --policy-document file://FILE).",
    )
    parser.add_argument("binding", metavar="NAMESPACE/NAME", help="the RolesAnywhereBinding")
    args = parser.parse_args(argv)
    namespace, _, name = args.binding.partition("/")
    if not namespace or not name or "/" in name:
        parser.error(f"expected NAMESPACE/NAME, got {args.binding!r}")
    try:
        body = asyncio.run(_read_binding(namespace, name))
        if body is None:
            raise InvalidBindingError(f"{c.KIND} {namespace}/{name} does not exist")
        policy = build_trust_policy(parse_binding(body), body.get("status"))
    except (InvalidBindingError, NoSubjectYet, ApiError, ConfigException) as error:
        print(f"rolesanywhere-operator trust-policy: {error}", file=sys.stderr)
        return 1
    print(json.dumps(policy, indent=2))
    return 0


async def _read_binding(namespace: str, name: str) -> dict[str, Any] | None:
    kube = await Kube.connect()
    try:
        return await kube.get(binding_path(namespace, name))
    finally:
        await kube.close()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["trust-policy"]:
        return trust_policy_main(argv[1:])
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
