"""CPU quota: how much slower a process runs under a cgroup quota (root only).

A process spins for 0.3 s of CPU time, free and then inside ``cpu_quota(cpus, period)``
for a few quotas and CFS periods; the wall time, the slowdown against the free run and
the kernel's throttling counters (``cpu.stat``) are reported. The test checks that the
quota is written and enforced (throttled periods); this measures its effect on time.
Writes benchmarks/results/throttle.{json,md}; exits 1 where there is no writable cgroup
CPU controller (not root, no cgroup mounted).

    sudo python -m benchmarks.bench_throttle [--repeats 3]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from benchmarks.common import markdown_table, median, write_results
from collabdnn.cli.output import format_table
from collabdnn.netem.throttle import ThrottleError, add_process, cpu_quota

CPU_S = 0.3
SPIN = (  # waits for a byte (time to join the cgroup), spins, prints the spin's wall time
    "import sys, time\nsys.stdin.read(1)\nw, t = time.perf_counter(), time.process_time()\n"
    f"while time.process_time() - t < {CPU_S}: pass\nprint(time.perf_counter() - w)\n"
)
SETTINGS = [(0.5, 100_000), (0.25, 100_000), (0.25, 10_000)]  # (cpus, period_us)


def spin_s(cgroup: Path | None = None) -> float:
    """Wall seconds the spin took, as the spinning process measured them."""
    proc = subprocess.Popen(
        [sys.executable, "-c", SPIN], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    if cgroup is not None:
        add_process(cgroup, proc.pid)
    out, _ = proc.communicate("x", timeout=60)
    return float(out)


def cpu_stat(cgroup: Path) -> dict[str, int]:
    pairs = (line.split() for line in (cgroup / "cpu.stat").read_text().splitlines())
    return {key: int(value) for key, value in pairs}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    free = [spin_s() for _ in range(args.repeats)]
    rows = [["none", "-", f"{median(free):.2f}", "1.0", "-"]]
    records: list[dict[str, object]] = [{"cpus": None, "wall_s": free, "median_s": median(free)}]
    for cpus, period in SETTINGS:
        walls, throttled = [], []
        for _ in range(args.repeats):
            try:
                with cpu_quota(cpus, period_us=period) as cgroup:
                    walls.append(spin_s(cgroup))
                    throttled.append(cpu_stat(cgroup).get("nr_throttled", 0))
            except ThrottleError as exc:
                print(f"bench_throttle: no CPU quota here: {exc}", file=sys.stderr)
                return 1
        slowdown = median(walls) / median(free)
        records.append({"cpus": cpus, "period_us": period, "wall_s": walls,
                        "median_s": median(walls), "slowdown": slowdown,
                        "nr_throttled": throttled})  # fmt: skip
        periods = median([float(n) for n in throttled])
        rows.append([f"{cpus:g}", f"{period // 1000} ms", f"{median(walls):.2f}",
                     f"{slowdown:.1f}", f"{periods:.0f}"])  # fmt: skip
    headers = ["CPU quota", "CFS period", "wall s (median)", "slowdown", "throttled periods"]
    table = (
        f"A process spinning for {CPU_S:g} s of CPU time, median of {args.repeats} runs; "
        "slowdown against the run without a quota.\n\n" + markdown_table(headers, rows)
    )
    write_results("throttle", {"cpu_s": CPU_S, "repeats": args.repeats, "records": records}, table)
    print(format_table(headers, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
