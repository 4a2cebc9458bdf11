"""A time budget for each cloud call, so that offloading is never much worse than local.

Each Execute call gets the deadline ``max(floor, factor x expected)``, capped by the
flat ``--timeout``, where ``expected`` is what that same segment (units ``[start,
end)``) has recently cost end to end: upload, the cloud's compute and queueing,
download. When the budget runs out, the call is cancelled by its deadline, the agent
finishes the segment and the rest locally from the activation it holds, and the
breaker counts the miss like any other cloud failure.

Where ``expected`` comes from, and why not from the scheduler's plan. The scheduler's
planner does predict every unit's cloud time and every transfer, but the plan the agent
receives (``SetPlan``) carries the placement only; carrying the predictions would change
the plan message and its conversions, which other work is retyping. The agent's own
measurements are also the better source: they are what this segment really took on
this link against this cloud (the scheduler predicts from profiles and a link estimate
that may be seconds old), and they exist without a scheduler. So the agent keeps, per
segment, an EWMA of the observed call time and of the bytes it sent; a call sending
more bytes than usual (a bigger image) gets a proportionally longer budget. Before a
segment has been observed there is nothing to predict from, and the flat ``--timeout``
applies; the idle health watch (docs/failure.md) covers a cloud that hangs before then.

A missed budget is fed back as an observation of the budget itself (a lower bound of
the real time): a cloud or link that became slower but still answers sees its budget
grow (about 1.6x per miss with the defaults) until calls fit again, rather than every
call being cut off for good; a cloud that hangs stays behind the open breaker, whose
probe must succeed first.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

DEFAULT_FACTOR = 3.0
DEFAULT_FLOOR_MS = 250.0


@dataclass
class _Segment:
    ms: float  # EWMA of the call's wall time, ms
    bytes_up: float  # EWMA of the bytes sent


class CallBudget:
    """Per-segment deadlines from recent call times (thread-safe)."""

    def __init__(
        self,
        factor: float = DEFAULT_FACTOR,
        floor_ms: float = DEFAULT_FLOOR_MS,
        cap_s: float = 30.0,
        alpha: float = 0.3,
    ) -> None:
        if factor <= 0 or floor_ms < 0 or cap_s <= 0:
            raise ValueError("factor and cap_s must be positive, floor_ms not negative")
        self.factor, self.floor_ms, self.cap_s, self.alpha = factor, floor_ms, cap_s, alpha
        self._segments: dict[tuple[int, int], _Segment] = {}
        self._lock = threading.Lock()

    def expected_ms(self, start: int, end: int, bytes_up: int) -> float | None:
        """What this call should take, from the segment's history; None before any."""
        with self._lock:
            seen = self._segments.get((start, end))
            if seen is None:
                return None
            return seen.ms * max(1.0, bytes_up / max(seen.bytes_up, 1.0))

    def deadline_s(self, start: int, end: int, bytes_up: int) -> float:
        """The call's deadline in seconds: ``max(floor, factor x expected)``, at most the cap."""
        expected = self.expected_ms(start, end, bytes_up)
        if expected is None:
            return self.cap_s
        return min(self.cap_s, max(self.floor_ms, self.factor * expected) / 1e3)

    def observe(self, start: int, end: int, bytes_up: int, wall_ms: float) -> None:
        """A call of this segment took ``wall_ms`` (or, after a miss, at least that)."""
        with self._lock:
            seen = self._segments.get((start, end))
            if seen is None:
                self._segments[(start, end)] = _Segment(wall_ms, float(bytes_up))
                return
            a = self.alpha
            seen.ms = (1 - a) * seen.ms + a * wall_ms
            seen.bytes_up = (1 - a) * seen.bytes_up + a * bytes_up

    def missed(self, start: int, end: int, bytes_up: int, budget_s: float) -> None:
        """The call ran out of its budget: count the budget as a (lower-bound) observation."""
        if self.expected_ms(start, end, bytes_up) is not None:
            self.observe(start, end, bytes_up, budget_s * 1e3)
