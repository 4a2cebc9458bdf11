"""Bounded work per request: what is checked before work starts, and how it stops.

Every RPC that computes checks its request against :class:`RequestLimits` *before* it
decodes, allocates or computes anything proportional to the request (images per
request, encoded bytes, the batch of a tensor read from its frame header), and refuses
with :class:`~collabdnn.errors.LimitError` (INVALID_ARGUMENT: the same request would be
refused again). What is admitted is thereby bounded in memory and time.

Work that has started checks a :data:`StopCheck` at every unit boundary (and between
the images of a multi-image request): a callable that raises a
:class:`~collabdnn.errors.WorkStopped` once the caller's deadline has passed, the caller
cancelled or left, or the server's grace period on SIGTERM is over. The request then
ends within one unit's time and frees its admission slot. :func:`stop_check` makes one
from a gRPC servicer context.

Torch-free: the CLI reads the defaults from here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from collabdnn.errors import (
    CancelledError,
    DeadlineError,
    LimitError,
    ShuttingDownError,
)

if TYPE_CHECKING:
    import grpc

__all__ = [
    "DEFAULT_MAX_BATCH",
    "DEFAULT_MAX_IMAGES_PER_REQUEST",
    "DEFAULT_MAX_REQUEST_BYTES",
    "CallCheck",
    "RequestLimits",
    "StopCheck",
    "never_stop",
    "stop_check",
]

# Images one Classify (or Profile) request may hold: each is classified on its own, so
# the work of one request is this many classifications at most.
DEFAULT_MAX_IMAGES_PER_REQUEST = 16
# Encoded image bytes in one request, all images together.
DEFAULT_MAX_REQUEST_BYTES = 32 * 1024 * 1024
# The batch of one Execute (a tensor's first dimension, or images at unit 0) and of a
# Profile call. The agent sends batch 1; a few more leave room for batching clients.
DEFAULT_MAX_BATCH = 8

StopCheck = Callable[[], None]
"""Raises :class:`~collabdnn.errors.WorkStopped` when the work should end; else returns."""


def never_stop() -> None:
    """The :data:`StopCheck` of work that nobody waits for (tests, the CLI)."""


@dataclass(frozen=True)
class RequestLimits:
    """How much work one request may ask for (see the module doc and docs/failure.md)."""

    max_images: int = DEFAULT_MAX_IMAGES_PER_REQUEST
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    max_batch: int = DEFAULT_MAX_BATCH

    def __post_init__(self) -> None:
        for name in ("max_images", "max_request_bytes", "max_batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")

    def check_images(self, images: Sequence[bytes], what: str, max_images: int = 0) -> None:
        """At most ``max_images`` (default :attr:`max_images`) images, at most
        :attr:`max_request_bytes` bytes in all; LimitError otherwise."""
        limit = max_images or self.max_images
        if len(images) > limit:
            raise LimitError(
                f"{what} holds {len(images)} images; at most {limit} are accepted per request"
            )
        total = sum(len(image) for image in images)
        if total > self.max_request_bytes:
            raise LimitError(
                f"{what} holds {total} bytes of images; at most {self.max_request_bytes} "
                "are accepted per request"
            )

    def check_batch(self, batch: int, what: str) -> None:
        if batch > self.max_batch:
            raise LimitError(f"{what} has batch {batch}; at most {self.max_batch} is accepted")


def stop_check(context: grpc.ServicerContext, halt: threading.Event | None = None) -> CallCheck:
    """A :data:`StopCheck` for the RPC of ``context``: stop when its deadline has passed,
    when it is no longer active (the client cancelled, left, or the server cancelled it),
    or when ``halt`` is set (the server's grace period is over).

    The check runs before every unit of every request, so it asks gRPC nothing: the
    deadline is read once (as a point on the monotonic clock; the check's ``deadline``)
    and gRPC's termination callback raises a flag when the call is cancelled (by the
    client, by its deadline, or by the server). Asking the context each time cost about
    10 us per unit on a thread that has just woken with cold caches, 0.1 ms of every
    cloud hop.
    """
    remaining = context.time_remaining()
    deadline = None if remaining is None else time.monotonic() + remaining
    ended = threading.Event()
    if not context.add_callback(ended.set):  # it has already terminated
        ended.set()
    return CallCheck(deadline, ended, halt)


class CallCheck:
    """The :data:`StopCheck` of one RPC (:func:`stop_check`). ``deadline`` is the
    caller's, on the ``time.monotonic()`` clock (None: it set none), for work that must
    end by then on its own (the agent's cloud calls)."""

    __slots__ = ("_ended", "_halt", "deadline")

    def __init__(
        self, deadline: float | None, ended: threading.Event, halt: threading.Event | None
    ) -> None:
        self.deadline, self._ended, self._halt = deadline, ended, halt

    def __call__(self) -> None:
        if self._halt is not None and self._halt.is_set():
            raise ShuttingDownError("the server is stopping; its grace period is over")
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise DeadlineError("the caller's deadline passed; work stopped")
        if self._ended.is_set():
            raise CancelledError("the caller cancelled or went away; work stopped")
