"""A hung cloud, for real: SIGSTOP the cloud server's process and see what requests cost.

A stopped process is the nasty case of a failing cloud: its kernel still accepts TCP
connections and acknowledges bytes, so nothing is refused or reset, and only deadlines
(or pings that go unanswered) tell. :func:`run` starts a cloud and an agent as
subprocesses and measures, against local-only latency:

1. *hung while busy*: the cloud is stopped just before a stream of requests; each
   request must fall back within its call budget, the following ones at local speed;
2. *hung while idle*: the cloud is stopped while no request flows; how long until the
   agent's health watch notices (its ``cloud_state`` turns ``unreachable``), and what
   the next request costs;
3. after each, SIGCONT: how long until requests offload again.

Used by ``tests/test_never_worse.py`` and ``benchmarks/bench_hung_cloud.py``.
"""

from __future__ import annotations

import os
import signal
import statistics
import time
from pathlib import Path
from typing import Any

from collabdnn.placement import Placement
from collabdnn.testbed.procs import Service, start_healthy

PLACEMENT = "MMMCCCCCCMMM"  # a cloud-using split: a small activation goes up
COMMON = ["--model", "alexnet", "--weights", "seed:0", "--threads", "1"]


def _classify(agent: Service, image: bytes, placement: str | None = None) -> tuple[float, bool]:
    """One classification through the agent; (latency ms seen by the client, fallback)."""
    from mobile_agent.client import classify

    spec = Placement.parse(placement) if placement else None
    begin = time.perf_counter()
    [result] = classify(agent.address, [image], spec, timeout=120)
    return (time.perf_counter() - begin) * 1e3, result.fallback


def _cloud_state(agent: Service) -> str:
    from collabdnn.transport.channels import open_channel
    from collabdnn.wire.stubs import AgentStub

    with open_channel(agent.address) as channel:
        return AgentStub(channel).info(timeout=10).cloud_state


def _resume_s(agent: Service, image: bytes, limit_s: float) -> float | None:
    """Seconds until a request offloads again (requests every 50 ms), None if never."""
    begin = time.monotonic()
    while time.monotonic() - begin < limit_s:
        _, fallback = _classify(agent, image)
        if not fallback:
            return time.monotonic() - begin
        time.sleep(0.05)
    return None


def _summary(latencies: list[float]) -> dict[str, float]:
    return {
        "median_ms": statistics.median(latencies),
        "worst_ms": max(latencies),
        "n": len(latencies),
    }


def run(
    log_dir: Path, requests: int = 20, agent_args: tuple[str, ...] = (), idle_limit_s: float = 30.0
) -> dict[str, Any]:
    """The whole scenario; returns its figures (latencies in ms, times in s)."""
    image = (Path(__file__).resolve().parents[2] / "samples" / "chelsea.png").read_bytes()
    cloud = start_healthy("cloud", COMMON, log_dir=log_dir)
    assert cloud.pid is not None
    agent: Service | None = None
    try:
        agent = start_healthy(
            "mobile",
            [*COMMON, "--cloud", cloud.address, "--placement", PLACEMENT, *agent_args],
            log_dir=log_dir,
        )
        for _ in range(3):  # warm both sides up
            _classify(agent, image, "mobile")
            _classify(agent, image)
        local = [_classify(agent, image, "mobile")[0] for _ in range(requests)]
        offloaded = [_classify(agent, image) for _ in range(requests)]

        # 1. hung while busy
        os.kill(cloud.pid, signal.SIGSTOP)
        busy = [_classify(agent, image) for _ in range(requests)]
        os.kill(cloud.pid, signal.SIGCONT)
        resume_busy = _resume_s(agent, image, 30.0)

        # 2. hung while idle
        for _ in range(3):
            _classify(agent, image)
        os.kill(cloud.pid, signal.SIGSTOP)
        stopped = time.monotonic()
        noticed_s = None
        while time.monotonic() - stopped < idle_limit_s:
            if _cloud_state(agent) == "unreachable":
                noticed_s = time.monotonic() - stopped
                break
            time.sleep(0.2)
        after_idle = [_classify(agent, image) for _ in range(requests)]
        os.kill(cloud.pid, signal.SIGCONT)
        resume_idle = _resume_s(agent, image, 30.0)
        return {
            "placement": PLACEMENT,
            "requests": requests,
            "local": _summary(local),
            "offloaded": {
                **_summary([ms for ms, _ in offloaded]),
                "fallbacks": sum(f for _, f in offloaded),
            },
            "hung_busy": {
                **_summary([ms for ms, _ in busy]),
                "first_ms": busy[0][0],
                "fallbacks": sum(f for _, f in busy),
            },
            "resume_after_busy_s": resume_busy,
            "idle_noticed_s": noticed_s,
            "hung_idle": {
                **_summary([ms for ms, _ in after_idle]),
                "first_ms": after_idle[0][0],
                "fallbacks": sum(f for _, f in after_idle),
            },
            "resume_after_idle_s": resume_idle,
        }
    finally:
        os.kill(cloud.pid, signal.SIGCONT)
        if agent is not None:
            agent.stop()
        cloud.stop()
