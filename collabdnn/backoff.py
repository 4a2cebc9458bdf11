"""Exponential back-off shared by every service's retry loops.

The agent's link monitor (probes, link reports) and heartbeat, the single-agent
scheduler's plan pusher and the fleet scheduler's per-agent pushes all talk to peers
that may be away; each failure doubles the wait, so that a peer that is down costs a
few calls a minute rather than one per tick, and one success resets it. It lives in
``collabdnn`` (not in an agent or scheduler package) so that every service imports the
same rule without depending on another service.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Backoff"]


@dataclass
class Backoff:
    """Exponential back-off after failures: ``first``, 2 x ``first``, ... up to ``cap``.

    ``first`` defaults to 0.5 s (the agent's loops); the scheduler's pushers use 0.25 s,
    since an agent that restarts is usually back within a second.
    """

    cap: float
    first: float = 0.5
    failures: int = 0
    until: float = 0.0

    def ready(self, now: float) -> bool:
        return now >= self.until

    def failed(self, now: float) -> float:
        """Count one failure; returns the delay before the next try (also ``until``)."""
        self.failures += 1
        delay = min(self.cap, self.first * 2 ** (self.failures - 1))
        self.until = now + delay
        return delay

    def ok(self) -> None:
        self.failures, self.until = 0, 0.0
