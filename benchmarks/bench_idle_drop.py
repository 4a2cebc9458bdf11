"""Idle link drops and CPU contention: what the link estimate makes of each.

Two parts:

* ``idle`` (root only): :mod:`collabdnn.testbed.idle_drop` in a private namespace. tc
  shapes the loopback to 100 Mbit/s, the scheduler plans for a phone 4x slower than
  this machine and offloads; the agent classifies once and idles (only its probes use
  the link); then the link drops to 1 Mbit/s. Measured per drop: the time until the
  scheduler's plan is more mobile-heavy (``detect``), the agent's estimate then, and
  the first classification after it against the new plan's predicted latency. The link
  is restored between drops. Writes results/idle_drop.{json,md}.
* ``contention``: :mod:`collabdnn.testbed.contention` on the unshaped loopback: the
  agent's link estimate idle, under 16 concurrent classifications (each an Execute
  call with the whole photo) and after; and the plan switches the scheduler logged
  meanwhile. Writes results/contention.{json,md}.

    python -m benchmarks.bench_idle_drop [--part idle|contention|all] [--drops 3] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from typing import Any

from tqdm import tqdm

from benchmarks.common import markdown_table, write_results


def _mbps(estimate: dict[str, Any] | None) -> str:
    if not estimate:
        return "-"
    return f"{estimate['up_mbps']:,.2f} / {estimate['down_mbps']:,.2f}"


def idle(drops: int) -> int:
    from collabdnn.netem.netns import netns_available
    from collabdnn.testbed.idle_drop import measure_in_namespace

    available, reason = netns_available()
    if not available:
        print(f"idle drop skipped: real link shaping unavailable: {reason}", file=sys.stderr)
        return 1
    result = measure_in_namespace(drops=drops)
    runs = result["runs"]
    rows = [
        [
            r["drop"],
            f"`{r['plan_before']}`",
            f"`{r['plan_after']}`",
            f"{r['estimate_s']:.2f}",
            f"{r['detect_s']:.2f}",
            f"{r['agent_s']:.2f}",
            _mbps(r["estimate_before"]),
            _mbps(r["estimate_after"]),
            f"{r['first']['latency_ms']:.0f}",
            f"{r['predicted_after_ms']:.0f}",
            f"{r['first_ratio']:.2f}",
            "yes" if r["first"]["fallback"] else "no",
        ]
        for r in runs
    ]
    detect = [r["detect_s"] for r in runs]
    false_alarms = sum(r["idle_switches"] for r in runs)
    table = (
        f"{result['start_mbps']:g} → {result['end_mbps']:g} Mbit/s with no classification "
        f"traffic for {result['idle_s']:g} s before each drop; phone planned as "
        f"{result['mobile_slowdown']:g}× slower than this machine (`--mobile-slowdown`); "
        "rates shaped with tc, RTT not (no netem here). *Estimate moved*: the agent's "
        "estimate (its Info, polled every 0.25 s) below a quarter of the fast link; "
        "*detect*: the scheduler's plan changed.\n\n"
        + markdown_table(
            [
                "drop",
                "plan before",
                "plan after",
                "estimate moved s",
                "detect s",
                "agent holds it s",
                "estimate before up/down Mbit/s",
                "estimate after",
                "first request ms",
                "predicted ms",
                "ratio",
                "fallback",
            ],
            rows,
        )
        + f"\n\nDetection (scheduler's plan changed) median **{statistics.median(detect):.2f} s**,"
        f" worst {max(detect):.2f} s over {len(runs)} drops; {false_alarms} plan changes "
        "while idle on the fast link."
    )
    for key in ("estimates",):
        result.pop(key, None)
    write_results(
        "idle_drop",
        {**result, "median_detect_s": statistics.median(detect), "worst_detect_s": max(detect)},
        table,
    )
    print(table)
    return 0


def contention(runs: int, requests: int, concurrency: int) -> int:
    from collabdnn.testbed.contention import run_scenario

    results = [
        run_scenario(concurrency=concurrency, requests=requests)
        for _ in tqdm(range(runs), desc="contention", unit="run")
    ]
    rows = []
    for i, r in enumerate(results):
        before, under, after = r["before"], r["under"], r["after"]
        low = min(
            under["up_min"] / before["up_mbps"], under["down_min"] / before["down_mbps"]
        )  # fmt: skip
        rows.append(
            [
                i + 1,
                _mbps(before),
                f"{under['up_min']:,.2f} / {under['down_min']:,.2f}",
                f"{under['up_median']:,.2f} / {under['down_median']:,.2f}",
                _mbps(after),
                f"{low:.2f}",
                f"{r['latency_median_ms']:.0f}",
                r["fallbacks"],
                r["link_switches"],
                r["plan_switches"],
            ]
        )
    table = (
        f"{concurrency} concurrent clients, {requests} classifications per run (placement "
        "`cloud`: each an Execute call with the 240 KB photo), agent and cloud on one "
        "2-core machine, loopback not shaped; the estimate polled from the agent's Info.\n\n"
        + markdown_table(
            [
                "run",
                "idle up/down Mbit/s",
                "under load, min",
                "under load, median",
                "after",
                "lowest under/idle",
                "median latency ms",
                "fallbacks",
                "plan switches (link)",
                "plan switches (all)",
            ],
            rows,
        )
    )
    write_results("contention", {"runs": results}, table)
    print(table)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["idle", "contention", "all"], default="all")
    parser.add_argument("--drops", type=int, default=3)
    parser.add_argument("--runs", type=int, default=3, help="contention runs")
    parser.add_argument("--requests", type=int, default=160)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    rc = 0
    if args.part in ("contention", "all"):
        rc |= contention(args.runs, args.requests, args.concurrency)
    if args.part in ("idle", "all"):
        rc |= idle(args.drops)
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
