"""Predicted vs measured mobile-only latency under a cgroup CPU quota (root only).

A mobile agent (alexnet, seed:0, one torch thread) runs in a cgroup limited to
``cpus`` cores (CFS period 100 ms, Docker's, and 10 ms); it profiles itself through its
Profile call there (so the profile records the quota and its period) and then
classifies images mobile-only over one channel, in two patterns: **back to back** (the
next call as soon as one returns) and **sporadic** (idle first for a random time drawn
from an exponential distribution, mean 300 ms, as independent requests are).
*Measured* is the caller's latency (the call's wall time); the agent's own handler time
is shown beside it, as it leaves out the throttling pauses that fall before its handler
starts or after it returns (5-8 % of the latency under a quota). Each prediction is set
against the measured mean:

* **sum of medians**: under a quota each throttling pause lands in whichever unit is
  running, so a short unit's median drops it;
* **sum of means**: the pauses the profile saw, wherever they landed;
* **CPU / quota**: the units' CPU time divided by the quota, the fluid figure; what the
  planner predicts for requests back to back;
* **planner**: :func:`collabdnn.planning.planner.evaluate` of the mobile-only placement
  on :func:`~collabdnn.planning.profiles.plan_input_from_profiles` given the pattern's
  measured idle time between calls (:mod:`collabdnn.planning.cfs`);
* **model, served CPU**: the same model fed the CPU the agent measurably spent per
  request (not a prediction): how far the model itself is off.

The agent's CPU per request (its threads' run time, /proc/PID/task/*/schedstat) and its
CPU share over the pattern are recorded too. Writes results/quota.{json,md}; exits 1
where there is no writable cgroup CPU controller.

    sudo python -m benchmarks.bench_quota [--rounds 5] [--requests 10] [--sporadic 20]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import glob
import math
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import markdown_table, write_results
from collabdnn.netem.throttle import ThrottleError, add_process, cpu_quota
from collabdnn.placement import Placement, Side
from collabdnn.planning.cfs import CpuLimit, throttled_ms
from collabdnn.testbed.procs import Service
from collabdnn.testbed.stack import SAMPLE_PHOTO

SETTINGS = [(None, 100_000), (0.5, 100_000), (0.25, 100_000), (0.5, 10_000)]
PATTERNS = ("back to back", "sporadic")
SPORADIC_IDLE_S = 0.3  # mean of the exponential idle time before a sporadic call


def _predictions(profiles: list[Any], quota: float | None, gap_ms: float) -> dict[str, float]:
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
        inp = plan_input_from_profiles(mobile, cloud, gap_ms)
        placement = Placement.parse("mobile").resolve(len(inp.units))
        cost = evaluate(inp, LINK_PRESETS["wifi"], power_model("wifi"), placement)
        planner.append(cost.latency_ms)
    return {
        "sum_of_medians_ms": mean_of(lambda s: s.median),
        "sum_of_means_ms": mean_of(lambda s: s.mean),
        "cpu_over_quota_ms": mean_of(lambda s: s.cpu) / min(quota or 1.0, 1.0),
        "planner_ms": statistics.fmean(planner),
    }


def _cpu_ms(pid: int) -> float:
    """CPU time of all of ``pid``'s threads (ns precision; psutil's ticks are 10 ms)."""
    total = 0
    for path in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            total += int(Path(path).read_text().split()[0])
    return total / 1e6


class _Pattern:
    """One pattern's calls: the caller's latency, the agent's, its CPU per call, and the
    idle time between calls and the CPU over the whole span."""

    def __init__(self) -> None:
        self.caller: list[float] = []
        self.agent: list[float] = []
        self.cpu: list[float] = []
        self.span_ms = 0.0
        self.span_cpu_ms = 0.0

    def run(self, stub: Any, request: Any, pid: int, n: int, sporadic: bool) -> None:
        begin, cpu_begin = time.perf_counter(), _cpu_ms(pid)
        for _ in range(n):
            if sporadic:
                time.sleep(random.expovariate(1.0 / SPORADIC_IDLE_S))
            cpu0, t0 = _cpu_ms(pid), time.perf_counter()
            result = stub.classify(request, timeout=120)[0]
            t1, cpu1 = time.perf_counter(), _cpu_ms(pid)
            self.caller.append((t1 - t0) * 1e3)
            self.agent.append(result.latency_ms)
            self.cpu.append(cpu1 - cpu0)
        self.span_ms += (time.perf_counter() - begin) * 1e3
        self.span_cpu_ms += _cpu_ms(pid) - cpu_begin

    @property
    def gap_ms(self) -> float:
        """Mean idle time between calls (from one's return to the next one's start)."""
        return max(0.0, self.span_ms / len(self.caller) - statistics.fmean(self.caller))


def run_one(
    quota: float | None,
    period_us: int,
    rounds: int,
    requests: int,
    sporadic: int,
    repeats: int,
    log_dir: Path,
) -> dict[str, Any]:
    """One setting: ``rounds`` of (profile, ``requests`` back to back, ``sporadic``
    sporadic), so that a load on the machine that comes and goes falls on the
    predictions and the measurements alike."""
    from collabdnn.measure.profile_service import ProfileSettings, fetch_profile
    from collabdnn.services import ClassifyRequest
    from collabdnn.transport.channels import open_channel
    from collabdnn.wire.stubs import AgentStub

    image = SAMPLE_PHOTO.read_bytes()
    args = ["--model", "alexnet", "--weights", "seed:0", "--threads", "1"]
    request = ClassifyRequest((image,), Placement.parse("mobile"), 5, False, ())
    profiles = []
    patterns = {name: _Pattern() for name in PATTERNS}
    with Service("mobile", args, log_dir=log_dir) as agent:
        agent.wait_healthy(180)
        assert agent.pid is not None
        with contextlib.ExitStack() as stack:
            if quota is not None:
                add_process(stack.enter_context(cpu_quota(quota, period_us)), agent.pid)
            channel = stack.enter_context(open_channel(agent.address))
            stub = AgentStub(channel)
            for _ in range(3):
                stub.classify(request, timeout=120)
            settings = ProfileSettings(repeats=repeats, warmup=1)
            for _ in range(rounds):
                profiles.append(fetch_profile(channel, "mobile", [image], settings))
                patterns["back to back"].run(stub, request, agent.pid, requests, False)
                patterns["sporadic"].run(stub, request, agent.pid, sporadic, True)
    out: dict[str, Any] = {
        "cpus": quota,
        "period_us": period_us,
        "profile_cpu_quota": profiles[0].cpu_quota,
        "profile_cpu_period_ms": profiles[0].host.get("cpu_period_ms"),
        "rounds": rounds,
        "patterns": {},
    }
    for name, pattern in patterns.items():
        measured = statistics.fmean(pattern.caller)
        predicted = _predictions(profiles, quota, pattern.gap_ms)
        # Not a prediction: the model fed the CPU the agent spent per request (all of
        # it, not the units' alone), to tell the model's error from the profile's.
        served = statistics.fmean(pattern.cpu)
        limit = None if quota is None else CpuLimit(quota, period_us / 1000.0)
        predicted["model_served_cpu_ms"] = (
            served if limit is None else throttled_ms(served, limit, pattern.gap_ms)
        )
        out["patterns"][name] = {
            "requests": len(pattern.caller),
            "measured_mean_ms": measured,
            "measured_median_ms": statistics.median(pattern.caller),
            "agent_mean_ms": statistics.fmean(pattern.agent),
            "cpu_per_request_ms": statistics.fmean(pattern.cpu),
            "cpu_share": pattern.span_cpu_ms / pattern.span_ms,
            "gap_ms": pattern.gap_ms,
            "latencies_ms": [round(v, 2) for v in pattern.caller],
            "predicted": predicted,
            "error_pct": {k: 100.0 * (v - measured) / measured for k, v in predicted.items()},
        }
    return out


def render(records: list[dict[str, Any]], repeats: int) -> str:
    rows = []
    for r in records:
        for name, m in r["patterns"].items():
            p, e = m["predicted"], m["error_pct"]
            rows.append(
                [
                    "none" if r["cpus"] is None else f"{r['cpus']:g}",
                    "-" if r["cpus"] is None else f"{r['period_us'] // 1000} ms",
                    name,
                    f"{m['measured_mean_ms']:.1f} ({m['measured_median_ms']:.1f})",
                    f"{m['agent_mean_ms']:.1f}",
                    f"{m['cpu_per_request_ms']:.1f} / {m['cpu_share']:.3f}",
                    f"{p['sum_of_medians_ms']:.1f} ({e['sum_of_medians_ms']:+.1f}%)",
                    f"{p['sum_of_means_ms']:.1f} ({e['sum_of_means_ms']:+.1f}%)",
                    f"{p['cpu_over_quota_ms']:.1f} ({e['cpu_over_quota_ms']:+.1f}%)",
                    f"**{p['planner_ms']:.1f} ({e['planner_ms']:+.1f}%)**",
                    f"{p['model_served_cpu_ms']:.1f} ({e['model_served_cpu_ms']:+.1f}%)",
                ]
            )
    headers = [
        "CPU quota",
        "CFS period",
        "requests",
        "measured mean ms (median)",
        "agent's own ms",
        "CPU ms per request / share",
        "sum of medians",
        "sum of means",
        "CPU / quota",
        "planner",
        "model, served CPU",
    ]
    first = records[0]["patterns"]
    n, s, rounds = (
        first[PATTERNS[0]]["requests"],
        first[PATTERNS[1]]["requests"],
        records[0]["rounds"],
    )
    return (
        f"Mobile-only AlexNet (`seed:0`, `{SAMPLE_PHOTO.name}`, one torch thread) in an "
        f"agent under a cgroup CPU quota: {rounds} rounds of a profile there ({repeats} runs "
        f"per unit), then requests over one channel, {n} back to back and {s} sporadic "
        f"(idle before each for an exponential time, mean {SPORADIC_IDLE_S * 1e3:g} ms) in "
        "all. *Measured* = the caller's latency; "
        "*agent's own* = the agent's handler time, which leaves out the pauses that fall "
        "before its handler starts or after it returns; *CPU* = the agent's threads' CPU "
        "per request, and its share of a core over the pattern. Each prediction (ms) and "
        "its error against the measured mean. *Planner* = what it predicts given the "
        "pattern's measured idle time between calls (`collabdnn.planning.cfs`); *model, "
        "served CPU* = the same model fed the agent's measured CPU per request instead of "
        "its units' (a measurement, not a prediction: the model's own error).\n\n"
        + markdown_table(headers, rows)
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="profile + requests, per quota")
    parser.add_argument("--requests", type=int, default=10, help="back to back, per round")
    parser.add_argument("--sporadic", type=int, default=20, help="sporadic, per round")
    parser.add_argument("--repeats", type=int, default=6, help="profiling runs per round")
    args = parser.parse_args()
    records = []
    with tempfile.TemporaryDirectory(prefix="collabdnn-quota-") as folder:
        for quota, period in SETTINGS:
            try:
                records.append(
                    run_one(
                        quota,
                        period,
                        args.rounds,
                        args.requests,
                        args.sporadic,
                        args.repeats,
                        Path(folder),
                    )
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
