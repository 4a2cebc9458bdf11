"""An in-process link shaper for runs that cannot use ``tc`` (no root, macOS, CI).

Why: the real shaper (:mod:`collabdnn.netem.shaping`) needs root and Linux.  Elsewhere the
mobile agent can wrap each send in :meth:`TokenBucketShaper.wait`, which sleeps as long
as the bytes would take on the link (queued behind earlier sends in the same
direction, as on a real bottleneck) plus half the RTT.  It does not reproduce TCP's
behaviour (slow start, windows), so results produced through it must say so: they
carry :attr:`TokenBucketShaper.label`, ``"emulated"``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Literal

from collabdnn.planning.link import Link

__all__ = ["Direction", "TokenBucketShaper"]

Direction = Literal["up", "down"]


class TokenBucketShaper:
    """One token bucket per direction, refilled at that direction's rate.

    ``burst_bytes`` is how many bytes may go through with no airtime after an idle
    period; the default 0 makes each direction a pure serializer (every byte costs
    ``8 / rate`` seconds), which is what a slow radio link looks like from the phone.
    Thread-safe: concurrent senders queue behind each other.
    """

    label = "emulated"

    def __init__(
        self,
        link: Link,
        burst_bytes: int = 0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if burst_bytes < 0:
            raise ValueError("burst_bytes must be >= 0")
        self.burst_bytes = burst_bytes
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        now = clock()
        # Tokens in bytes (negative: a backlog still being "transmitted") and when they
        # were last brought up to date, per direction.
        self._tokens: dict[str, float] = {"up": float(burst_bytes), "down": float(burst_bytes)}
        self._updated: dict[str, float] = {"up": now, "down": now}
        self._link = link

    @property
    def link(self) -> Link:
        return self._link

    def set_link(self, link: Link) -> None:
        """Change the emulated link (e.g. to replay a trace); backlogs are kept."""
        with self._lock:
            now = self._clock()
            for direction in ("up", "down"):
                self._refill(direction, now)
            self._link = link

    def _rate_bytes_s(self, direction: str) -> float:
        mbps = self._link.up_mbps if direction == "up" else self._link.down_mbps
        return mbps * 1e6 / 8

    def _refill(self, direction: str, now: float) -> None:
        elapsed = max(now - self._updated[direction], 0.0)
        self._tokens[direction] = min(
            float(self.burst_bytes),
            self._tokens[direction] + elapsed * self._rate_bytes_s(direction),
        )
        self._updated[direction] = now

    def transmit_delay_s(self, nbytes: int, direction: Direction, *, reserve: bool = True) -> float:
        """Seconds until ``nbytes`` sent now in ``direction`` have arrived.

        That is the airtime, including any backlog ahead of them, plus half the RTT.
        With ``reserve`` (the default) the bytes are charged to the bucket, so the next
        caller queues behind them; ``reserve=False`` only asks.
        """
        if direction not in ("up", "down"):
            raise ValueError(f"direction must be 'up' or 'down', got {direction!r}")
        if nbytes < 0:
            raise ValueError("nbytes must be >= 0")
        with self._lock:
            now = self._clock()
            self._refill(direction, now)
            after = self._tokens[direction] - nbytes
            if reserve:
                self._tokens[direction] = after
            airtime = max(-after, 0.0) / self._rate_bytes_s(direction)
            return airtime + self._link.rtt_ms / 2e3

    def wait(self, nbytes: int, direction: Direction) -> float:
        """Sleep as long as sending ``nbytes`` in ``direction`` takes; returns that time."""
        delay = self.transmit_delay_s(nbytes, direction)
        if delay > 0:
            self._sleep(delay)
        return delay
