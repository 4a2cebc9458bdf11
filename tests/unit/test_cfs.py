"""The CFS bandwidth model (collabdnn.planning.cfs) against cases worked by hand, and
the planner's use of it for a phone profiled under a quota."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import time
from pathlib import Path

import grpc
import pytest

from collabdnn.planning.cfs import CpuLimit, gap_from_rate, throttled_ms
from collabdnn.planning.profiles import (
    LatencyStats,
    Profile,
    plan_input_from_profiles,
    quota_scale,
    save_profile,
)
from tests.unit.test_planner import make_profile, run_cli

mobile_profile = pytest.fixture(lambda: make_profile("mobile", 1.0))


def test_a_quota_of_a_core_or_more_never_binds_one_thread() -> None:
    assert throttled_ms(37.0, CpuLimit(1.0)) == 37.0
    assert throttled_ms(37.0, CpuLimit(2.5, 10.0), 500.0) == 37.0
    assert throttled_ms(0.0, CpuLimit(0.25)) == 0.0


def test_back_to_back_tasks_take_their_cpu_over_the_quota() -> None:
    """Never idle, every period's budget is spent: the fluid figure C / q."""
    for cpu, limit in ((37.0, CpuLimit(0.25)), (36.0, CpuLimit(0.5, 10.0)), (5.0, CpuLimit(0.1))):
        fluid = cpu / limit.cores
        assert throttled_ms(cpu, limit) == pytest.approx(fluid, rel=0.01)
        assert throttled_ms(cpu, limit, 0.0) == fluid
        # Walked period by period, a short idle gap is budget saved up: C / q - gap.
        assert throttled_ms(cpu, limit, 0.5) == pytest.approx(fluid - 0.5, rel=0.01)


def test_a_sporadic_task_starts_with_a_whole_budget() -> None:
    """Worked by hand: 37 ms of CPU, 0.25 cores, 100 ms period (a 25 ms budget), from a
    uniformly random start point t of a period with the budget unspent:
    t < 75: 25 ms, throttled to 100, 12 ms more: 112 - t;
    75 <= t <= 88: the period ends before the budget, the rest fits the next: 37;
    t > 88: 100 - t, 25 ms, throttled to 200, the rest: 112 in all.
    Mean: (75 * 74.5 + 13 * 37 + 12 * 112) / 100 = 74.125 ms, half of C / q."""
    limit = CpuLimit(0.25, 100.0)
    assert throttled_ms(37.0, limit, math.inf) == pytest.approx(74.125, rel=0.01)
    # Long idle times drawn around a mean come to the same, within the draws' spread.
    assert throttled_ms(37.0, limit, 5000.0) == pytest.approx(74.125, rel=0.02)
    # A task that fits a budget runs at full speed, wherever it starts.
    assert throttled_ms(20.0, CpuLimit(0.5, 100.0), 400.0) == pytest.approx(20.0)


def test_the_longer_the_idle_gap_the_faster_and_within_bounds() -> None:
    """No jump where the idle time reaches a period (idle times are drawn around their
    mean, so tasks do not lock to one point of the period)."""
    for limit in (CpuLimit(0.25, 100.0), CpuLimit(0.25, 10.0), CpuLimit(0.5, 100.0)):
        period = limit.period_ms
        gaps = [0.0, 1.0, 0.5 * period, 0.99 * period, period, 1.01 * period]
        gaps += [2 * period, 10 * period, 100 * period, math.inf]
        latencies = [throttled_ms(37.0, limit, gap) for gap in gaps]
        for longer, shorter in zip(latencies[1:], latencies, strict=False):
            assert longer <= shorter * 1.02  # the draws' spread: 2 % at most
        assert latencies[4] == pytest.approx(latencies[3], rel=0.01)
        for value in latencies:
            assert 37.0 <= value <= 37.0 / limit.cores + period
    # Saturated, an idle gap g is budget saved up: C / q - g.
    assert throttled_ms(37.0, CpuLimit(0.25), 10.0) == pytest.approx(148.0 - 10.0, rel=0.01)


def test_the_idle_gap_from_a_measured_rate() -> None:
    """The interval less the latency, which the idle time itself sets (a fixed point)."""
    limit = CpuLimit(0.25, 100.0)
    for rate in (0.2, 2.0, 5.0):
        gap = gap_from_rate(rate, 37.0, limit)
        assert gap + throttled_ms(37.0, limit, gap) == pytest.approx(1000.0 / rate, rel=0.01)
    assert gap_from_rate(10.0, 37.0, limit) == 0.0  # faster than it can serve: back to back
    for idle in (0.0, -1.0, math.nan, math.inf):
        assert gap_from_rate(idle, 37.0, limit) == math.inf  # no requests: idle for long


def test_bad_figures_are_refused() -> None:
    for cores, period in ((0.0, 100.0), (math.nan, 100.0), (0.5, 0.5), (0.5, 2000.0)):
        with pytest.raises(ValueError):
            CpuLimit(cores, period)
    with pytest.raises(ValueError):
        throttled_ms(-1.0, CpuLimit(0.5))
    for gap in (-1.0, math.nan):
        with pytest.raises(ValueError):
            throttled_ms(1.0, CpuLimit(0.5), gap)


def _under_quota(profile: Profile, host: dict[str, object], threads: int = 1) -> Profile:
    units = tuple(
        dataclasses.replace(u, latency_ms=LatencyStats(1.0, 1.0, 9.0, 10, 3.0, 37.0 / n))
        for n in [len(profile.units)]
        for u in profile.units
    )
    return dataclasses.replace(profile, units=units, host=host, threads=threads)


def test_the_planner_prices_an_idle_phone_under_a_quota_with_the_model(mobile_profile) -> None:
    """Every unit is scaled alike, so that mobile-only adds up to the model's figure;
    back to back (no gap), no quota, or several threads keep the CPU over the quota."""
    cloud = dataclasses.replace(mobile_profile, side="cloud")
    quarter = _under_quota(mobile_profile, {"cpu_quota": 0.25, "cpu_period_ms": 100.0})
    assert quarter.cpu_limit == CpuLimit(0.25, 100.0)
    assert quota_scale(quarter, None) == 1.0
    fluid = math.fsum(u.mobile_ms for u in plan_input_from_profiles(quarter, cloud).units)
    assert fluid == pytest.approx(148.0)
    idle = plan_input_from_profiles(quarter, cloud, request_gap_ms=500.0)
    assert math.fsum(u.mobile_ms for u in idle.units) == pytest.approx(
        throttled_ms(37.0, CpuLimit(0.25, 100.0), 500.0)
    )
    assert {u.cloud_ms for u in idle.units} == {u.cloud_ms for u in plan_input_from_profiles(
        quarter, cloud).units}  # fmt: skip
    # A profile that did not record the period: the kernel's default, 100 ms.
    older = _under_quota(mobile_profile, {"cpu_quota": 0.25})
    assert older.cpu_limit == CpuLimit(0.25, 100.0)
    assert quota_scale(older, 500.0) == pytest.approx(quota_scale(quarter, 500.0))
    # A 10 ms period throttles a task evenly: little to gain from the idle gap.
    short = _under_quota(mobile_profile, {"cpu_quota": 0.25, "cpu_period_ms": 10.0})
    assert quota_scale(short, 500.0) > quota_scale(quarter, 500.0)
    for unaffected in (
        _under_quota(mobile_profile, {"cpu_quota": None}),
        _under_quota(mobile_profile, {"cpu_quota": 0.25}, threads=2),
    ):
        assert quota_scale(unaffected, 500.0) == 1.0


def test_plan_cli_takes_the_idle_gap(tmp_path: Path) -> None:
    """``collabdnn plan --request-gap-ms``: mobile-only of a phone profiled under a quota
    is predicted by the model; without the flag, back to back."""
    mobile = _under_quota(make_profile("mobile", 1.0), {"cpu_quota": 0.25, "cpu_period_ms": 100})
    paths = {"mobile": tmp_path / "m.json", "cloud": tmp_path / "c.json"}
    save_profile(mobile, paths["mobile"])
    save_profile(make_profile("cloud", 1.0), paths["cloud"])
    base = ["plan", "--model", "tiny", "--json"]
    base += ["--mobile-profile", str(paths["mobile"]), "--cloud-profile", str(paths["cloud"])]
    only = {}
    for gap in (None, 500.0):
        rc, out = run_cli(base + ([] if gap is None else ["--request-gap-ms", f"{gap:g}"]))
        assert rc == 0
        only[gap] = json.loads(out)["baselines"]["mobile_only"]["predicted"]["latency_ms"]
    model = throttled_ms(37.0, CpuLimit(0.25, 100.0), 500.0)
    assert only[None] - only[500.0] == pytest.approx(148.0 - model)
    with pytest.raises(SystemExit) as refused:
        run_cli([*base, "--request-gap-ms", "-1"])
    assert refused.value.code == 2


def test_a_fleet_scheduler_takes_each_phones_idle_time_from_its_rate(tmp_path: Path) -> None:
    """Fleet mode, a phone profiled under 0.25 CPU: the one that heart-beats a request
    every 5 s is planned with the model's sporadic figure, the busy one back to back."""
    from collabdnn.services import AgentHeartbeat, ProfileSummary
    from collabdnn.wire.stubs import SchedulerStub
    from scheduler.core import SchedulerSettings
    from scheduler.fleet import FleetSettings
    from scheduler.server import SchedulerConfig
    from scheduler.server import create_server as scheduler_server
    from tests.unit.test_fleet_capacity import WIFI
    from tests.unit.test_training_grpc import _wait_ready

    mobile = _under_quota(make_profile("mobile", 1.0), {"cpu_quota": 0.25, "cpu_period_ms": 100})
    save_profile(mobile, tmp_path / "m.json")
    save_profile(make_profile("cloud", 1.0), tmp_path / "c.json")
    settings = SchedulerSettings(
        mobile_profile=str(tmp_path / "m.json"),
        cloud_profile=str(tmp_path / "c.json"),
        load_poll_s=0.0,
    )
    fleet = FleetSettings(timeout_s=60.0, capacity_poll_s=0.0, cloud_replicas=("127.0.0.1:1",))
    server, port = scheduler_server(SchedulerConfig(settings=settings, fleet=fleet, port=0))
    server.start()
    address = f"127.0.0.1:{port}"
    try:
        _wait_ready(address)
        from collabdnn.transport.channels import open_channel

        mobile_only: dict[str, list[float]] = {"idle": [], "busy": []}
        beats = {
            name: AgentHeartbeat(name, f"127.0.0.1:{n}", WIFI, profile=ProfileSummary("tiny"))
            for n, name in ((1, "idle"), (2, "busy"))
        }
        with open_channel(address) as channel:
            stub = SchedulerStub(channel)

            def mobile_only_ms(name: str, before: float | None = None) -> float:
                for _ in range(100):  # re-plans are at most one per 0.2 s
                    with contextlib.suppress(grpc.RpcError):
                        plan = stub.get_plan(timeout=10, agent_id=name).plan
                        ms = plan.baselines["mobile_only"].cost.latency_ms
                        if ms != before:
                            return float(ms)
                    time.sleep(0.05)
                raise AssertionError(f"agent {name} was not re-planned")

            for name, rate in (("idle", 0.2), ("busy", 50.0)):
                stub.heartbeat(dataclasses.replace(beats[name], rate_hz=rate), timeout=10)
            for name in ("idle", "busy"):
                mobile_only[name].append(mobile_only_ms(name))
            # The busy phone goes quiet: its next heartbeat re-prices it.
            stub.heartbeat(dataclasses.replace(beats["busy"], rate_hz=0.2), timeout=10)
            mobile_only["busy"].append(mobile_only_ms("busy", mobile_only["busy"][0]))
    finally:
        server.stop(0).wait()
    limit = CpuLimit(0.25, 100.0)
    sporadic = throttled_ms(37.0, limit, gap_from_rate(0.2, 37.0, limit))
    assert sporadic < 80.0
    assert mobile_only["busy"] == pytest.approx([148.0, sporadic])  # CPU over the quota first
    assert mobile_only["idle"] == pytest.approx([sporadic])
