"""Exponential back-off shared by the agent's background loops.

The link monitor (probes, link reports) and the heartbeat all talk to services that may
be away; each failure doubles the wait, so that a cloud or scheduler that is down costs
a few calls a minute rather than one per tick, and one success resets it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Backoff"]


@dataclass
class Backoff:
    """Exponential back-off after failures: 0.5 s, 1 s, 2 s, ... up to ``cap``."""

    cap: float
    failures: int = 0
    until: float = 0.0

    def ready(self, now: float) -> bool:
        return now >= self.until

    def failed(self, now: float) -> float:
        """Count one failure; returns the delay before the next try (also ``until``)."""
        self.failures += 1
        delay = min(self.cap, 0.5 * 2 ** (self.failures - 1))
        self.until = now + delay
        return delay

    def ok(self) -> None:
        self.failures, self.until = 0, 0.0
