"""Bounded admission for expensive RPCs: refuse at once rather than queue without end.

A service that queues every request it is sent turns overload into ever-growing
latency and memory, and its clients' deadlines expire while they wait. Instead, each
service admits at most ``limit`` expensive requests (running plus waiting to run) and
answers the rest RESOURCE_EXHAUSTED immediately, so a caller learns within
milliseconds that it should back off, go elsewhere or, for the mobile agent, run the
units itself.

Of the admitted requests at most ``concurrency`` compute at once; the others wait
inside their handler thread, and stop waiting as soon as their caller has gone (its
deadline passed or it cancelled: ``admit(..., check)``), so that an abandoned request
frees its slot without ever computing. The server's thread pool is sized so that admitted
requests never wait in gRPC's own (unbounded) executor queue: :func:`pool_threads`
leaves spare threads for the cheap calls (health, Info) and for the refusals, which
therefore stay fast however busy the service is. gRPC's ``maximum_concurrent_rpcs``
(:func:`max_concurrent_rpcs`) is the hard backstop above all that: beyond it gRPC
itself refuses calls before they reach a thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import grpc

from collabdnn.bounds import StopCheck

log = logging.getLogger(__name__)

# Threads beyond the admitted requests: health checks, Info, GetPlan and refusals, and
# the calls with small admissions of their own (one Profile, a few probe echoes).
SPARE_THREADS = 8
# Calls gRPC itself may hold beyond the admitted ones before refusing on its own.
BACKSTOP_SLACK = 32


def pool_threads(limit: int, workers: int) -> int:
    """Handler threads for a server admitting ``limit`` expensive calls."""
    return max(workers, limit) + SPARE_THREADS


def max_concurrent_rpcs(limit: int, workers: int) -> int:
    """gRPC's own bound on RPCs in the server (running or queued for a thread)."""
    return pool_threads(limit, workers) + BACKSTOP_SLACK


class Admission:
    """At most ``limit`` requests admitted; at most ``concurrency`` of them running."""

    def __init__(self, limit: int, concurrency: int | None = None, name: str = "requests") -> None:
        if limit < 1:
            raise ValueError(f"the admission limit must be at least 1, got {limit}")
        self.limit = limit
        self.concurrency = min(limit, concurrency or limit)
        self.name = name
        self._lock = threading.Lock()
        self._admitted = 0
        self._refused = 0
        self._running = threading.BoundedSemaphore(self.concurrency)

    @property
    def admitted(self) -> int:
        """Requests admitted now (running or waiting to run)."""
        return self._admitted

    @property
    def refused(self) -> int:
        """Requests refused since start."""
        return self._refused

    def try_enter(self) -> bool:
        """Admit one request unless ``limit`` are already admitted."""
        with self._lock:
            if self._admitted >= self.limit:
                self._refused += 1
                return False
            self._admitted += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self._admitted -= 1

    @contextmanager
    def admit(
        self, context: grpc.ServicerContext, what: str, check: StopCheck | None = None
    ) -> Iterator[None]:
        """Run the body as one admitted request, or abort RESOURCE_EXHAUSTED at once.

        While it waits for one of the ``concurrency`` running places, ``check()`` is
        called every few milliseconds: its exception (the caller left) ends the wait.
        """
        if not self.try_enter():
            log.warning(
                "%s refused: %d %s already admitted (the limit)", what, self.limit, self.name
            )
            context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"server busy: {self.limit} {self.name} already admitted; retry later",
            )
        try:
            self._wait_to_run(check)  # waiting here is the bounded queue
            try:
                yield
            finally:
                self._running.release()
        finally:
            self.leave()

    def _wait_to_run(self, check: StopCheck | None) -> None:
        if check is None:
            self._running.acquire()
            return
        while not self._running.acquire(timeout=0.05):
            check()
