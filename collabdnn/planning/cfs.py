"""How long a task takes under a cgroup CPU quota: the CFS bandwidth controller's rule.

A quota of ``q`` cores with a period of ``P`` ms gives the group a budget of ``q * P`` ms
of CPU per period. The group runs at full speed until that budget is spent, then waits
for the next period, whose budget is fresh (unused budget is not carried over). So a
task's latency under a quota depends on more than its CPU time over the quota:

* **Back to back** (the phone never idle): every period's budget is spent, and a task of
  ``C`` ms of CPU takes ``C / q`` (the fluid figure). Measured (benchmarks/bench_quota.py,
  AlexNet mobile-only, one thread): the caller's latency was within 1 % of the agent's
  CPU per request over the quota, at 0.25 and 0.5 cores, with periods of 100 and 10 ms.
* **Sporadic** (idle for at least a period between tasks): a task starts with a whole
  budget, at a random point of the period. Under Docker's 100 ms period a task whose CPU
  fits in one budget runs at full speed; the fluid figure is then up to ``1 / q`` times
  too slow (the same benchmark measured 71 ms where the units' CPU over the quota said
  136 ms at 0.25 cores; this model said 73 ms). Fed the CPU the agent really spent, the
  model is up to 9 % slow on such requests: a process that was idle runs a little ahead
  of its quota at first (the kernel keeps some runtime per CPU across idle), which this
  model does not know.

:func:`throttled_ms` walks the periods for a stream of tasks, from several start points of
a period, with idle times drawn (deterministically) from an exponential distribution,
as independent requests have, and averages. It assumes one thread, running at one core
while it runs (a quota of a core or more never binds it), and the kernel's default of no
burst.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["CpuLimit", "gap_from_rate", "throttled_ms"]

DEFAULT_PERIOD_MS = 100.0  # the kernel's and Docker's CFS period
_PHASES = 32  # start points of a period averaged over, for a task that starts fresh
_STREAMS = 8  # start points of a stream of tasks
_MIN_TASKS = 256  # tasks walked in each stream (the first 2 dropped), at least, and
_SPAN_PERIODS = 200  # as many as span this many periods back to back: a stream's average
# is off by up to a period over its span
_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0  # idle times' quantiles: i * golden, mod 1


@dataclass(frozen=True)
class CpuLimit:
    """A cgroup CPU quota: ``cores`` of CPU per ``period_ms`` (``cpu.max`` is
    ``cores * period`` over ``period``)."""

    cores: float
    period_ms: float = DEFAULT_PERIOD_MS

    def __post_init__(self) -> None:
        if not (math.isfinite(self.cores) and self.cores > 0):
            raise ValueError(f"cores must be > 0, got {self.cores}")
        if not (math.isfinite(self.period_ms) and 1.0 <= self.period_ms <= 1000.0):
            raise ValueError(f"period_ms must be in [1, 1000] (the kernel's), got {self.period_ms}")

    @property
    def budget_ms(self) -> float:
        return self.cores * self.period_ms


def throttled_ms(cpu_ms: float, limit: CpuLimit, gap_ms: float | None = None) -> float:
    """Mean latency of a one-thread task needing ``cpu_ms`` of CPU under ``limit``, when
    the phone is idle ``gap_ms`` on average before each task (from one task's end to the
    next one's start; ``None`` or 0: back to back, never idle; ``math.inf``: idle for
    long, each task starts with a whole budget at a random point of a period).

    Idle times are exponentially distributed around ``gap_ms``: a fixed idle time would
    lock every task to the same point of the period, which real requests do not do. An
    idle time that crosses a period boundary ends with a whole budget; a shorter one
    leaves the budget the previous task left. Never less than ``cpu_ms``, never more
    than the fluid ``cpu_ms / cores`` plus a period.
    """
    if not (math.isfinite(cpu_ms) and cpu_ms >= 0):
        raise ValueError(f"cpu_ms must be finite and >= 0, got {cpu_ms}")
    if gap_ms is not None and not (gap_ms >= 0):  # NaN and negatives; inf is allowed
        raise ValueError(f"gap_ms must be >= 0, got {gap_ms}")
    if limit.cores >= 1.0 or cpu_ms == 0.0:
        return cpu_ms
    if not gap_ms:  # never idle: every budget is spent, on average exactly C / q
        return cpu_ms / limit.cores
    period = limit.period_ms
    if math.isinf(gap_ms):
        starts = [period * (k + 0.5) / _PHASES for k in range(_PHASES)]
        return math.fsum(_run(cpu_ms, t, 0.0, limit)[0] for t in starts) / _PHASES
    tasks = max(_MIN_TASKS, min(1000, 2 + math.ceil(_SPAN_PERIODS * limit.budget_ms / cpu_ms)))
    latencies: list[float] = []
    for k in range(_STREAMS):
        t, used = period * (k + 0.5) / _STREAMS, 0.0
        for i in range(tasks):
            took, t, used = _run(cpu_ms, t, used, limit)
            if i >= 2:
                latencies.append(took)
            quantile = (i * _GOLDEN + k / _STREAMS) % 1.0
            t += -gap_ms * math.log1p(-quantile)
            if t >= period:  # a boundary passed while idle: a whole budget
                t, used = t % period, 0.0
    return math.fsum(latencies) / len(latencies)


def gap_from_rate(rate_hz: float, cpu_ms: float, limit: CpuLimit) -> float:
    """The mean idle time between requests of ``cpu_ms`` of CPU that come at ``rate_hz``
    (what a heartbeat reports) under ``limit``: the interval less the latency, which
    itself depends on the idle time (a few rounds of the fixed point). No requests (a
    rate of 0): idle for long, ``math.inf``."""
    if not (math.isfinite(rate_hz) and rate_hz > 0.0):
        return math.inf
    interval = 1000.0 / rate_hz
    gap = max(0.0, interval - cpu_ms / limit.cores)
    for _ in range(4):
        gap = max(0.0, interval - throttled_ms(cpu_ms, limit, gap))
    return gap


def _run(cpu_ms: float, t: float, used: float, limit: CpuLimit) -> tuple[float, float, float]:
    """Run ``cpu_ms`` from time ``t`` into a period with ``used`` of its budget spent:
    (latency, the time into the period it ends at, the budget used by then)."""
    period, budget = limit.period_ms, limit.budget_ms
    left, room = budget - used, period - t
    if cpu_ms <= min(left, room):
        return cpu_ms, t + cpu_ms, used + cpu_ms
    # Either the budget runs out (throttled to the period's end) or the period ends
    # first; either way the task goes on at the next period with a whole budget, and
    # spends a whole budget in each period but its last (skipped in one step).
    need = cpu_ms - max(0.0, min(left, room))
    whole = max(0, math.ceil(need / budget) - 1)
    need -= whole * budget
    elapsed = room + whole * period
    while need > budget:  # rounding only
        need -= budget
        elapsed += period
    return elapsed + need, need, need
