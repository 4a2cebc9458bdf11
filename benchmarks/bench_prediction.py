"""Predicted vs measured end-to-end latency of several plans, through real services.

Starts a cloud server, a mobile agent and the scheduler on 127.0.0.1 (alexnet, weights
seed:0, one torch thread each), profiles both sides through their Profile calls, takes
the link the agent measured (probes and calls over the loopback), and prices a set of
placements with the planner's cost model (:func:`collabdnn.planning.planner.evaluate`): the
scheduler's plan, its baselines, and some split placements. Each placement is then
classified ``--requests`` times (after warm-up) through the agent with an explicit
placement, and the median measured latency is compared with the prediction.

    python -m benchmarks.bench_prediction           # writes results/prediction.{json,md}
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmarks.common import write_results

ROOT = Path(__file__).resolve().parent.parent
EXTRA = {
    "cut after pool1 (M->C)": "MMMCCCCCCCCC",
    "cut after pool3 (M->C)": "MMMMMMMMMCCC",
    "mobile->cloud->mobile": "MMMCCCCCCMMM",
    "cloud->mobile->cloud": "CCCCCMMMMCCC",
}


def measure(requests: int, image_path: Path, repeats: int) -> dict[str, Any]:
    from collabdnn.measure.profile_service import ProfileSettings, fetch_profile
    from collabdnn.placement import Placement
    from collabdnn.planning.energy import power_model
    from collabdnn.planning.planner import evaluate
    from collabdnn.planning.profiles import plan_input_from_profiles
    from collabdnn.services import ReplanRequest
    from collabdnn.testbed.stack import Stack
    from collabdnn.transport.channels import open_channel
    from collabdnn.wire.stubs import AgentStub, SchedulerStub
    from mobile_agent.client import classify

    image = image_path.read_bytes()
    common = ["--model", "alexnet", "--weights", "seed:0", "--threads", "1"]
    stack = Stack(
        common, scheduler_args=["--images", str(image_path), "--profile-repeats", str(repeats)]
    )
    with stack:
        assert stack.agent is not None and stack.cloud is not None
        stack.wait_agent_plan(lambda spec, plan: plan.source == "scheduler")
        settings = ProfileSettings(repeats=repeats, warmup=2)
        with open_channel(stack.agent.address) as channel:
            mobile = fetch_profile(channel, "mobile", [image], settings)
        with open_channel(stack.cloud.address) as channel:
            cloud = fetch_profile(channel, "cloud", [image], settings)
        inp = plan_input_from_profiles(mobile, cloud)
        # Let the agent measure the loopback (probes, then the calls below) and report.
        for spec in ("cloud", "MMMCCCCCCMMM"):
            for _ in range(5):
                classify(stack.agent.address, [image], Placement.parse(spec))
        time.sleep(2.5)
        with open_channel(stack.agent.address) as channel:
            est = AgentStub(channel).info(timeout=10).link
        assert est is not None
        link = replace(est.link, network=est.link.network or "wifi")
        with open_channel(stack.scheduler_address) as channel:
            live = SchedulerStub(channel).replan(ReplanRequest(reason="benchmark"), timeout=60)
        plan = live.to_dict()
        specs = {"scheduler plan": plan["placement_spec"]}
        specs.update({name: b["placement_spec"] for name, b in plan["baselines"].items()})
        specs.update(EXTRA)
        power = power_model(link.network)
        rows = []
        for name, spec in specs.items():
            placement = Placement.parse(spec).resolve(len(inp.units))
            predicted = evaluate(inp, link, power, placement)
            for _ in range(3):  # warm-up: connections, caches, allocator
                classify(stack.agent.address, [image], Placement.parse(spec))
            results = [
                classify(stack.agent.address, [image], Placement.parse(spec))[0]
                for _ in range(requests)
            ]
            measured = statistics.median(r.latency_ms for r in results)
            rows.append({
                "plan": name, "spec": spec,
                "predicted_ms": predicted.latency_ms, "measured_ms": measured,
                "measured_p10_ms": sorted(r.latency_ms for r in results)[requests // 10],
                "measured_p90_ms": sorted(r.latency_ms for r in results)[(9 * requests) // 10],
                "error_pct": 100.0 * (measured - predicted.latency_ms) / predicted.latency_ms,
                "predicted_mj": predicted.mobile_energy_mj,
                "modelled_mj": statistics.median(r.mobile_energy_mj or 0.0 for r in results),
                "requests": requests,
            })  # fmt: skip
    errors = [abs(r["error_pct"]) for r in rows]
    return {
        "model": "alexnet", "weights": "seed:0", "image": image_path.name,
        "link": link.to_dict(), "scheduler_plan": plan["placement_spec"],
        "rows": rows, "median_abs_error_pct": statistics.median(errors),
        "max_abs_error_pct": max(errors),
    }  # fmt: skip


def table(data: dict[str, Any]) -> str:
    link = data["link"]
    lines = [
        f"alexnet (seed:0), {data['image']}, one torch thread per side, both sides on this "
        f"machine over loopback; link as the agent measured it: up {link['up_mbps']:.0f}, "
        f"down {link['down_mbps']:.0f} Mbit/s, RTT {link['rtt_ms']:.2f} ms. Median of "
        f"{data['rows'][0]['requests']} requests per plan after warm-up.",
        "",
        "| plan | placement | predicted ms | measured ms (p10–p90) | error | predicted mJ "
        "| modelled mJ |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in data["rows"]:
        lines.append(
            f"| {r['plan']} | `{r['spec']}` | {r['predicted_ms']:.1f} | {r['measured_ms']:.1f} "
            f"({r['measured_p10_ms']:.1f}–{r['measured_p90_ms']:.1f}) | {r['error_pct']:+.1f}% "
            f"| {r['predicted_mj']:.1f} | {r['modelled_mj']:.1f} |"
        )
    lines += [
        "",
        f"Median absolute error {data['median_abs_error_pct']:.1f}% "
        f"(max {data['max_abs_error_pct']:.1f}%).",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=10, help="profiling runs per side")
    parser.add_argument("--image", type=Path, default=ROOT / "samples" / "chelsea.png")
    args = parser.parse_args(argv)
    data = measure(args.requests, args.image, args.repeats)
    text = table(data)
    write_results("prediction", data, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
