"""How soon is the agent re-planned when the real link drops under load? (root only)

Runs :mod:`collabdnn.testbed.linkswitch` a few times, each in its own private namespace: tc
shapes the loopback to 50 Mbit/s, a client classifies in a loop, then the link drops to
1 Mbit/s; the time until the agent holds a more mobile-heavy plan is measured, and every
classification issued meanwhile must succeed. Writes results/linkswitch.{json,md}.

    python -m benchmarks.bench_linkswitch [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics

from tqdm import tqdm

from benchmarks.common import markdown_table, write_results
from collabdnn.testbed.linkswitch import measure_in_namespace


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = []
    for _ in tqdm(range(args.runs), desc="link switch", unit="run"):
        result = measure_in_namespace()
        for key in ("records", "scheduler_log", "agent_log"):
            result.pop(key, None)
        result["failures"] = len(result["failures"])
        runs.append(result)
    rows = [
        [
            i + 1,
            f"{r['start_mbps']:g} → {r['end_mbps']:g}",
            f"`{r['plan_before']}`",
            f"`{r['plan_after']}`",
            f"{r['switch_s']:.2f}",
            r["requests_around_change"],
            r["failures"],
        ]
        for i, r in enumerate(runs)
    ]
    median = statistics.median(r["switch_s"] for r in runs)
    table = (
        "Phone planned as 10× slower than this machine (`--mobile-slowdown 10`); rates shaped "
        "with tc, RTT not (no netem here).\n\n"
        + markdown_table(
            [
                "run",
                "link Mbit/s",
                "plan before",
                "plan after",
                "switch s",
                "requests around the change",
                "failed",
            ],
            rows,
        )
        + f"\n\nMedian switch time **{median:.2f} s** over {len(runs)} runs; "
        f"{sum(r['failures'] for r in runs)} failed classifications."
    )
    write_results("linkswitch", {"runs": runs, "median_switch_s": median}, table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
