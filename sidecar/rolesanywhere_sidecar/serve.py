"""`serve`: the sidecar's parts wired together.

The refresher runs in the main thread, the loopback endpoint and the health listener on their own
threads. SIGTERM interrupts the main thread (see cli.Stopping); the `finally` blocks stop both, and the
files stay as they are.
"""

from __future__ import annotations

import random
import secrets
import threading

from rolesanywhere_protocol import ConfigError, Credentials
from rolesanywhere_protocol.clock import utc_now

from .endpoint import CredentialStore, EndpointServer, credentials_server, health_server
from .fetch import SessionFetcher, session_request
from .files import OutputFiles
from .logs import Redactor, get_logger
from .metrics import Metrics
from .pod_identity import keeper_for
from .refresher import Refresher
from .settings import Settings

log = get_logger("main")


def run(settings: Settings, redactor: Redactor) -> int:
    """Serve until interrupted; with `settings.once`, return once the first credentials are written."""
    rng = random.Random()
    metrics = Metrics(utc_now)
    store = CredentialStore()
    output = OutputFiles(
        settings.output_dir,
        profile_name=settings.profile_name,
        mode=settings.file_mode,
        credentials_directory=settings.credentials_directory,
    )
    # Per-pod identity: the key in memory, its certificate kept fresh by a thread of its own.
    keeper = (keeper_for(settings, now=utc_now, rng=rng, metrics=metrics, redactor=redactor)
              if settings.identity_url else None)
    try:
        fetcher = SessionFetcher(settings, now=utc_now, rng=rng, metrics=metrics,
                                 identity=keeper.current if keeper else None)
        leftovers = output.prepare()
    except (ConfigError, OSError) as error:
        log.error("cannot start: %s", error)
        return 1
    if leftovers:
        log.info("removed temporary files of an interrupted write", extra={"files": leftovers})
    log.info(
        "starting",
        extra={
            "mode": "once" if settings.once else "serve",
            "certificate": settings.certificate or "in memory, from the identity endpoint",
            "identity_url": settings.identity_url,
            "trust_anchor_arn": settings.trust_anchor_arn,
            "profile_arn": settings.profile_arn,
            "role_arn": settings.role_arn,
            "endpoint": fetcher.url,
            "output_dir": settings.output_dir,
            "credentials_dir": settings.credentials_directory,
            "credentials_endpoint": not settings.no_credentials_endpoint,
        },
    )

    def serve_credentials(credentials: Credentials) -> None:
        redactor.add(credentials.secret_access_key, credentials.session_token)
        store.set(credentials)
        metrics.set_credentials_expiration(credentials.expiration)

    def publish(credentials: Credentials) -> None:
        redactor.add(credentials.secret_access_key, credentials.session_token)
        try:
            output.write_credentials(credentials)
        finally:
            # Served once the files are written: /readyz passing (the kubelet's startupProbe, after which
            # the app containers start) then promises the files as well as the endpoint. Served even when
            # the files could not be written, for the endpoint's clients.
            serve_credentials(credentials)

    refresher = Refresher(
        fetch=fetcher, publish=publish, now=utc_now, rng=rng, refresh_fraction=settings.refresh_fraction
    )
    forever = threading.Event()  # never set: SIGTERM interrupts the main thread instead
    if keeper is not None:
        keeper.start(forever)  # a daemon thread: it ends with the process
    if settings.once:
        try:
            return 0 if refresher.run_until_published(forever) else 1
        finally:
            fetcher.close()

    previous = output.read_credentials(session_request(settings).role_arn)
    if previous is not None and previous.expiration > utc_now():
        # A restarted sidecar (same pod, same volume) serves these while it fetches new ones, so
        # clients ride out a restart during a service outage.
        serve_credentials(previous)
        refresher.current = previous
        log.info(
            "serving the credentials of the previous run until new ones arrive",
            extra={"access_key_id": previous.access_key_id, "expiration": previous.expiration.isoformat()},
        )
    # Without the credentials endpoint there is no token: nothing in the pod could use one.
    token = None if settings.no_credentials_endpoint else secrets.token_urlsafe(32)
    servers: list[EndpointServer] = []
    try:
        if token is not None:
            redactor.add(token)
            output.write_token(token)
        servers.append(credentials_server(settings.port, token=token, store=store, metrics=metrics, now=utc_now))
        if settings.health_port:
            servers.append(health_server(settings.health_port, store=store, metrics=metrics, now=utc_now))
    except OSError as error:
        log.error("cannot start: %s", error)
        for server in servers:
            server.server_close()
        fetcher.close()
        return 1
    for server in servers:
        server.start()
    try:
        refresher.run(forever)
    finally:
        for server in servers:
            server.stop()
        fetcher.close()
    return 0
