"""The link probe: a gRPC echo that returns as many bytes as the request asks for.

Why a separate, proto-less service: it measures the link with the same transport as
the real calls (HTTP/2 over TCP through gRPC), so the estimate includes what gRPC and
TCP cost; it needs no generated stubs, so the cloud server can host it next to its own
service (``add_probe_service(server)``) and tests can run it alone.

Wire format (raw bytes, method ``/probe.Probe/Echo``):

* request: 8-byte little-endian unsigned reply size, then any padding (the upload);
* reply: 8-byte little-endian float64 server time in ms, then padding up to the
  requested size (at least 8 bytes).

The reply is capped at :data:`MAX_PROBE_BYTES` (8 MiB, the largest probe the link
estimator sends; a larger ask is INVALID_ARGUMENT), and at most
:data:`MAX_CONCURRENT_ECHOES` echoes run at once per server (more are refused
RESOURCE_EXHAUSTED at once): an unauthenticated caller cannot make the service allocate
and send much more than it was sent.

``python -m collabdnn.testbed.probe_run serve|measure`` runs the two ends as processes,
for tests and benchmarks inside a shaped network namespace.
"""

from __future__ import annotations

import logging
import struct
import threading
import time
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass

import grpc

__all__ = [
    "HARNESS_PROBE_BYTES",
    "MAX_CONCURRENT_ECHOES",
    "MAX_PROBE_BYTES",
    "ProbeClient",
    "ProbeResult",
    "add_probe_service",
    "serve",
]

log = logging.getLogger(__name__)

SERVICE = "probe.Probe"
METHOD = f"/{SERVICE}/Echo"
MAX_PROBE_BYTES = 8 * 1024 * 1024  # the largest reply a service sends: LinkEstimator's
MAX_CONCURRENT_ECHOES = 2  # the agent probes one at a time
# The harness's own probe servers (collabdnn.testbed.probe_run) echo activation-sized
# replies of any model; its clients accept them.
HARNESS_PROBE_BYTES = 64 * 1024 * 1024
_HEADER = struct.Struct("<Q")
_REPLY_HEADER = struct.Struct("<d")
_OPTIONS = [
    ("grpc.max_send_message_length", HARNESS_PROBE_BYTES + 64),
    ("grpc.max_receive_message_length", HARNESS_PROBE_BYTES + 64),
]


def _identity(data: bytes) -> bytes:
    return data


def _make_echo(extra_delay_ms: float, max_reply_bytes: int = MAX_PROBE_BYTES):
    running = threading.BoundedSemaphore(MAX_CONCURRENT_ECHOES)

    def echo(request: bytes, context: grpc.ServicerContext) -> bytes:
        begin = time.perf_counter()
        if len(request) < _HEADER.size:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "probe request shorter than 8 bytes")
        (size,) = _HEADER.unpack_from(request)
        if size > max_reply_bytes:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"probe reply of {size} bytes asked; the limit is {max_reply_bytes}",
            )
        if not running.acquire(blocking=False):
            context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"server busy: {MAX_CONCURRENT_ECHOES} probe echoes already running",
            )
        try:
            reply = bytearray(max(int(size), _REPLY_HEADER.size))
            server_ms = (time.perf_counter() - begin) * 1e3
            if extra_delay_ms > 0:
                # Emulated propagation delay (for kernels without netem): deliberately
                # NOT reported as server time, so that it reads as network time.
                time.sleep(extra_delay_ms / 1e3)
            _REPLY_HEADER.pack_into(reply, 0, server_ms)
            return bytes(reply)
        finally:
            running.release()

    return echo


def add_probe_service(
    server: grpc.Server, extra_delay_ms: float = 0.0, max_reply_bytes: int = MAX_PROBE_BYTES
) -> None:
    """Register ``/probe.Probe/Echo`` on ``server`` (raw bytes, no protos).

    ``extra_delay_ms`` adds an *emulated* delay that counts as network time; leave it 0
    on a real link. Replies larger than ``max_reply_bytes`` are refused.
    """
    handler = grpc.unary_unary_rpc_method_handler(
        _make_echo(extra_delay_ms, max_reply_bytes),
        request_deserializer=_identity,
        response_serializer=_identity,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE, {"Echo": handler}),)
    )


def serve(
    address: str,
    extra_delay_ms: float = 0.0,
    workers: int = 4,
    max_reply_bytes: int = MAX_PROBE_BYTES,
) -> tuple[grpc.Server, int]:
    """Start a probe-only server on ``address`` (``host:port``); returns it and its port."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers), options=_OPTIONS)
    add_probe_service(server, extra_delay_ms, max_reply_bytes)
    port = server.add_insecure_port(address)
    if port == 0:
        raise RuntimeError(f"cannot bind the probe server to {address}")
    server.start()
    return server, port


class ProbeCancelled(Exception):
    """A probe was cancelled because real traffic started; it measured nothing."""


@dataclass(frozen=True)
class ProbeResult:
    """One probe call as the estimator wants it."""

    bytes_up: int
    bytes_down: int
    wall_ms: float
    server_ms: float


class ProbeClient:
    """Sends probes to a probe service; one channel, reused across probes."""

    def __init__(self, target: str, timeout_s: float = 60.0, ready_timeout_s: float = 15.0):
        self.target = target
        self.timeout_s = timeout_s
        self._channel: grpc.Channel | None = grpc.insecure_channel(target, options=_OPTIONS)
        grpc.channel_ready_future(self._channel).result(timeout=ready_timeout_s)
        self._echo = self._channel.unary_unary(
            METHOD, request_serializer=_identity, response_deserializer=_identity
        )

    @classmethod
    def over(cls, channel: grpc.Channel, timeout_s: float = 60.0) -> ProbeClient:
        """A client on an existing channel (the agent's: TLS, token, same connection as
        its Execute calls); closing the client leaves the channel open."""
        client = cls.__new__(cls)
        client.target, client.timeout_s, client._channel = "", timeout_s, None
        client._echo = channel.unary_unary(
            METHOD, request_serializer=_identity, response_deserializer=_identity
        )
        return client

    def probe(
        self,
        bytes_up: int,
        bytes_down: int,
        timeout_s: float | None = None,
        cancel_if: Callable[[], bool] | None = None,
    ) -> ProbeResult:
        """Upload ``bytes_up`` bytes, get ``bytes_down`` back, and time it.

        ``cancel_if()`` is polled while the probe is in flight; when it turns true the
        probe is cancelled and :class:`ProbeCancelled` raised: real traffic has started.
        """
        request = bytearray(max(bytes_up, _HEADER.size))
        _HEADER.pack_into(request, 0, bytes_down)
        payload = bytes(request)
        timeout = self.timeout_s if timeout_s is None else timeout_s
        begin = time.perf_counter()
        done_at: list[float] = []
        if cancel_if is None:
            reply = self._echo(payload, timeout=timeout)
        else:
            future = self._echo.future(payload, timeout=timeout)
            # Timed when the reply arrives, not when the polling loop next looks: 5 ms
            # of polling would read as round-trip time.
            future.add_done_callback(lambda _: done_at.append(time.perf_counter()))
            while not future.done():
                if cancel_if() and future.cancel():
                    raise ProbeCancelled("real traffic started")
                time.sleep(0.005)
            reply = future.result()  # grpc.RpcError on DEADLINE_EXCEEDED, ...
        end = done_at[0] if done_at else time.perf_counter()
        wall_ms = (end - begin) * 1e3
        (server_ms,) = _REPLY_HEADER.unpack_from(reply)
        return ProbeResult(len(payload), len(reply), wall_ms, server_ms)

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()

    def __enter__(self) -> ProbeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
