"""CLI start-up: wall time of the thin clients' commands, and whether they load torch.

Each command runs as a fresh ``python -m collabdnn ...`` process (what a user types),
next to a bare interpreter and ``import torch`` for scale. The tests check that the thin
clients (``classify``, ``health``) import no torch; this measures what that buys.
Writes benchmarks/results/startup.{json,md}.

    python -m benchmarks.bench_startup [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import markdown_table, median, write_results
from collabdnn.cli.output import format_table

REPO = Path(__file__).resolve().parent.parent
COMMANDS = {  # name: the interpreter's arguments
    "python -c pass": "-c pass",
    "python -c 'import torch'": "-c 'import torch'",
    "collabdnn classify --help": "-m collabdnn classify --help",
    "collabdnn health --help": "-m collabdnn health --help",
    "collabdnn health (unreachable)": "-m collabdnn health --insecure 127.0.0.1:1 --timeout 1",
    "collabdnn summary alexnet": "-m collabdnn summary alexnet",
}


def run(args: list[str], importtime: bool = False) -> tuple[float, str]:
    argv = [sys.executable, *(["-X", "importtime"] if importtime else []), *args]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    begin = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=REPO, env=env)
    return time.perf_counter() - begin, done.stderr


def loads_torch(args: list[str]) -> bool:
    _, stderr = run(args, importtime=True)
    return any(
        line.startswith("import time:") and line.rsplit("|", 1)[1].strip().split(".")[0] == "torch"
        for line in stderr.splitlines()
        if "|" in line
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rows, records = [], []
    for name, command in COMMANDS.items():
        argv = shlex.split(command)
        run(argv)  # warm the page cache
        seconds = [run(argv)[0] for _ in range(args.repeats)]
        torch = loads_torch(argv)
        records.append({"command": name, "seconds": seconds, "median_s": median(seconds),
                        "loads_torch": torch})  # fmt: skip
        rows.append(
            [name, f"{median(seconds):.2f}", f"{min(seconds):.2f}", "yes" if torch else "no"]
        )
    headers = ["command", "median s", "min s", "loads torch"]
    table = (
        f"Wall time of a fresh process, median and min of {args.repeats} after one warm-up "
        "run.\n\n" + markdown_table(headers, rows)
    )
    write_results("startup", {"repeats": args.repeats, "records": records}, table)
    print(format_table(headers, rows))


if __name__ == "__main__":
    main()
