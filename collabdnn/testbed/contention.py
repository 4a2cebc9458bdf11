"""Scenario: CPU contention on an unshaped loopback must not read as a bad link.

Cloud, agent and scheduler start on 127.0.0.1 (nothing shaped: the link is as fast as
this machine's loopback). The agent's link estimate is read from its Info while idle
(``before``), then ``concurrency`` clients send ``requests`` classifications in all
(placement ``cloud``: every one is an Execute call with the whole photo, the largest
upload there is) while the estimate is polled (``under``: its minimum and median), and
again after an idle spell (``after``). The CPUs are saturated meanwhile (both sides
share them), so every call takes long for reasons that are not the link's: an
estimator that reads wall time as airtime sees a slow link. The scheduler's log is
searched for plan switches (INFO ``plan A -> B``) during the run.

Needs no root: ``python -m collabdnn.testbed.contention`` prints the JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_SWITCH = re.compile(r" INFO .*plan \S+ -> \S+ \(")


def _lines(path: Path | None) -> list[str]:
    return path.read_text(errors="replace").splitlines() if path and path.exists() else []


def _estimate(agent: str) -> dict[str, Any] | None:
    from collabdnn.testbed.idle_drop import stack_estimate

    return stack_estimate(agent)


def _poll(agent: str, stop: threading.Event, samples: list[dict[str, Any]]) -> None:
    while not stop.wait(0.25):
        try:
            estimate = _estimate(agent)
        except Exception as exc:  # a poll that times out under load is not fatal
            log.debug("estimate poll failed: %r", exc)
            continue
        if estimate is not None:
            samples.append(estimate)


def _summary(samples: list[dict[str, Any]]) -> dict[str, Any]:
    ups = [s["up_mbps"] for s in samples]
    downs = [s["down_mbps"] for s in samples]
    if not ups:
        return {"samples": 0}
    return {
        "samples": len(ups),
        "up_min": min(ups),
        "up_median": statistics.median(ups),
        "down_min": min(downs),
        "down_median": statistics.median(downs),
    }


def run_scenario(
    concurrency: int = 16,
    requests: int = 64,
    idle_s: float = 8.0,
    with_scheduler: bool = True,
    slowdown: float = 4.0,
    log_dir: Path | None = None,
) -> dict[str, Any]:
    """Run the scenario on 127.0.0.1 (see the module doc)."""
    from collabdnn.placement import Placement
    from collabdnn.testbed.stack import SAMPLE_PHOTO, SEEDED_ALEXNET, Stack
    from mobile_agent.client import classify

    image_path = SAMPLE_PHOTO
    image = image_path.read_bytes()
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="collabdnn-contention-"))
    common = list(SEEDED_ALEXNET)
    stack = Stack(
        common, log_dir=log_dir, with_scheduler=with_scheduler,
        scheduler_args=["--mobile-slowdown", str(slowdown), "--images", str(image_path),
                        "--profile-repeats", "3"],
    )  # fmt: skip
    with stack:
        assert stack.agent is not None
        agent = stack.agent.address
        if with_scheduler:
            stack.wait_agent_plan(lambda spec, plan: plan.source == "scheduler", timeout=90.0)
        cloud = Placement.parse("cloud")
        classify(agent, [image], cloud, timeout=60.0)  # warm the connection
        time.sleep(idle_s)  # probes measure the idle link
        before = _estimate(agent)
        samples: list[dict[str, Any]] = []
        stop = threading.Event()
        poller = threading.Thread(target=_poll, args=(agent, stop, samples), daemon=True)
        latencies: list[float] = []
        fallbacks = 0

        def one(_: int) -> None:
            nonlocal fallbacks
            (result,) = classify(agent, [image], cloud, timeout=120.0)
            latencies.append(result.latency_ms)
            fallbacks += int(result.fallback)

        assert stack.scheduler is None or stack.scheduler.log_path is not None
        skip = len(_lines(stack.scheduler.log_path)) if stack.scheduler else 0
        begin = time.monotonic()
        poller.start()
        try:
            with ThreadPoolExecutor(concurrency) as pool:
                list(pool.map(one, range(requests)))
        finally:
            stop.set()
            poller.join(timeout=10)
        under_s = time.monotonic() - begin
        last = _estimate(agent)
        time.sleep(idle_s)
        after = _estimate(agent)
        lines = _lines(stack.scheduler.log_path)[skip:] if stack.scheduler else []
    switches = [line for line in lines if _SWITCH.search(line)]
    link_switches = [line for line in switches if "(link changed" in line]
    return {
        "concurrency": concurrency,
        "requests": requests,
        "under_s": round(under_s, 2),
        "latency_median_ms": round(statistics.median(latencies), 1) if latencies else None,
        "fallbacks": fallbacks,
        "before": before,
        "under": _summary(samples + ([last] if last else [])),
        "after": after,
        # INFO "plan A -> B" lines from the contention's start to the end of "after":
        # those the link estimate caused, and all (the cloud's load also re-plans)
        "link_switches": len(link_switches),
        "plan_switches": len(switches),
        "switch_lines": switches[-10:],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m collabdnn.testbed.contention", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--idle-s", type=float, default=8.0)
    parser.add_argument("--log-dir", type=Path, default=None, help="keep the services' logs")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    result = run_scenario(args.concurrency, args.requests, args.idle_s, log_dir=args.log_dir)
    json.dump(result, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
