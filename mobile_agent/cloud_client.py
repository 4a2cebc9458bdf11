"""The agent's view of one cloud server: Info and Execute over a shared channel.

Every cloud call of the agent goes through :meth:`CloudClient.execute`, with a deadline.
Link estimation (bytes and times of real calls), fallback and circuit breaking wrap
this one method (see :class:`mobile_agent.agent.MobileAgent`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc

from collabdnn.codec import CodecConfig, decode, encode
from collabdnn.model.image_boundary import CropBatch
from collabdnn.services import ExecuteReply, ExecuteRequest, ServiceInfo
from collabdnn.transport.channels import IDEMPOTENT
from collabdnn.wire.stubs import CLOUD_SERVICE, CloudStub, PendingExecute

# Idempotent and cheap: retried on UNAVAILABLE by the channel's service config. The list
# is the code base's one table (transport.channels.IDEMPOTENT), restricted to the cloud.
CLOUD_IDEMPOTENT = {CLOUD_SERVICE: IDEMPOTENT[CLOUD_SERVICE]}

# Channel arguments of the agent's channel to the cloud.
CLOUD_CHANNEL_OPTIONS: list[tuple[str, int]] = [
    # Ping the cloud every 10 s, also while no call is in flight, and drop the connection
    # when a ping is not answered within 5 s. A cloud that dies without closing its TCP
    # connection (host crash, network partition, a NAT forgetting the flow) is then
    # noticed during idle periods, and the next request falls back at once instead of
    # waiting out its deadline on a dead connection. The cloud's server accepts pings
    # this often (collabdnn.transport.server.SERVER_KEEPALIVE_OPTIONS).
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    # Reconnect quickly after the cloud comes back: gRPC's default back-off grows to
    # 120 s between connection attempts, which would keep a recovered cloud unused long
    # after the circuit breaker wants to probe it (every --breaker-reset-s).
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 1_000),
    # A dns:/// target is resolved again when a connection closes (the cloud closes each
    # after --max-connection-age-s, so replicas added meanwhile get calls); gRPC's
    # default spacing of 30 s between resolutions would delay that.
    ("grpc.dns_min_time_between_resolutions_ms", 5_000),
]


class BudgetSpent(Exception):
    """An Execute call outlived its budget; ``pending`` still runs (to the flat timeout),
    so that a late reply can still be measured (the link estimate needs slow calls)."""

    def __init__(
        self, pending: PendingExecute, began: float, bytes_up: int, budget_s: float
    ) -> None:
        super().__init__(f"call budget {budget_s * 1e3:.0f} ms spent")
        self.pending, self.began, self.bytes_up = pending, began, bytes_up
        self.budget_s = budget_s


@dataclass(frozen=True)
class CloudCall:
    """What one Execute call cost, as the agent saw it."""

    output: Any  # torch.Tensor: the output of unit end-1
    bytes_up: int
    bytes_down: int
    encode_ms: float  # mobile encoding the input frame
    rpc_ms: float  # the call as seen by the agent
    decode_ms: float  # mobile decoding the output frame
    reply: ExecuteReply

    @property
    def network_ms(self) -> float:
        """Round trip minus the server's own handling: the link's share, both directions."""
        return max(0.0, self.rpc_ms - self.reply.server_ms)


class CloudClient:
    """One per channel, shared by concurrent calls: it holds no per-call state (making a
    client and its stub per call cost about 0.07 ms of every hop)."""

    def __init__(
        self, channel: grpc.Channel, address: str, timeout_s: float, max_frame_bytes: int
    ) -> None:
        self.channel = channel
        self.address = address
        self.timeout_s = timeout_s
        self.max_frame_bytes = max_frame_bytes
        self._stub = CloudStub(channel)

    def info(self, timeout_s: float | None = None, wait_for_ready: bool = False) -> ServiceInfo:
        """The cloud's model and weights hash. ``wait_for_ready`` waits (up to the
        deadline) for a connection instead of failing at once while there is none."""
        return self._stub.info(timeout=timeout_s or self.timeout_s, wait_for_ready=wait_for_ready)

    def execute(
        self,
        model: str,
        weights_hash: str,
        start: int,
        end: int,
        x: Any,
        codec: CodecConfig,
        request_id: str = "",
        deadline_for: Callable[[int], float] | None = None,
        reply_codec: CodecConfig | None = None,
        timeout_s: float | None = None,
    ) -> CloudCall:
        """Run units ``[start, end)`` in the cloud; ``x`` is image bytes (or a
        :class:`CropBatch`) when start == 0. ``x`` is sent with ``codec``, the reply
        comes back with ``reply_codec`` (default: ``codec``).

        ``deadline_for(bytes_up)`` gives the call's deadline in seconds (the agent's
        per-call budget, :mod:`mobile_agent.budget`); default: the client's timeout.
        A call that misses it raises :class:`BudgetSpent`, or a DEADLINE_EXCEEDED
        :class:`grpc.RpcError` when the budget was the flat timeout. ``timeout_s``: this
        call's flat timeout instead of the client's (the agent's caller's time left).
        """
        flat_s = self.timeout_s if timeout_s is None else timeout_s
        tick = time.perf_counter()
        frame: bytes | None = None
        images: tuple[bytes, ...] | None = None
        crops: tuple[bytes, ...] | None = None
        if isinstance(x, CropBatch):
            crops = x.images
            bytes_up = sum(len(i) for i in crops)
        elif start == 0:
            images = (bytes(x),) if isinstance(x, bytes | bytearray) else tuple(x)
            bytes_up = sum(len(i) for i in images)
        else:
            frame = encode(x, codec)
            bytes_up = len(frame)
        encode_ms = (time.perf_counter() - tick) * 1e3
        request = ExecuteRequest(
            model,
            weights_hash,
            start,
            end,
            reply_codec or codec,
            frame,
            images,
            request_id=request_id,
            crops=crops,
        )
        timeout = flat_s if deadline_for is None else deadline_for(bytes_up)
        tick = time.perf_counter()
        if timeout >= flat_s:
            reply = self._stub.execute(request, timeout=flat_s)
        else:  # the budget: stop waiting then, but let the call run on to the flat timeout
            pending = self._stub.execute_async(request, timeout=flat_s)
            try:
                reply = pending.result(timeout=timeout)
            except grpc.FutureTimeoutError:
                raise BudgetSpent(pending, tick, bytes_up, timeout) from None
        rpc_ms = (time.perf_counter() - tick) * 1e3
        tick = time.perf_counter()
        output = decode(reply.output, self.max_frame_bytes)
        decode_ms = (time.perf_counter() - tick) * 1e3
        return CloudCall(output, bytes_up, len(reply.output), encode_ms, rpc_ms, decode_ms, reply)
