"""A hung cloud (SIGSTOP, real subprocesses): requests fall back within their budget,
the agent notices the hang while idle, and offloading resumes after SIGCONT
(:mod:`collabdnn.testbed.hung_cloud`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.mark.slow
def test_a_hung_cloud_costs_at_most_a_second_more_than_local(tmp_path: Path) -> None:
    """SIGSTOP the cloud during a stream, and again while idle; SIGCONT each time.

    Bounds are the issue's promise with wide margins for a loaded machine: no request
    over local-only latency + 1 s; the hang noticed within 15 s while idle; offloading
    back within a few seconds (the breaker's period plus one probe). The agent checks an
    idle cloud after 2 s and probes after a failure every 1 s here (defaults 5 s and
    2 s): the same paths, sooner.
    """
    from collabdnn.testbed.hung_cloud import run

    quick = ("--health-watch-s", "2", "--breaker-reset-s", "1")
    result = run(tmp_path, requests=8, agent_args=quick)
    print(json.dumps(result, indent=1))
    local_worst = result["local"]["worst_ms"]
    assert result["offloaded"]["fallbacks"] == 0, result
    busy = result["hung_busy"]
    assert busy["fallbacks"] == busy["n"], result
    assert busy["worst_ms"] < local_worst + 1000, result
    assert result["idle_noticed_s"] is not None and result["idle_noticed_s"] < 15, result
    idle = result["hung_idle"]
    assert idle["fallbacks"] == idle["n"], result
    assert idle["worst_ms"] < local_worst + 1000, result
    for key in ("resume_after_busy_s", "resume_after_idle_s"):
        assert result[key] is not None and result[key] < 6, result
