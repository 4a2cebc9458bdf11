"""gRPC plumbing shared by every service and client: channels, limits, retries, health.

Torch-free. Channels are made in one place (:func:`open_channel`) so that TLS and
other channel-wide policy can be added once; long-lived callers keep one channel per
address in a :class:`ChannelPool`, short-lived ones use a channel as a context manager.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from collabdnn.transport import security
from collabdnn.transport.security import PLAINTEXT, SecurityConfig

DEFAULT_MAX_MESSAGE_MB = 64
HEALTH_SERVICE = "grpc.health.v1.Health"

# Every idempotent, cheap call of the code base, by service: channels retry these on
# UNAVAILABLE unless told otherwise. Execute, Classify and SetPlan are not here: the
# first two are expensive (an activation or an image re-sent, a model re-run) and their
# callers handle failure themselves; SetPlan changes state.
IDEMPOTENT: dict[str, list[str]] = {
    "collabdnn.proto.CloudServer": ["Info", "Profile"],
    "collabdnn.proto.MobileAgent": ["Info", "GetPlan"],
    HEALTH_SERVICE: ["Check"],
}

# Retried on these codes only: the call never reached a handler, or the handler said so.
_RETRYABLE = ["UNAVAILABLE"]


def message_options(max_message_mb: float) -> list[tuple[str, int]]:
    """Send and receive limits: activations of big models exceed gRPC's 4 MB default."""
    limit = int(max_message_mb * 1024 * 1024)
    return [("grpc.max_send_message_length", limit), ("grpc.max_receive_message_length", limit)]


def retry_service_config(idempotent: Mapping[str, Iterable[str]]) -> str:
    """A service config retrying ``{service: [method, ...]}`` on UNAVAILABLE.

    Only idempotent, cheap calls belong here (Info, Profile, health): retrying Execute
    would re-send a large activation, and its failure is handled by the caller instead.
    """
    names = [
        {"service": service, "method": method}
        for service, methods in idempotent.items()
        for method in methods
    ]
    config = (
        {
            "methodConfig": [
                {
                    "name": names,
                    "retryPolicy": {
                        "maxAttempts": 4,
                        "initialBackoff": "0.1s",
                        "maxBackoff": "1s",
                        "backoffMultiplier": 2,
                        "retryableStatusCodes": _RETRYABLE,
                    },
                }
            ]
        }
        if names
        else {}
    )
    return json.dumps(config)


def open_channel(
    address: str,
    *,
    max_message_mb: float = DEFAULT_MAX_MESSAGE_MB,
    idempotent: Mapping[str, Iterable[str]] | None = None,
    security_config: SecurityConfig = PLAINTEXT,
    options: Sequence[tuple[str, Any]] = (),
) -> grpc.Channel:
    """A channel to ``address`` with message limits and retries for ``idempotent`` calls.

    ``idempotent`` defaults to :data:`IDEMPOTENT` (pass ``{}`` for no retries).
    ``security_config`` says TLS or plaintext and which token to send. A ``dns:///``
    address resolves every replica of a service (``ipv4:a:p,b:q`` lists them), and calls
    go round-robin over them. ``options`` are further channel arguments (keepalive,
    reconnect back-off).
    """
    if idempotent is None:
        idempotent = IDEMPOTENT
    arguments: list[tuple[str, Any]] = [*message_options(max_message_mb), *options]
    if idempotent:
        arguments += [
            ("grpc.enable_retries", 1),
            ("grpc.service_config", retry_service_config(idempotent)),
        ]
    if address.startswith(("dns:", "ipv4:", "ipv6:")):  # may name several servers
        arguments.append(("grpc.lb_policy_name", "round_robin"))
    return security.open_channel(address, security_config, arguments)


def check_health(
    address: str,
    service: str = "",
    timeout: float = 5.0,
    security_config: SecurityConfig = PLAINTEXT,
) -> str:
    """The health status name of ``service`` at ``address`` (``SERVING``, ...).

    Connection failures come back as ``UNREACHABLE`` rather than an exception, so callers
    that poll (compose healthchecks, :mod:`collabdnn.testbed.procs`) stay simple.
    """
    return health_status(address, service, timeout, security_config, explain=False)[0]


def health_status(
    address: str,
    service: str = "",
    timeout: float = 5.0,
    security_config: SecurityConfig = PLAINTEXT,
    *,
    explain: bool = True,
) -> tuple[str, str]:
    """:func:`check_health`'s status and, when the call failed, why (with a TLS hint
    unless ``explain`` is false: working it out may take one more connection)."""
    with open_channel(address, security_config=security_config) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError as exc:
            code = exc.code()
            status = "UNKNOWN_SERVICE" if code == grpc.StatusCode.NOT_FOUND else "UNREACHABLE"
            if not explain:
                return status, f"{code.name}: {exc.details()}"
            why = security.describe_failure(address, security_config, code.name, exc.details())
            return status, why
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status), ""


class ChannelPool:
    """One open channel per address, shared by every request (thread-safe)."""

    def __init__(
        self,
        *,
        max_message_mb: float = DEFAULT_MAX_MESSAGE_MB,
        idempotent: Mapping[str, Iterable[str]] | None = None,
        security_config: SecurityConfig = PLAINTEXT,
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        self._kwargs = {
            "max_message_mb": max_message_mb,
            "idempotent": idempotent,
            "security_config": security_config,
            "options": tuple(options),
        }
        self._channels: dict[str, grpc.Channel] = {}
        self._lock = threading.Lock()
        self.security_config = security_config  # what every channel of the pool uses

    def get(self, address: str) -> grpc.Channel:
        with self._lock:
            channel = self._channels.get(address)
            if channel is None:
                channel = open_channel(address, **self._kwargs)  # type: ignore[arg-type]
                self._channels[address] = channel
            return channel

    def close(self) -> None:
        with self._lock:
            channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            channel.close()

    def __enter__(self) -> ChannelPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
