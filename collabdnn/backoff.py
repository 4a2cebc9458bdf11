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

_MAX_DOUBLINGS = 60


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
        # The exponent is capped: 2.0**1024 overflows a float (OverflowError, which a loop
        # catching only grpc.RpcError would die of after hours of an absent peer); 2**60
        # times any sensible ``first`` is far past any ``cap``.
        delay = min(self.cap, self.first * 2 ** min(self.failures - 1, _MAX_DOUBLINGS))
        self.until = now + delay
        return delay

    def ok(self) -> None:
        self.failures, self.until = 0, 0.0
