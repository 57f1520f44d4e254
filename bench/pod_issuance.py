"""Figure 8: per-pod identity issuance (spec.certificate.identity: Pod): how long pods starting together
wait for certificates of their own, against the shared-certificate path.

One namespace, one cert-manager CA Issuer signing with the CA the Roles Anywhere emulator's trust anchor
trusts. Per-pod: a binding with identity Pod, Scale.issuance_pods + 1 pods naming it, created as API
objects (the webhook injects them; no kubelet runs them) and a pod-bound token minted for each through
the TokenRequest API, as the kubelet would project it (not timed). Each "pod" is a thread running the
sidecar's own code: a new key (generate_key, the sidecar's default algorithm), IdentityClient.issue
against the operator's identity endpoint (TokenReview, the 409 re-sign round trip, a CertificateRequest
approved by the operator and signed by cert-manager), then one CreateSession with the issued identity.
The first pod does this alone (the uncontended exchange); then the others start together, released by
one barrier. A failed exchange is retried after the sidecar's own backoff_delay, as its IdentityKeeper
would. Measured: from the release to the last pod holding credentials, and each issue() call.

Peer (same run, same Issuer, same emulator): a binding with the default shared certificate. Its one
Certificate is timed from the binding's create to Ready (the operator creates it, cert-manager issues
it); then as many threads as pods start together, each with its own CreateSession client and that one
certificate (read from the Secret). That is the shared path's pod start: the certificate is issued once,
when the binding is made, not as pods start; so the time-to-last-credentials row compares per-pod issuance
plus CreateSession with CreateSession alone, and the single-exchange row compares one per-pod certificate
with the binding's one.
"""

from __future__ import annotations

import base64
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from rolesanywhere_devkit.operator import binding, ca_issuer
from rolesanywhere_devkit.processes import wait_for
from rolesanywhere_operator import constants as c
from rolesanywhere_operator.identity_endpoint import ISSUE_TIMEOUT_SECONDS
from rolesanywhere_protocol.client import CreateSessionClient, SessionRequest
from rolesanywhere_protocol.identity import X509Identity, identity_from_pem
from rolesanywhere_protocol.pod_identity import CLIENT_TIMEOUT_SECONDS, TOKEN_AUDIENCE
from rolesanywhere_sidecar.pod_identity import IdentityClient, IdentityError, generate_key
from rolesanywhere_sidecar.refresher import backoff_delay
from rolesanywhere_sidecar.settings import KEY_ALGORITHMS

from .admission import pod
from .cluster import BenchCluster
from .context import Context
from .procstat import cpu_seconds, percentile, rss_mib, wait_until_quiet
from .readiness import is_ready
from .report import FigureResult, Row

TITLE = "8 per-pod identity issuance (peer: one shared certificate)"
GOAL_ALL_SECONDS = 30.0
#: The longest one pod keeps trying (its exchanges retried with the sidecar's backoff) before it gives up.
POD_DEADLINE_SECONDS = 120.0
ISSUER = "roles-anywhere-ca"
PER_POD, SHARED = "per-pod", "shared"
IN_FLIGHT = 20  # pod creations in flight (setup, not timed)


@dataclass
class PodRun:
    """One pod's start: its issue() calls (seconds each, failed ones apart) and when it held credentials."""

    exchanges: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    create_session: float | None = None
    done_at: float | None = None  # perf_counter
    error: str = ""


def measure(ctx: Context) -> FigureResult:
    operator = ctx.kube.ensure_operator()
    cluster = ctx.kube.ensure_cluster()
    pods = ctx.scale.issuance_pods
    namespace = cluster.create_namespace(f"bench-issuance-{uuid.uuid4().hex[:6]}")
    directory = ctx.directory("pod-issuance")
    ca_issuer(cluster, namespace, ctx.aws.authorities.root, name=ISSUER)
    w = ctx.aws.workload
    arns = {"trust_anchor_arn": w.trust_anchor_arn, "profile_arn": w.profile_arn, "role_arn": w.role_arn}
    request = SessionRequest(w.trust_anchor_arn, w.profile_arn, w.role_arn)
    endpoint = ctx.aws.normal.url

    # --- Peer: the binding's one shared certificate, then every pod's CreateSession with it ---
    wait_until_quiet(operator.process.pid)
    shared_issuance, shared = _shared_certificate(cluster, namespace, arns)
    _session_only(shared, endpoint, request)  # not timed: the emulator's (and moto's) first call is slow
    shared_runs = _together([lambda: _session_only(shared, endpoint, request) for _ in range(pods)])

    # --- Per-pod: pods and their tokens made first (not timed), then one pod alone, then all together ---
    per_pod = binding(PER_POD, **arns, issuer=ISSUER)
    per_pod["spec"]["certificate"]["identity"] = "Pod"
    cluster.apply(per_pod, namespace)
    wait_for(lambda: _injected(cluster, namespace), timeout=60, interval=0.2,
             what="the webhook to inject a per-pod dry-run pod")  # fmt: skip
    names = [f"issuance-{i}" for i in range(pods + 1)]
    cluster.create_all(f"/api/v1/namespaces/{namespace}/pods", [pod(n, PER_POD) for n in names], IN_FLIGHT,
                       directory)  # fmt: skip
    clients = _identity_clients(cluster, namespace, names, directory, operator)
    algorithm = KEY_ALGORITHMS[0]  # the sidecar's default key_algorithm
    wait_until_quiet(operator.process.pid)
    alone = _together([lambda: _pod_start(clients[0], algorithm, endpoint, request)])[1][0]
    wait_until_quiet(operator.process.pid)
    cpu_before = cpu_seconds(operator.process.pid)
    seconds, runs = _together([lambda cl=cl: _pod_start(cl, algorithm, endpoint, request) for cl in clients[1:]])
    operator_cpu = cpu_seconds(operator.process.pid) - cpu_before
    shared_seconds = shared_runs[0]

    for what, group in (("per-pod", [alone, *runs]), ("shared-certificate", shared_runs[1])):
        failed = [r for r in group if r.error]
        if failed:
            raise RuntimeError(f"{len(failed)} of {len(group)} {what} pods got no credentials; first: {failed[0].error}")
    exchanges = [s for r in runs for s in r.exchanges]
    retried = [f for r in runs for f in r.failures]
    sessions = [r.create_session for r in runs if r.create_session is not None]
    shared_sessions = [r.create_session for r in shared_runs[1] if r.create_session is not None]
    result = FigureResult(TITLE)
    result.rows += [
        Row(TITLE, "one pod alone: identity exchange (issue())", alone.exchanges[-1] * 1000, shared_issuance * 1000,
            "ms", note="peer: the shared binding's Certificate, binding created to Certificate Ready"),
        Row(TITLE, f"{pods} pods together: last holds credentials", seconds, shared_seconds, "s",
            f"all {pods} within {GOAL_ALL_SECONDS:g} s", seconds <= GOAL_ALL_SECONDS,
            "release to the last CreateSession answered; peer: the same pods' CreateSessions with the shared "
            "certificate issued before (add its issuance above for a binding created with its pods)"),
        Row(TITLE, f"{pods} together: identity exchange, p50", percentile(exchanges, 0.5) * 1000, None, "ms",
            note=f"{len(exchanges)} successful issue() calls (409 re-sign included); {len(retried)} failed and "
                 "were retried" + (f", first: {retried[0]}" if retried else "")),
        Row(TITLE, f"{pods} together: identity exchange, p99", percentile(exchanges, 0.99) * 1000, None, "ms",
            note=f"max {max(exchanges) * 1000:,.0f} ms"),
        Row(TITLE, f"{pods} together: CreateSession, p50", percentile(sessions, 0.5) * 1000,
            percentile(shared_sessions, 0.5) * 1000, "ms",
            note="each pod's own certificate, called as its own exchange ends; peer: the shared certificate, "
                 "all pods' calls released at once"),
        Row(TITLE, "operator CPU per exchange", operator_cpu / len(runs) * 1000, None, "ms",
            note=f"operator CPU over the {pods} together / {pods}; its RSS after: "
                 f"{rss_mib(operator.process.pid):.0f} MiB"),
    ]  # fmt: skip
    result.findings.append(
        "**What an exchange does.** Each issue() is two POSTs to the identity endpoint (an empty CSR answered "
        "409 with the CertificationRequestInfo the operator decides, then that info signed); the second does a "
        "TokenReview, reads the pod, creates and approves a CertificateRequest, then reads it every 0.2 s until "
        "cert-manager has signed it. The figure times the whole call and does not split it between the "
        "operator, the API server and cert-manager (hack/tools/cert-manager: client limit 50 requests/s, 2 "
        "workers per controller), which share the machine's cores with each other and with the bench's own "
        f"{pods} threads. The shared path makes one CertificateRequest per binding, whatever its pod count."
    )
    result.findings.append(
        f"**Timeouts.** The slowest exchange took {max(exchanges):.1f} s. The endpoint waits up to "
        f"{ISSUE_TIMEOUT_SECONDS:g} s for cert-manager before it answers 503; the sidecar waits "
        f"{CLIENT_TIMEOUT_SECONDS:g} s for an answer, so a slow issuer's certificate is not dropped."
    )
    return result


# --- The peer: one Certificate for the binding ---------------------------------------------------------


def _shared_certificate(cluster: BenchCluster, namespace: str, arns: dict[str, str]) -> tuple[float, X509Identity]:
    """(seconds from the shared binding's create to its Certificate Ready, the certificate from its Secret)."""
    certificate = f"/apis/cert-manager.io/v1/namespaces/{namespace}/certificates/{c.certificate_name(SHARED)}"
    started = time.perf_counter()
    cluster.apply(binding(SHARED, **arns, issuer=ISSUER), namespace)
    with cluster.api() as api:

        def ready() -> bool:
            response = api.get(certificate)
            return response.status_code == 200 and is_ready(response.json())

        wait_for(ready, timeout=60, interval=0.05, what=f"Certificate {c.certificate_name(SHARED)} Ready")
        seconds = time.perf_counter() - started
        secret = api.get(f"/api/v1/namespaces/{namespace}/secrets/{c.certificate_secret_name(SHARED)}")
        secret.raise_for_status()
    data = {k: base64.b64decode(v) for k, v in secret.json()["data"].items()}
    identity = identity_from_pem(data["tls.crt"], data["tls.key"], sources=("tls.crt", "tls.key"))
    return seconds, identity


def _session_only(identity: X509Identity, endpoint: str, request: SessionRequest) -> PodRun:
    run = PodRun()
    with CreateSessionClient(endpoint) as client:
        started = time.perf_counter()
        client.create_session(identity, request)
        run.done_at = time.perf_counter()
        run.create_session = run.done_at - started
    return run


# --- Per-pod: the sidecar's exchange, then CreateSession -----------------------------------------------


def _injected(cluster: BenchCluster, namespace: str) -> bool:
    """Whether a dry-run pod of the per-pod binding is injected (the operator has seen the binding)."""
    with cluster.api() as api:
        response = api.post(f"/api/v1/namespaces/{namespace}/pods", params={"dryRun": "All"},
                            json=pod(f"probe-{uuid.uuid4().hex[:8]}", PER_POD))  # fmt: skip
    return response.status_code == 201 and c.INJECTED_ANNOTATION in (response.json()["metadata"].get("annotations") or {})


def _identity_clients(cluster: BenchCluster, namespace: str, names: list[str], directory: Path,
                      operator) -> list[IdentityClient]:  # fmt: skip
    """An IdentityClient per pod, its pod-bound token minted now and written where the client reads it."""
    tokens = directory / "tokens"
    tokens.mkdir(exist_ok=True)
    clients = []
    with cluster.api() as api:
        listed = api.get(f"/api/v1/namespaces/{namespace}/pods")
        listed.raise_for_status()
        uids = {p["metadata"]["name"]: p["metadata"]["uid"] for p in listed.json()["items"]}
        for name in names:
            response = api.post(
                f"/api/v1/namespaces/{namespace}/serviceaccounts/default/token",
                json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                      "spec": {"audiences": [TOKEN_AUDIENCE], "expirationSeconds": 600,
                               "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": name,
                                                  "uid": uids[name]}}},
            )  # fmt: skip
            response.raise_for_status()
            token = tokens / name
            token.write_text(response.json()["status"]["token"])
            clients.append(IdentityClient(operator.identity_url, token_file=token, ca_bundle=operator.ca_path))
    return clients


def _pod_start(client: IdentityClient, algorithm: str, endpoint: str, request: SessionRequest) -> PodRun:
    """What a per-pod sidecar does as it starts: its key, its certificate (retried as the keeper would),
    then CreateSession."""
    run = PodRun()
    rng = random.Random()
    deadline = time.perf_counter() + POD_DEADLINE_SECONDS
    identity = None
    while identity is None:
        started = time.perf_counter()
        try:
            identity = client.issue(generate_key(algorithm))
        except IdentityError as error:
            run.failures.append(f"after {time.perf_counter() - started:.1f} s: {error}"[:200])
            delay = backoff_delay(len(run.failures), remaining_seconds=None, rng=rng)
            if time.perf_counter() + delay > deadline:
                run.error = run.failures[-1]
                return run
            time.sleep(delay)
            continue
        run.exchanges.append(time.perf_counter() - started)
    with CreateSessionClient(endpoint) as session_client:
        started = time.perf_counter()
        session_client.create_session(identity, request)
        run.done_at = time.perf_counter()
        run.create_session = run.done_at - started
    return run


def _together(starts: list) -> tuple[float, list[PodRun]]:
    """Run every callable in a thread of its own, released together by one barrier; (seconds from the
    release to the last one done, their runs)."""
    barrier = threading.Barrier(len(starts) + 1)
    runs: list[PodRun | None] = [None] * len(starts)

    def run(index: int) -> None:
        barrier.wait()
        try:
            runs[index] = starts[index]()
        except Exception as error:  # noqa: BLE001 - reported as that pod's failure
            runs[index] = PodRun(error=f"{type(error).__name__}: {error}"[:300])

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(starts))]
    for thread in threads:
        thread.start()
    barrier.wait()
    released = time.perf_counter()
    for thread in threads:
        thread.join(POD_DEADLINE_SECONDS + 60)
    done = [r if r is not None else PodRun(error="did not finish") for r in runs]
    finished = [r.done_at for r in done if r.done_at is not None]
    return (max(finished) - released if finished else float("nan")), done
