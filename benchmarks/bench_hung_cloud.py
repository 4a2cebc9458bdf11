"""What does a hung cloud (SIGSTOP, not dead) cost a request, against local-only?

Runs :mod:`collabdnn.testbed.hung_cloud` with real processes on loopback: a cloud and an
agent offloading ``MMMCCCCCCMMM``; the cloud is stopped once before a stream of requests
and once while idle, and continued after each. With ``--baseline`` it runs the scenario
a second time with the call budget and the health watch switched off
(``--call-budget-factor 1000 --health-watch-s 0``: every call gets the flat 30 s
``--timeout``, as before), for comparison. Writes results/hung_cloud.{json,md}.

    python -m benchmarks.bench_hung_cloud [--requests 30] [--baseline]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.common import markdown_table, write_results
from collabdnn.testbed.hung_cloud import run

OFF = ("--call-budget-factor", "1000", "--health-watch-s", "0")


def _rows(label: str, r: dict[str, Any]) -> list[list[Any]]:
    def row(what: str, s: dict[str, Any]) -> list[Any]:
        fallbacks = s.get("fallbacks", "-")
        return [label, what, s["n"], f"{s['median_ms']:,.0f}", f"{s['worst_ms']:,.0f}", fallbacks]

    return [
        row("local only", r["local"]),
        row("cloud up, offloading", r["offloaded"]),
        row("cloud hung during a stream", r["hung_busy"]),
        row("cloud hung while idle, then requests", r["hung_idle"]),
    ]


def _seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f} s"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--baseline", action="store_true", help="also run without budget/watch")
    args = parser.parse_args()
    runs = {}
    with tempfile.TemporaryDirectory(prefix="collabdnn-hung-") as folder:
        runs["budget"] = run(Path(folder), requests=args.requests)
        if args.baseline:
            runs["flat timeout"] = run(
                Path(folder), requests=min(args.requests, 5), agent_args=OFF, idle_limit_s=25.0
            )
    rows = [row for label, r in runs.items() for row in _rows(label, r)]
    table = (
        "Latency seen by the client in ms, AlexNet split `MMMCCCCCCMMM`, cloud and agent "
        "on one machine (loopback, one torch thread each); `budget` = the defaults "
        "(`--call-budget-factor 3 --call-budget-floor-ms 250 --health-watch-s 5`).\n\n"
        + markdown_table(["agent", "case", "requests", "median", "worst", "fell back"], rows)
        + "\n\n"
        + "\n".join(
            f"- `{label}`: hang noticed while idle after {_seconds(r['idle_noticed_s'])}; "
            f"offloading back {_seconds(r['resume_after_busy_s'])} and "
            f"{_seconds(r['resume_after_idle_s'])} after SIGCONT (busy, idle case)."
            for label, r in runs.items()
        )
    )
    write_results("hung_cloud", {"runs": runs}, table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
