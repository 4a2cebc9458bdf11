"""The cgroup CPU quota is written and enforced on the process put under it (root only).

Checked through the cgroup's own files, not wall-clock ratios: the quota is in
``cpu.max`` (v2) or ``cpu.cfs_quota_us`` (v1), the process is a member while it runs,
the kernel's ``cpu.stat`` counts throttled periods for a process that spins past its
quota, and the cgroup is gone afterwards. How much slower a throttled process runs is
measured by ``benchmarks/bench_throttle.py``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from collabdnn.netem.throttle import (
    ThrottleError,
    add_process,
    cpu_quota,
    current_cpu_limit,
    current_quota,
)

pytestmark = pytest.mark.root

# Waits for one byte on stdin (so it can be put in the cgroup first), then spins on CPU.
SPIN = (
    "import sys, time\nsys.stdin.read(1)\n"
    "t = time.process_time()\nwhile time.process_time() - t < 0.3: pass\n"
)
PERIOD_US = 10_000


def _cpu_stat(cgroup: Path) -> dict[str, int]:
    pairs = (line.split() for line in (cgroup / "cpu.stat").read_text().splitlines())
    return {key: int(value) for key, value in pairs}


def _quota(cgroup: Path) -> tuple[int, int]:
    if (cgroup / "cpu.max").is_file():  # cgroup v2: "QUOTA PERIOD"
        quota, period = (cgroup / "cpu.max").read_text().split()
        return int(quota), int(period)
    quota = (cgroup / "cpu.cfs_quota_us").read_text()
    return int(quota), int((cgroup / "cpu.cfs_period_us").read_text())


def test_quarter_cpu_quota_is_written_and_throttles_the_process() -> None:
    try:
        with cpu_quota(0.25, period_us=PERIOD_US) as cgroup:
            assert _quota(cgroup) == (PERIOD_US // 4, PERIOD_US)
            proc = subprocess.Popen([sys.executable, "-c", SPIN], stdin=subprocess.PIPE)
            try:
                add_process(cgroup, proc.pid)
                assert str(proc.pid) in (cgroup / "cgroup.procs").read_text().split()
                assert current_quota(proc.pid) == 0.25  # what a profile records
                assert current_cpu_limit(proc.pid) == (0.25, PERIOD_US / 1000)
                proc.communicate(b"x", timeout=60)  # a bound that only stops a hung test
            finally:
                proc.kill()
                proc.wait()
            assert proc.returncode == 0
            stat = _cpu_stat(cgroup)
    except ThrottleError as exc:
        pytest.skip(f"no cgroup CPU controller: {exc}")
    # 0.3 s of CPU against 2.5 ms per 10 ms period: the kernel held it back many times.
    assert stat["nr_throttled"] > 0, stat
    assert stat.get("throttled_usec", stat.get("throttled_time", 0)) > 0, stat
    assert not cgroup.exists(), "the cgroup is removed on exit"
