"""Scenario: the real link drops while requests flow; how soon is the agent re-planned?

Inside a private network namespace (root, tc): the loopback is shaped to ``start``
Mbit/s, cloud + agent + scheduler start there (the scheduler plans for a phone
``slowdown`` times slower than this machine, so that the fast link is worth using), the
agent gets a plan that uses the cloud, and a client classifies in a loop. Then
``collabdnn link set --up-mbps END --down-mbps END --rtt-ms 0`` changes the link, and the
scenario measures the time until the agent holds a more mobile-heavy plan, while
checking that every classification issued meanwhile succeeded.

``python -m collabdnn.testbed.linkswitch`` runs the scenario where it is (inside a namespace);
:func:`measure_in_namespace` creates the namespace, runs it there and returns its JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from collabdnn.placement import spec_of

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
CLOUD_PORT = 50051


def _classify_loop(
    agent: str, image: bytes, stop: threading.Event, records: list[dict[str, Any]], clock0: float
) -> None:
    from mobile_agent.client import classify

    while not stop.is_set():
        issued = time.monotonic() - clock0
        try:
            (result,) = classify(agent, [image], timeout=60.0)
        except Exception as exc:  # every failure is recorded: the scenario counts them
            records.append({"issued_s": issued, "ok": False, "error": repr(exc)[:300]})
            continue
        records.append(
            {
                "issued_s": issued,
                "done_s": time.monotonic() - clock0,
                "ok": True,
                "spec": spec_of(result.placement),
                "latency_ms": result.latency_ms,
                "fallback": result.fallback,
            }
        )


def run_scenario(
    start_mbps: float = 50.0,
    end_mbps: float = 1.0,
    slowdown: float = 10.0,
    settle_s: float = 2.0,
    after_s: float = 2.0,
    timeout_s: float = 30.0,
    log_dir: Path | None = None,
) -> dict[str, Any]:
    """Run the scenario in the current network namespace (see the module doc)."""
    from collabdnn.netem import shaping
    from collabdnn.planning.link import Link
    from collabdnn.testbed.stack import SAMPLE_PHOTO, SEEDED_ALEXNET, Stack

    image = SAMPLE_PHOTO.read_bytes()
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="collabdnn-linkswitch-"))
    applied = shaping.apply(Link(start_mbps, start_mbps, 0.0), cloud_port=CLOUD_PORT)
    common = list(SEEDED_ALEXNET)
    stack = Stack(
        common, cloud_port=CLOUD_PORT, log_dir=log_dir,
        agent_args=["--probe-idle-s", "0.5"],
        scheduler_args=["--mobile-slowdown", str(slowdown), "--up-mbps", str(start_mbps),
                        "--down-mbps", str(start_mbps), "--rtt-ms", "1",
                        "--images", str(SAMPLE_PHOTO),
                        "--profile-repeats", "3"],
    )  # fmt: skip
    records: list[dict[str, Any]] = []
    stop = threading.Event()
    with stack:
        assert stack.agent is not None
        before, _ = stack.wait_agent_plan(
            lambda spec, plan: plan.source == "scheduler" and "C" in spec, timeout=60.0
        )
        clock0 = time.monotonic()
        worker = threading.Thread(
            target=_classify_loop, args=(stack.agent.address, image, stop, records, clock0)
        )
        worker.start()
        try:
            time.sleep(settle_s)
            begin = time.monotonic()
            done = subprocess.run(
                [sys.executable, "-m", "collabdnn", "link", "set", "--up-mbps", str(end_mbps),
                 "--down-mbps", str(end_mbps), "--rtt-ms", "0", "--cloud-port",
                 str(CLOUD_PORT)], capture_output=True, text=True, timeout=60,
                env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
            changed = time.monotonic()
            if done.returncode != 0:
                raise RuntimeError(f"link set failed: {done.stderr[-2000:]}")
            after, waited = stack.wait_agent_plan(
                lambda spec, plan: spec.count("M") > before.count("M"), timeout=timeout_s
            )
            switched = changed + waited
            time.sleep(after_s)
        finally:
            stop.set()
            worker.join(timeout=120)
        scheduler_log = stack.scheduler.log_tail(40) if stack.scheduler else ""
        agent_log = stack.agent.log_tail(40)
    change_s = changed - clock0
    during = [r for r in records if r["issued_s"] >= change_s - 5.0]
    return {
        "start_mbps": start_mbps, "end_mbps": end_mbps, "mobile_slowdown": slowdown,
        "delay_shaped": applied.delay_shaped,
        "plan_before": before, "plan_after": after,
        "link_set_s": changed - begin,
        "switch_s": switched - changed,
        "requests": len(records),
        "failures": [r for r in records if not r["ok"]],
        "requests_around_change": len(during),
        "records": records,
        "scheduler_log": scheduler_log.splitlines()[-15:],
        "agent_log": agent_log.splitlines()[-15:],
    }  # fmt: skip


def measure_in_namespace(timeout: float = 240.0, **kwargs: Any) -> dict[str, Any]:
    """Create a private namespace, run the scenario inside, return its JSON (root only)."""
    from collabdnn.netem.netns import NetNamespace

    argv = [sys.executable, "-m", "collabdnn.testbed.linkswitch"]
    for key, value in kwargs.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with NetNamespace(prefix="collabdnn-switch") as ns:
        done = ns.run(argv, timeout=timeout, env=env)
    if done.returncode != 0:
        raise RuntimeError(
            f"link-switch scenario failed ({done.returncode}):\n{done.stderr[-4000:]}"
        )
    return json.loads(done.stdout)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m collabdnn.testbed.linkswitch", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--start-mbps", type=float, default=50.0)
    parser.add_argument("--end-mbps", type=float, default=1.0)
    parser.add_argument("--slowdown", type=float, default=10.0)
    parser.add_argument("--settle-s", type=float, default=2.0)
    parser.add_argument("--after-s", type=float, default=2.0)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    result = run_scenario(
        args.start_mbps, args.end_mbps, args.slowdown, args.settle_s, args.after_s
    )
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
