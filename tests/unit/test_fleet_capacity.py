"""How the fleet scheduler learns the cloud's capacity (scheduler/fleet.py,
cloud_server/capacity.py), and the bounds a heartbeat must meet: no services."""

from __future__ import annotations

from typing import Any

import pytest

from cloud_server.capacity import ServiceCounters, available_cpus
from collabdnn.errors import PlanRequestError
from collabdnn.placement import Side
from collabdnn.planning.link import Link, LinkEstimate
from collabdnn.planning.profiles import LatencyStats, Profile, UnitProfile
from collabdnn.services import AgentHeartbeat, CloudCapacityInfo, Load, ProfileSummary, UnitTime
from scheduler.fleet import _check_beat, _per_replica, _speed

WIFI = LinkEstimate(Link(10.0, 10.0, 5.0, "wifi"))


def cloud_profile(*ms: float) -> Profile:
    units = tuple(
        UnitProfile(i, f"u{i}", "conv", 0, 0, LatencyStats(m, m, m, 3), 4, 4, 0, 0)
        for i, m in enumerate(ms)
    )
    return Profile(side=Side.CLOUD, model="m", units=units, input_bytes=10)


def capacity(workers: int, cpus: float, threads: int, *units: tuple[int, int, float]) -> Any:
    from collabdnn.services import UnitService

    return CloudCapacityInfo(workers, cpus, threads, tuple(UnitService(*u) for u in units), Load())


def test_counters_keep_a_mean_per_unit_and_ignore_nonsense() -> None:
    counters = ServiceCounters()
    counters.record([UnitTime(1, 10.0), UnitTime(2, 4.0)])
    counters.record([UnitTime(1, 20.0), UnitTime(2, float("nan"))])
    (one, two) = counters.units()
    assert (one.index, one.calls, one.mean_ms) == (1, 2, 15.0)
    assert (two.index, two.calls, two.mean_ms) == (2, 1, 4.0)
    info = counters.capacity(workers=8, threads=1, load=Load())
    assert info.cpus == available_cpus() and 0 < info.cpus <= 1024


def test_parallelism_and_speed_of_the_replicas() -> None:
    assert _per_replica([]) == 1.0
    assert _per_replica([capacity(8, 4.0, 1)]) == 4.0  # CPUs over threads
    assert _per_replica([capacity(2, 4.0, 1)]) == 2.0  # at most the workers
    assert _per_replica([capacity(8, 0.5, 1)]) == 1.0  # at least one
    assert _per_replica([capacity(8, 4.0, 2), capacity(8, 2.0, 1)]) == 2.0  # the mean
    profile = cloud_profile(0.0, 10.0, 30.0)
    assert _speed([], profile) == 1.0
    assert _speed([capacity(8, 1, 1, (1, 2, 100.0))], profile) == 1.0  # too few runs
    slow = capacity(8, 1, 1, (1, 5, 20.0), (2, 5, 60.0))  # twice the profiled time
    assert _speed([slow], profile) == pytest.approx(0.5)


@pytest.mark.parametrize(
    "beat",
    [
        AgentHeartbeat("", "h:1", WIFI),
        AgentHeartbeat("a" * 65, "h:1", WIFI),
        AgentHeartbeat("a b", "h:1", WIFI),
        AgentHeartbeat("a", "h", WIFI),
        AgentHeartbeat("a", "h:0", WIFI),
        AgentHeartbeat("a", "h:99999", WIFI),
        AgentHeartbeat("a", "h:" + "9" * 300, WIFI),
        AgentHeartbeat("a", "h:1", WIFI, battery=-0.1),
        AgentHeartbeat("a", "h:1", WIFI, rate_hz=float("inf")),
        AgentHeartbeat("a", "h:1", WIFI, profile=ProfileSummary(slowdown=1e9)),
        AgentHeartbeat("a", "h:1", LinkEstimate(Link(1.0, 1.0, 1.0, "5g"))),
        AgentHeartbeat("a", "h:1", LinkEstimate(Link(1.0, 1.0, 1.0, ""))),
    ],
)
def test_a_heartbeat_out_of_bounds_is_refused(beat: AgentHeartbeat) -> None:
    with pytest.raises(PlanRequestError):
        _check_beat(beat)


def test_a_heartbeat_in_bounds_passes() -> None:
    _check_beat(AgentHeartbeat("phone-1.a_b:c", "[::1]:50053", WIFI, 0.5, rate_hz=3.0))
    _check_beat(AgentHeartbeat("x" * 64, "host:65535", WIFI, profile=ProfileSummary(slowdown=0)))
