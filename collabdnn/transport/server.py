"""What every CollabDNN gRPC service does the same way: bind, health, load, stop.

:func:`build_server` is the one server factory: a service says which servicers to
register and what loading means (a model, the first plan), and gets a
:class:`BuiltServer`, whose :meth:`~BuiltServer.serve` is the one serve loop, and whose
:meth:`~BuiltServer.embedded` is the server for in-process use (``create_server``): its
``stop(grace)`` runs the service's cleanup too, as ``serve`` does after SIGTERM.

A service binds its port first (so ``--port 0`` can be announced at once), reports
NOT_SERVING on ``grpc.health.v1`` while its model loads in a background thread, then
SERVING. SIGTERM and SIGINT stop it gracefully: in-flight RPCs get ``grace_s`` seconds;
then the service's ``halt`` event is set, and work still in flight stops at its next
unit boundary (:func:`collabdnn.bounds.stop_check`), so the process exits within about
one unit's time of its grace. A load that fails stops the service with exit status 1.

``health_port`` adds a second, plaintext listener that serves ``grpc.health.v1`` and
nothing else: orchestrators' native gRPC probes (Kubernetes) cannot speak TLS, so with
TLS on the service port they need a port of their own; the health service reveals only
SERVING / NOT_SERVING.
"""

from __future__ import annotations

import errno
import logging
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from types import FrameType

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from collabdnn.errors import ConfigError
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
# gRPC sets SO_REUSEPORT by default: a second server on a busy port would start and take
# a share of the new connections. Without it, binding a busy port fails.
SERVER_BIND_OPTIONS: list[tuple[str, int]] = [("grpc.so_reuseport", 0)]
# How long a stop waits for a ``once_serving`` already running (the agent's first check
# of the cloud) before the cleanup runs anyway: it starts what the cleanup stops.
ONCE_SERVING_WAIT_S = 30.0


class BindError(OSError, ConfigError):
    """The service cannot listen on its address (in use, not local, not allowed)."""


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
    """Bind ``host:port`` (0 = any free port), TLS or plaintext; returns the bound port.

    Raises :class:`BindError` (one line: the address and why) when the port is taken or
    the address is not this machine's, and ``SecurityError`` for unusable TLS files.
    """
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    # Asked of the OS first: gRPC's own failure says only "failed to bind" (and logs it).
    if _cannot_listen(host, port, only_in_use=True):
        raise BindError(f"cannot listen on {address}: {IN_USE}")
    try:
        return security.bind(server, address, security_config)
    except RuntimeError as exc:  # grpc raises RuntimeError when it cannot bind
        why = _cannot_listen(host, port) or "gRPC could not bind it"
        raise BindError(f"cannot listen on {address}: {why}") from exc


IN_USE = "the port is already in use (is another service running there?)"


def _cannot_listen(host: str, port: int, only_in_use: bool = False) -> str | None:
    """Why ``host:port`` cannot be listened on, asked of the OS; ``None`` if it can.

    ``only_in_use``: report a port in use only (a name that also resolves to an address
    this machine lacks, such as ``localhost`` without IPv6, is gRPC's to judge).
    """
    if port == 0:
        return None
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return None if only_in_use else f"unknown host ({exc.strerror})"
    problems = []
    for family, kind, proto, _name, sockaddr in infos:
        with socket.socket(family, kind, proto) as probe:
            # Like gRPC: SO_REUSEADDR (a port in TIME_WAIT is free), no SO_REUSEPORT.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(sockaddr)
                probe.listen(1)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return IN_USE
                problems.append((exc.strerror or str(exc)).lower())
    return None if only_in_use or not problems else problems[0]


@dataclass(frozen=True)
class ServerConfig:
    """How a service's gRPC server listens and how busy it may get; the same for all three.

    ``workers`` handler threads; beyond ``max_concurrent_rpcs`` calls in the server
    (running or waiting for a thread) gRPC answers RESOURCE_EXHAUSTED by itself.
    """

    host: str
    port: int  # 0 = any free port
    max_message_mb: float = DEFAULT_MAX_MESSAGE_MB
    workers: int = 8
    max_concurrent_rpcs: int | None = None
    security: SecurityConfig = PLAINTEXT
    grace_s: float = 5.0  # what in-flight RPCs get on SIGTERM/SIGINT
    # > 0: each client connection is closed (GOAWAY; calls in flight get as long again to
    # finish) after about that long, so that clients resolve the server's name again and
    # spread over replicas added meanwhile (live scaling behind one DNS name).
    max_connection_age_s: float = 0.0
    # A plaintext port serving grpc.health.v1 only (0 = any free port; None = none).
    health_port: int | None = None


def new_server(config: ServerConfig) -> grpc.Server:
    """A server with message limits and, when a token is configured, its check."""
    age: list[tuple[str, int]] = []
    if config.max_connection_age_s > 0:
        ms = int(config.max_connection_age_s * 1e3)
        age = [("grpc.max_connection_age_ms", ms), ("grpc.max_connection_age_grace_ms", ms)]
    return grpc.server(
        futures.ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="rpc"),
        options=[
            *message_options(config.max_message_mb),
            *SERVER_KEEPALIVE_OPTIONS,
            *SERVER_BIND_OPTIONS,
            *age,
        ],
        interceptors=security.server_interceptors(config.security),
        maximum_concurrent_rpcs=config.max_concurrent_rpcs,
    )


@dataclass
class BuiltServer:
    """A bound, not yet started server, its health, and whether its loader failed."""

    config: ServerConfig
    server: grpc.Server
    port: int
    health: Health
    failed: threading.Event
    starting: str = ""  # what the ``listening on`` log line adds, e.g. "loading alexnet"
    cleanup: Sequence[Callable[[], None]] = ()  # run after the server stopped
    halt: threading.Event | None = None  # set once the grace period is over
    health_server: grpc.Server | None = None  # the plaintext health-only listener
    health_port: int | None = None  # its bound port
    _stopping: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _stop_begun: bool = field(default=False, init=False, repr=False)
    _stopped: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    # Held by the loader while ``once_serving`` runs: the cleanup waits for it.
    _once_serving: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def embedded(self) -> tuple[grpc.Server, int]:
        """The server for use in this process (tests, embedding), and its port.

        Its ``stop(grace)`` does what :meth:`serve` does on SIGTERM, so that a server
        started and stopped in-process leaves no background thread running (the agent's
        cloud watch, link monitor, heartbeats; the cloud's training janitor): says
        NOT_SERVING, stops the gRPC server, sets ``halt``, then runs ``cleanup`` once.
        """
        return _EmbeddedServer(self), self.port

    def _stop(self, grace: float | None) -> threading.Event:
        """Stop the gRPC server; once it stopped, set ``halt`` and run ``cleanup`` once.

        The one stop sequence, of the embedded server's ``stop(grace)`` and of
        :meth:`serve` after SIGTERM. Returns an event set once all of that is done.
        ``grpc.Server.stop`` with a grace returns at once (the event is set later): the
        rest then runs in a thread, so that ``stop(grace)`` does not block where gRPC's
        would not. From the first call on, a model still loading will not be served
        (:meth:`_serve_loaded`): its ``once_serving`` would start what ``cleanup`` stops.
        """
        with self._stopping:
            first = not self._stop_begun
            self._stop_begun = True
        if first:
            self.health.shutdown()
        grpc_stopped = self.server.stop(grace)  # again: a shorter grace still applies
        if not first:
            return self._stopped
        if grpc_stopped.is_set():
            self._after_stop(grpc_stopped)
        else:
            threading.Thread(
                target=self._after_stop,
                args=(grpc_stopped,),
                name="server-cleanup",
                daemon=True,
            ).start()
        return self._stopped

    def _after_stop(self, grpc_stopped: threading.Event) -> None:
        try:
            grpc_stopped.wait()
            if self.health_server is not None:
                self.health_server.stop(0).wait()
            if self.halt is not None:
                self.halt.set()  # in-flight work stops at its next unit boundary
            if self._once_serving.acquire(timeout=ONCE_SERVING_WAIT_S):
                self._once_serving.release()
            else:
                log.warning(
                    "once-serving steps still running after %.0f s: cleaning up anyway",
                    ONCE_SERVING_WAIT_S,
                )
            for step in self.cleanup:
                try:
                    step()
                except Exception:  # the other steps still run; stop() never raises
                    log.exception("cleanup step %r failed", step)
        finally:
            self._stopped.set()

    def serve(self, on_bound: Callable[[str, int], None] | None = None) -> int:
        """Start, announce, serve until SIGTERM/SIGINT (exit 0) or a failed start (1).

        ``on_bound(host, port)`` is called once the server is started (the CLI prints
        the machine-readable ``listening on`` line); ``cleanup`` runs after it stopped,
        every step even if one raises (logged), by the embedded server's stop sequence.
        """
        host = self.config.host
        self.server.start()
        if self.health_server is not None:
            self.health_server.start()
            log.info("health (grpc.health.v1 only, plaintext) on %s:%d", host, self.health_port)
        describe = self.config.security.describe()
        log.info(
            "listening on %s:%d, %s",
            host,
            self.port,
            f"{describe} ({self.starting})" if self.starting else describe,
        )
        if on_bound:
            on_bound(host, self.port)
        try:
            why = self._wait_for_stop()
        except BaseException:
            self._stop(self.config.grace_s).wait()  # the cleanup runs all the same
            raise
        grace_s = self.config.grace_s
        log.info("stopping on %s (grace %.1f s)", why, grace_s)
        begin = time.perf_counter()
        # What an embedded server's stop(grace) does: NOT_SERVING, the grace period for
        # in-flight RPCs, the health-only listener, ``halt``, then every cleanup step.
        self._stop(grace_s).wait()
        log.info("stopped in %.2f s", time.perf_counter() - begin)
        return 1 if self.failed.is_set() else 0

    def _wait_for_stop(self) -> str:
        """Wait for SIGTERM/SIGINT or a failed start; returns which, for the log."""
        stop = threading.Event()
        received: list[str] = []

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            received.append(signal.Signals(signum).name)
            stop.set()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            while not stop.wait(0.2) and not self.failed.is_set():
                pass
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return received[0] if received else "start failure"

    def _serve_loaded(self, what: str, once_serving: Callable[[], None] | None) -> None:
        """In the loader thread, once ``load`` returned: SERVING, then ``once_serving``.

        Neither once a stop has begun (a model that finished loading during the stop):
        the cleanup may have run already, and ``once_serving`` would start what it
        stops (the agent's cloud watch, link monitor, heartbeats) with nobody left to
        stop them. A stop that begins while ``once_serving`` runs waits for it before
        its cleanup (:meth:`_after_stop`).
        """
        with self._stopping:
            if self._stop_begun:
                log.info("loaded %s after the stop began: not serving it", what)
                return
            self._once_serving.acquire()  # free: only this thread takes it
            self.health.set(True)
        try:
            log.info("serving on %s:%d: %s", self.config.host, self.port, what)
            if once_serving:
                once_serving()
        finally:
            self._once_serving.release()


def build_server(
    name: str,
    config: ServerConfig,
    *,
    services: Iterable[str],
    register: Callable[[grpc.Server], object],
    load: Callable[[], str],
    once_serving: Callable[[], None] | None = None,
    starting: str = "",
    cleanup: Sequence[Callable[[], None]] = (),
    halt: threading.Event | None = None,
) -> BuiltServer:
    """Create a server, ``register`` the service's servicers on it, bind, start loading.

    The port is bound before anything loads, so ``--port 0`` can be announced at once.
    Health (``""`` and each of ``services``) says NOT_SERVING while ``load`` runs in a
    background thread, SERVING once it returned (it returns what is served, for the log);
    then ``once_serving`` runs, in that thread too (neither if the server is being stopped
    by then: see :meth:`BuiltServer._serve_loaded`). An exception in either is logged and
    sets ``failed``, which makes :meth:`BuiltServer.serve` stop and exit 1. ``halt``
    (shared with the servicers) is set when the grace period on SIGTERM is over.
    """
    server = new_server(config)
    register(server)
    health = Health(server, services)
    port = bind(server, config.host, config.port, config.security)
    health_server, health_port = None, None
    if config.health_port is not None:
        health_server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="health"),
            options=SERVER_BIND_OPTIONS,
            maximum_concurrent_rpcs=16,  # probes are one short call each
        )
        health_pb2_grpc.add_HealthServicer_to_server(health.servicer, health_server)
        health_port = bind(health_server, config.host, config.health_port)
    failed = threading.Event()
    built = BuiltServer(
        config, server, port, health, failed, starting, cleanup, halt, health_server, health_port
    )

    def target() -> None:
        try:
            built._serve_loaded(load(), once_serving)
        except Exception:
            log.exception("%s failed to start", name)
            failed.set()

    threading.Thread(target=target, name=f"{name}-loader", daemon=True).start()
    return built


class _EmbeddedServer(grpc.Server):
    """A :class:`grpc.Server` whose ``stop`` also stops what the service started beside
    it (:meth:`BuiltServer.embedded`); everything else is the gRPC server's own."""

    def __init__(self, built: BuiltServer) -> None:
        self._built = built
        self._server = built.server

    def add_generic_rpc_handlers(self, generic_rpc_handlers: object) -> None:
        self._server.add_generic_rpc_handlers(generic_rpc_handlers)

    def add_registered_method_handlers(self, service_name: str, method_handlers: object) -> None:
        self._server.add_registered_method_handlers(service_name, method_handlers)

    def add_insecure_port(self, address: str) -> int:
        return int(self._server.add_insecure_port(address))

    def add_secure_port(self, address: str, server_credentials: object) -> int:
        return int(self._server.add_secure_port(address, server_credentials))

    def start(self) -> None:
        self._server.start()

    def stop(self, grace: float | None) -> threading.Event:
        return self._built._stop(grace)

    def wait_for_termination(self, timeout: float | None = None) -> bool:
        return bool(self._server.wait_for_termination(timeout))


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
