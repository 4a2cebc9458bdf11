"""Predicted vs measured mobile-only latency under a cgroup CPU quota (root only).

A mobile agent (alexnet, seed:0, one torch thread) runs in a cgroup limited to
``cpus`` cores (CFS period 100 ms, Docker's, and 10 ms); it profiles itself through its
Profile call there (so the profile records the quota) and then classifies ``requests``
images mobile-only. Each prediction of the request's latency is set against the
measured mean (and median):

* **sum of medians**: what the planner used before; under a quota each throttling
  pause lands in whichever unit is running, so a short unit's median drops it;
* **sum of means**: the pauses the profile saw, wherever they landed;
* **CPU / quota**: the units' CPU time divided by the quota (what a profile measured
  without the quota would predict, knowing it);
* **planner**: :func:`collabdnn.planning.planner.evaluate` of the mobile-only placement
  on :func:`~collabdnn.planning.profiles.plan_input_from_profiles`: each unit's CPU time
  over the quota (:meth:`~collabdnn.planning.profiles.LatencyStats.expected`).

Writes results/quota.{json,md}; exits 1 where there is no writable cgroup CPU
controller.

    sudo python -m benchmarks.bench_quota [--requests 40] [--repeats 10]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import math
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import markdown_table, write_results
from collabdnn.netem.throttle import ThrottleError, add_process, cpu_quota
from collabdnn.placement import Placement, Side
from collabdnn.testbed.procs import Service
from collabdnn.testbed.stack import SAMPLE_PHOTO

SETTINGS = [(None, 100_000), (0.5, 100_000), (0.25, 100_000), (0.5, 10_000)]


def _predictions(profiles: list[Any], quota: float | None) -> dict[str, float]:
    """Each predictor, from the profiles taken in the rounds (their stats averaged)."""
    from collabdnn.planning.energy import power_model
    from collabdnn.planning.link import LINK_PRESETS
    from collabdnn.planning.planner import evaluate
    from collabdnn.planning.profiles import plan_input_from_profiles

    def mean_of(get: Callable[[Any], float | None]) -> float:
        return math.fsum(
            statistics.fmean(get(p.units[i].latency_ms) or 0.0 for p in profiles)
            for i in range(len(profiles[0].units))
        )

    planner = []
    for mobile in profiles:
        cloud = dataclasses.replace(mobile, side=Side.CLOUD)  # mobile-only: never priced
        inp = plan_input_from_profiles(mobile, cloud)
        placement = Placement.parse("mobile").resolve(len(inp.units))
        cost = evaluate(inp, LINK_PRESETS["wifi"], power_model("wifi"), placement)
        planner.append(cost.latency_ms)
    return {
        "sum_of_medians_ms": mean_of(lambda s: s.median),
        "sum_of_means_ms": mean_of(lambda s: s.mean),
        "cpu_over_quota_ms": mean_of(lambda s: s.cpu) / min(quota or 1.0, 1.0),
        "planner_ms": statistics.fmean(planner),
    }


def run_one(
    quota: float | None,
    period_us: int,
    rounds: int,
    requests: int,
    repeats: int,
    log_dir: Path,
) -> dict[str, Any]:
    """One setting: ``rounds`` of (profile, then ``requests`` requests), so that a load
    on the machine that comes and goes falls on the predictions and the measurements
    alike."""
    from collabdnn.measure.profile_service import ProfileSettings, fetch_profile
    from collabdnn.transport.channels import open_channel
    from mobile_agent.client import classify

    image = SAMPLE_PHOTO.read_bytes()
    args = ["--model", "alexnet", "--weights", "seed:0", "--threads", "1"]
    mobile = Placement.parse("mobile")
    profiles, latencies = [], []
    with Service("mobile", args, log_dir=log_dir) as agent:
        agent.wait_healthy(180)
        with contextlib.ExitStack() as stack:
            if quota is not None:
                assert agent.pid is not None
                add_process(stack.enter_context(cpu_quota(quota, period_us)), agent.pid)
            for _ in range(3):
                classify(agent.address, [image], mobile, timeout=120)
            settings = ProfileSettings(repeats=repeats, warmup=1)
            for _ in range(rounds):
                with open_channel(agent.address) as channel:
                    profiles.append(fetch_profile(channel, "mobile", [image], settings))
                latencies += [
                    classify(agent.address, [image], mobile, timeout=120)[0].latency_ms
                    for _ in range(requests)
                ]
    measured_mean = statistics.fmean(latencies)
    predicted = _predictions(profiles, quota)
    return {
        "cpus": quota,
        "period_us": period_us,
        "profile_cpu_quota": profiles[0].cpu_quota,
        "rounds": rounds,
        "requests": len(latencies),
        "measured_mean_ms": measured_mean,
        "measured_median_ms": statistics.median(latencies),
        "latencies_ms": [round(v, 2) for v in latencies],
        "predicted": predicted,
        "error_pct": {
            key: 100.0 * (value - measured_mean) / measured_mean for key, value in predicted.items()
        },
    }


def render(records: list[dict[str, Any]], repeats: int) -> str:
    rows = []
    for r in records:
        p, e = r["predicted"], r["error_pct"]
        rows.append(
            [
                "none" if r["cpus"] is None else f"{r['cpus']:g}",
                "-" if r["cpus"] is None else f"{r['period_us'] // 1000} ms",
                f"{r['measured_mean_ms']:.1f} ({r['measured_median_ms']:.1f})",
                f"{p['sum_of_medians_ms']:.1f} ({e['sum_of_medians_ms']:+.1f}%)",
                f"{p['sum_of_means_ms']:.1f} ({e['sum_of_means_ms']:+.1f}%)",
                f"{p['cpu_over_quota_ms']:.1f} ({e['cpu_over_quota_ms']:+.1f}%)",
                f"{p['planner_ms']:.1f} ({e['planner_ms']:+.1f}%)",
            ]
        )
    headers = [
        "CPU quota",
        "CFS period",
        "measured mean ms (median)",
        "sum of medians",
        "sum of means",
        "CPU / quota",
        "planner",
    ]
    n, rounds = records[0]["requests"], records[0]["rounds"]
    return (
        f"Mobile-only AlexNet (`seed:0`, `{SAMPLE_PHOTO.name}`, one torch thread) in an "
        f"agent under a cgroup CPU quota: {rounds} rounds of a profile there ({repeats} runs "
        f"per unit) then requests, {n} requests in all; each prediction (ms) and its error "
        "against the measured mean. *Planner* = what it now predicts for a side profiled "
        "under a quota: per unit the CPU time over the quota.\n\n" + markdown_table(headers, rows)
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="profile + requests, per quota")
    parser.add_argument("--requests", type=int, default=10, help="per round")
    parser.add_argument("--repeats", type=int, default=6, help="profiling runs per round")
    args = parser.parse_args()
    records = []
    with tempfile.TemporaryDirectory(prefix="collabdnn-quota-") as folder:
        for quota, period in SETTINGS:
            try:
                records.append(
                    run_one(quota, period, args.rounds, args.requests, args.repeats, Path(folder))
                )
            except ThrottleError as exc:
                print(f"bench_quota: no CPU quota here: {exc}", file=sys.stderr)
                return 1
            print(f"quota {quota} period {period}: done", flush=True)
    table = render(records, args.repeats)
    data = {"rounds": args.rounds, "repeats": args.repeats, "records": records}
    write_results("quota", data, table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
