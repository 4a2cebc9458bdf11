"""The cloud's capacity from its own counters: what the fleet scheduler plans with.

Why here: only the cloud sees how long its units take when nothing else runs. Every
Execute call that ran alone (the only one in flight from start to end) adds its
units' compute times to a running mean per unit: the replica's measured service time
per unit range, free of the queueing that the scheduler's model adds on top (a call
that shared the CPU would count the queue twice). With the replica's workers, its
CPUs (affinity and cgroup quota) and its torch threads, the Capacity call tells the
scheduler how many requests it serves at once and at what speed
(:mod:`collabdnn.planning.fleet`).
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Iterable

from collabdnn.netem.throttle import current_quota
from collabdnn.services import CloudCapacityInfo, Load, UnitService, UnitTime

__all__ = ["ServiceCounters", "available_cpus"]


class ServiceCounters:
    """Running mean compute time per unit over uncontended Execute calls (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[int, int] = {}
        self._total_ms: dict[int, float] = {}

    def record(self, units: Iterable[UnitTime]) -> None:
        with self._lock:
            for unit in units:
                if not math.isfinite(unit.compute_ms) or unit.compute_ms < 0:
                    continue
                self._calls[unit.index] = self._calls.get(unit.index, 0) + 1
                self._total_ms[unit.index] = self._total_ms.get(unit.index, 0.0) + unit.compute_ms

    def units(self) -> tuple[UnitService, ...]:
        with self._lock:
            return tuple(
                UnitService(i, n, self._total_ms[i] / n) for i, n in sorted(self._calls.items())
            )

    def capacity(self, workers: int, threads: int, load: Load) -> CloudCapacityInfo:
        return CloudCapacityInfo(workers, available_cpus(), threads, self.units(), load)


def available_cpus() -> float:
    """CPUs this process may use: its affinity, capped by its cgroup's CPU quota (v2
    ``cpu.max``, or v1 ``cpu.cfs_quota_us`` over ``cpu.cfs_period_us``)."""
    cpus = float(len(os.sched_getaffinity(0)))
    quota = current_quota()
    return min(cpus, quota) if quota else cpus
