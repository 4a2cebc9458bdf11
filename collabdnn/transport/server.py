"""What every CollabDNN gRPC service does the same way: bind, health, load, stop.

A service binds its port first (so ``--port 0`` can be announced at once), reports
NOT_SERVING on ``grpc.health.v1`` while its model loads in a background thread, then
SERVING. SIGTERM and SIGINT stop it gracefully: in-flight RPCs get ``grace_s`` seconds.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable
from concurrent import futures
from types import FrameType

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from collabdnn.transport import security
from collabdnn.transport.channels import DEFAULT_MAX_MESSAGE_MB, message_options
from collabdnn.transport.security import PLAINTEXT, SecurityConfig

log = logging.getLogger(__name__)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


# Clients (the agent's channel to the cloud) send keepalive pings every 10 s even when
# idle, to notice a dead peer; a server by default answers pings more often than every
# 5 minutes with GOAWAY "too_many_pings". Allow them down to 5 s, with or without calls.
SERVER_KEEPALIVE_OPTIONS: list[tuple[str, int]] = [
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
]


def new_server(
    max_message_mb: float = DEFAULT_MAX_MESSAGE_MB,
    workers: int = 8,
    security_config: SecurityConfig = PLAINTEXT,
    maximum_concurrent_rpcs: int | None = None,
    max_connection_age_s: float = 0.0,
) -> grpc.Server:
    """A server with message limits and, when a token is configured, its check.

    ``workers`` handler threads; beyond ``maximum_concurrent_rpcs`` calls in the server
    (running or waiting for a thread) gRPC answers RESOURCE_EXHAUSTED by itself.
    ``max_connection_age_s`` > 0: each client connection is closed (GOAWAY, in-flight
    calls get as long again to finish) after about that long, so that clients resolve
    the server's name again and spread over replicas added meanwhile.
    """
    age: list[tuple[str, int]] = []
    if max_connection_age_s > 0:
        ms = int(max_connection_age_s * 1e3)
        age = [("grpc.max_connection_age_ms", ms), ("grpc.max_connection_age_grace_ms", ms)]
    return grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rpc"),
        options=[*message_options(max_message_mb), *SERVER_KEEPALIVE_OPTIONS, *age],
        interceptors=security.server_interceptors(security_config),
        maximum_concurrent_rpcs=maximum_concurrent_rpcs,
    )


class Health:
    """The standard health service; ``""`` (the whole server) plus each named service."""

    def __init__(self, server: grpc.Server, services: Iterable[str]) -> None:
        self.servicer = health.HealthServicer()
        self.services = ["", *services]
        health_pb2_grpc.add_HealthServicer_to_server(self.servicer, server)
        self.set(False)

    def set(self, serving: bool) -> None:
        for name in self.services:
            self.servicer.set(name, SERVING if serving else NOT_SERVING)

    def shutdown(self) -> None:
        """Tell watchers the server is going away (NOT_SERVING from now on)."""
        self.servicer.enter_graceful_shutdown()


def bind(
    server: grpc.Server, host: str, port: int, security_config: SecurityConfig = PLAINTEXT
) -> int:
    """Bind ``host:port`` (0 = any free port), TLS or plaintext; returns the bound port."""
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        return security.bind(server, address, security_config)
    except RuntimeError as exc:  # grpc raises RuntimeError when the port is taken
        raise OSError(f"cannot bind {address}: {exc}") from exc


def load_in_background(name: str, load: Callable[[], None], failed: threading.Event) -> None:
    """Run ``load`` in a thread; on an exception log it and set ``failed``."""

    def target() -> None:
        try:
            load()
        except Exception:
            log.exception("%s failed to start", name)
            failed.set()

    threading.Thread(target=target, name=f"{name}-loader", daemon=True).start()


def run_until_stopped(
    server: grpc.Server, health_: Health, failed: threading.Event, grace_s: float = 5.0
) -> int:
    """Serve until SIGTERM/SIGINT (exit 0) or a failed start (exit 1); stop gracefully."""
    stop = threading.Event()
    received: list[str] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        received.append(signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        while not stop.wait(0.2) and not failed.is_set():
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    why = received[0] if received else "start failure"
    log.info("stopping on %s (grace %.1f s)", why, grace_s)
    begin = time.perf_counter()
    health_.shutdown()
    server.stop(grace_s).wait()
    log.info("stopped in %.2f s", time.perf_counter() - begin)
    return 1 if failed.is_set() else 0


def start_and_run(
    server: grpc.Server,
    port: int,
    health_: Health,
    failed: threading.Event,
    *,
    host: str,
    grace_s: float,
    describe: str,
    on_bound: Callable[[str, int], None] | None = None,
    cleanup: Iterable[Callable[[], None]] = (),
) -> int:
    """Start a built server, announce it, serve until SIGTERM/SIGINT, then clean up.

    ``on_bound(host, port)`` is called once the port is bound (the CLI prints the
    machine-readable ``listening on`` line); ``cleanup`` runs after the server stopped.
    """
    server.start()
    log.info("listening on %s:%d, %s", host, port, describe)
    if on_bound:
        on_bound(host, port)
    try:
        return run_until_stopped(server, health_, failed, grace_s)
    finally:
        for step in cleanup:
            step()


class InFlight:
    """Counts requests being handled (the load a service reports) and those finished."""

    def __init__(self) -> None:
        self._count = 0
        self.served = 0
        self._lock = threading.Lock()

    @property
    def count(self) -> int:
        return self._count

    def __enter__(self) -> int:
        with self._lock:
            self._count += 1
            return self._count

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._count -= 1
            self.served += 1
