"""Time :func:`collabdnn.planning.planner.plan` for each objective.

Two instances: a 12-unit AlexNet-like chain (target: well under 1 ms per plan) and a
1,000-unit synthetic chain (target: under 50 ms).  The deadline is set halfway between
the fastest plan's latency and the least-energy plan's latency, the case where the
label search has to work (a looser deadline is answered by the least-energy plan at
once).  Writes ``benchmarks/results/planner.json`` and prints a markdown table.

Run: ``python benchmarks/bench_planner.py [--repeats R]``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

from benchmarks.common import write_results
from collabdnn.placement import Side
from collabdnn.planning.energy import power_model
from collabdnn.planning.link import LINK_PRESETS
from collabdnn.planning.planner import OBJECTIVES, Constraints, plan
from collabdnn.planning.profiles import Boundary, PlanInput, UnitCost

RESULTS = Path(__file__).resolve().parent / "results" / "planner.json"

_ALEX = [  # name, cloud ms, float32 output elements
    ("preprocess", 2.0, 3 * 224 * 224),
    ("conv1", 1.5, 64 * 55 * 55),
    ("pool1", 0.2, 64 * 27 * 27),
    ("conv2", 2.0, 192 * 27 * 27),
    ("pool2", 0.1, 192 * 13 * 13),
    ("conv3", 1.0, 384 * 13 * 13),
    ("conv4", 1.2, 256 * 13 * 13),
    ("conv5", 0.8, 256 * 13 * 13),
    ("pool3", 0.05, 9216),
    ("fc1", 3.0, 4096),
    ("fc2", 1.3, 4096),
    ("fc3", 0.3, 1000),
]


def alexnet_like() -> PlanInput:
    """12 units, phone 10x slower than the cloud, activations compressed to half."""
    units = tuple(UnitCost(name, name.rstrip("0123456789"), 10 * ms, ms) for name, ms, _ in _ALEX)
    boundaries = [Boundary(300_000)]
    for _, _, elements in _ALEX:
        size = elements * 4 // 2
        mb = size / 1e6
        boundaries.append(Boundary(size, 2 * mb, mb, 0.5 * mb, 0.3 * mb))
    return PlanInput(units, tuple(boundaries))


def synthetic_chain(n: int, seed: int = 1) -> PlanInput:
    """``n`` units with costs and sizes spread over orders of magnitude."""
    rng = random.Random(seed)
    units = []
    for i in range(n):
        mobile = 10 ** rng.uniform(-1, 1.3)  # 0.1 to 20 ms
        speedup = 10 ** rng.uniform(-0.5, 1.5)  # the cloud 0.3x to 30x faster
        units.append(UnitCost(f"u{i}", "layer", mobile, mobile / speedup))
    boundaries = tuple(
        Boundary(
            int(10 ** rng.uniform(2, 5.5)),
            rng.uniform(0, 1),
            rng.uniform(0, 1),
            rng.uniform(0, 0.3),
            rng.uniform(0, 0.3),
        )
        for _ in range(n + 1)
    )
    return PlanInput(tuple(units), boundaries)


def hard_deadline(inp: PlanInput, link, power) -> float:
    fastest = plan(inp, link, power, "latency").latency_ms
    leanest = plan(inp, link, power, "energy").latency_ms
    return fastest + 0.5 * (leanest - fastest)


def time_plan(inp: PlanInput, objective: str, deadline: float, repeats: int) -> dict:
    link, power = LINK_PRESETS["wifi"], power_model("wifi")
    constraints = Constraints(deadline_ms=deadline, weight=0.5)
    result = plan(inp, link, power, objective, constraints)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        plan(inp, link, power, objective, constraints)
        times.append((time.perf_counter() - start) * 1000)
    return {
        "objective": objective,
        "median_ms": statistics.median(times),
        "min_ms": min(times),
        "repeats": repeats,
        "placement_spec": result.spec if len(inp.units) <= 40 else None,
        "mobile_units": result.placement.count(Side.MOBILE),
        "link_crossings": len(result.cost.transfers),
        "latency_ms": result.latency_ms,
        "mobile_energy_mj": result.mobile_energy_mj,
        "feasible": result.feasible,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeats", type=int, default=0, help="timed runs per case (default: 2000 small, 20 large)"
    )
    parser.add_argument("--units", type=int, default=1000, help="synthetic chain length")
    args = parser.parse_args(argv)
    link, power = LINK_PRESETS["wifi"], power_model("wifi")
    cases = [
        ("alexnet-like", alexnet_like(), args.repeats or 2000, 1.0),
        (f"synthetic-{args.units}", synthetic_chain(args.units), args.repeats or 20, 50.0),
    ]
    rows = []
    for name, inp, repeats, target in cases:
        deadline = hard_deadline(inp, link, power)
        for objective in OBJECTIVES:
            row = time_plan(inp, objective, deadline, repeats)
            row.update(
                instance=name,
                units=len(inp.units),
                target_ms=target,
                deadline_ms=deadline if objective == "deadline" else None,
            )
            rows.append(row)
    lines = [
        "| instance | units | objective | median ms | min ms | target ms | placement |",
        "|---|---:|---|---:|---:|---:|---|",
    ]
    for r in rows:
        where = r["placement_spec"] or (
            f"{r['mobile_units']} on mobile, {r['link_crossings']} link crossings"
        )
        lines.append(
            f"| {r['instance']} | {r['units']} | {r['objective']} | "
            f"{r['median_ms']:.3f} | {r['min_ms']:.3f} | {r['target_ms']:g} | {where} |"
        )
    table = "\n".join(lines)
    write_results("planner", {"link": link.to_dict(), "results": rows}, table)
    print(table)
    print(f"\nwrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
