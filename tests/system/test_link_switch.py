"""A real link that drops under load re-plans the agent in seconds (root only).

Inside a private namespace with tc: at 50 Mbit/s the scheduler's plan uses the cloud;
after ``collabdnn link set --up-mbps 1 --down-mbps 1 --rtt-ms 0`` the agent must hold a
more mobile-heavy plan within 10 s, and every classification issued meanwhile must be
answered: the first calls on the slow link spend their call budget and finish on the
phone (``fallback``), which is the runtime keeping its promise, not a failure. How fast
the switch is gets measured by ``benchmarks/bench_linkswitch.py``.
See :mod:`collabdnn.testbed.linkswitch`.
"""

from __future__ import annotations

import pytest

from collabdnn.netem.netns import netns_available

AVAILABLE, REASON = netns_available()
pytestmark = [
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.skipif(not AVAILABLE, reason=f"real link shaping unavailable: {REASON}"),
]


def test_link_drop_moves_the_agent_to_a_more_mobile_plan() -> None:
    from collabdnn.testbed.linkswitch import measure_in_namespace

    result = measure_in_namespace()
    before, after = result["plan_before"], result["plan_after"]
    assert "C" in before, result["scheduler_log"]
    assert after.count("M") > before.count("M")
    print(f"plan {before} -> {after} in {result['switch_s']:.2f} s after the link change")
    assert result["switch_s"] <= 10.0, (result["switch_s"], result["agent_log"])
    assert not result["failures"], result["failures"]
    assert result["requests_around_change"] >= 3
