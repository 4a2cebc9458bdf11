"""The cgroup CPU quota really slows a process (root only)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from collabdnn.netem.throttle import ThrottleError, add_process, cpu_quota

SPIN = "import time\nt=time.process_time()\nwhile time.process_time()-t<0.3: pass\n"


def _wall(cgroup=None) -> float:
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read(1)\n" + SPIN], stdin=subprocess.PIPE
    )
    if cgroup is not None:
        add_process(cgroup, proc.pid)
    begin = time.perf_counter()
    proc.communicate(b"x", timeout=30)
    return time.perf_counter() - begin


def test_quarter_cpu_takes_about_four_times_longer():
    if os.geteuid() != 0:
        pytest.skip("a CPU quota needs root (cgroups)")
    try:
        with cpu_quota(0.25) as cgroup:
            throttled = _wall(cgroup)
    except ThrottleError as exc:
        pytest.skip(f"no cgroup CPU controller: {exc}")
    free = _wall()
    assert throttled > 2.0 * free, (throttled, free)
