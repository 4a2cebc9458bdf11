"""A link that drops while the stack is idle re-plans within 10 s (root only).

Inside a private namespace with tc: at 100 Mbit/s the scheduler's plan uses the cloud;
the agent classifies once and then idles, so only its link probes use the link. After
``collabdnn link set --up-mbps 1 --down-mbps 1`` the scheduler's plan must turn more
mobile-heavy within 10 s, from what the probes alone showed, and the first
classification after that must take at most 1.2 times the new plan's predicted
latency, without falling back (it does not wait behind probes sized for the old link).
Detection times over several drops are measured by ``benchmarks/bench_idle_drop.py``.
See :mod:`collabdnn.testbed.idle_drop`.
"""

from __future__ import annotations

import json

import pytest

from collabdnn.netem.netns import netns_available

AVAILABLE, REASON = netns_available()
pytestmark = [
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.skipif(not AVAILABLE, reason=f"real link shaping unavailable: {REASON}"),
]


def test_an_idle_link_drop_changes_the_plan_within_10_s() -> None:
    from collabdnn.testbed.idle_drop import measure_in_namespace

    # 8 s idle (the scenario's default 15 s): the agent probes after each idle second,
    # and its probes are at full size for the fast link after a few rounds
    result = measure_in_namespace(idle_s=8.0)
    (run,) = result["runs"]
    context = json.dumps({**run, "agent_log": result["agent_log"]}, indent=1)
    assert "C" in run["plan_before"], context
    assert run["plan_at_drop"] == run["plan_before"], "a false alarm before the drop"
    assert run["plan_after"].count("M") > run["plan_before"].count("M"), context
    print(
        f"plan {run['plan_before']} -> {run['plan_after']} {run['detect_s']:.2f} s after the drop"
    )
    assert run["detect_s"] <= 10.0, context
    estimate = run["estimate_after"]
    assert estimate["up_mbps"] < 5.0 and estimate["down_mbps"] < 5.0, context
    first = run["first"]
    assert first["spec"] == run["plan_after"] and not first["fallback"], context
    assert first["latency_ms"] <= 1.2 * run["predicted_after_ms"], context
