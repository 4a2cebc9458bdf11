"""Scenario: the real link drops while the stack is idle; how soon is the plan changed?

Inside a private network namespace (root, tc): the loopback is shaped to ``start``
Mbit/s, cloud + agent + scheduler start there (the scheduler plans for a phone
``slowdown`` times slower than this machine, so that the cloud wins on the fast link and
the phone on the slow one), the agent gets a plan that uses the cloud, one
classification warms the connection, and then nothing is classified: only the agent's
link probes use the link. After ``idle_s`` (long enough for the probes to have grown to
full size for the fast link) ``collabdnn link set`` drops the rate to ``end`` Mbit/s.
The scenario measures

* ``detect_s``: from the drop until the *scheduler's* plan is more mobile-heavy (its
  estimate came from probes alone: no classification traffic meanwhile), and
  ``agent_s`` until the agent holds that plan;
* the first classification after that: its latency against the new plan's predicted
  latency (the scheduler's), whether it fell back, and where its units ran;
* the agent's link estimate over time (polled from its Info), to show when it moved.

With ``drops`` > 1 the link is restored to ``start`` after each drop, the scenario waits
for the plan to use the cloud again, idles, and drops again (one stack, several drops).

``python -m collabdnn.testbed.idle_drop`` runs the scenario where it is (inside a
namespace); :func:`measure_in_namespace` creates the namespace, runs it there and
returns its JSON.
"""

from __future__ import annotations

import argparse
import functools
import itertools
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
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collabdnn.placement import AssignedPlan

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
CLOUD_PORT = 50051


def _link_set(mbps: float) -> float:
    """``collabdnn link set`` to ``mbps`` both ways (no RTT: no netem here); returns when
    the command finished (monotonic)."""
    done = subprocess.run(
        [sys.executable, "-m", "collabdnn", "link", "set", "--up-mbps", str(mbps),
         "--down-mbps", str(mbps), "--rtt-ms", "0", "--cloud-port", str(CLOUD_PORT)],
        capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"link set failed: {done.stderr[-2000:]}")
    return time.monotonic()


class _EstimatePoller:
    """Polls the agent's Info (its link estimate) and the scheduler's plan in a thread."""

    def __init__(self, agent: str, scheduler: str, clock0: float, period_s: float = 0.25):
        self.agent, self.scheduler, self.clock0 = agent, scheduler, clock0
        self.period_s = period_s
        self.samples: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="estimate-poller", daemon=True)

    def __enter__(self) -> _EstimatePoller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        from collabdnn.transport.channels import open_channel
        from collabdnn.wire.stubs import AgentStub, SchedulerStub

        with open_channel(self.agent) as a, open_channel(self.scheduler) as s:
            agent, scheduler = AgentStub(a), SchedulerStub(s)
            while not self._stop.wait(self.period_s):
                sample: dict[str, Any] = {"t": round(time.monotonic() - self.clock0, 3)}
                try:
                    info = agent.info(timeout=2.0)
                    if info.link is not None:
                        link = info.link.link
                        sample.update(
                            up_mbps=round(link.up_mbps, 3),
                            down_mbps=round(link.down_mbps, 3),
                            rtt_ms=round(link.rtt_ms, 2),
                            observations=info.link.observations,
                        )
                    plan = scheduler.get_plan(timeout=2.0)
                    sample["scheduler_plan"] = plan.plan.spec
                except Exception as exc:  # a slow poll is recorded, not fatal
                    sample["error"] = repr(exc)[:200]
                self.samples.append(sample)


def _scheduler_plan(address: str) -> Any:
    from collabdnn.transport.channels import open_channel
    from collabdnn.wire.stubs import SchedulerStub

    with open_channel(address) as channel:
        return SchedulerStub(channel).get_plan(timeout=5.0)


def _wait_scheduler(address: str, accept: Any, timeout: float, poll_s: float = 0.05) -> Any:
    """Poll the scheduler's plan until ``accept(spec)``; returns (plan, monotonic time)."""
    deadline = time.monotonic() + timeout
    spec = ""
    while time.monotonic() < deadline:
        snap = _scheduler_plan(address)
        spec = snap.plan.spec
        if accept(spec):
            return snap, time.monotonic()
        time.sleep(poll_s)
    raise TimeoutError(f"the scheduler's plan is still {spec!r} after {timeout:.0f} s")


def _offloading(spec: str, plan: AssignedPlan, want: str) -> bool:
    """The scheduler's plan, using the cloud (and ``want``, when given)."""
    return plan.source == "scheduler" and "C" in spec and (not want or spec == want)


def _is(spec: str, plan: AssignedPlan, want: str) -> bool:
    return spec == want


def _classify(agent: str, image: bytes) -> dict[str, Any]:
    from collabdnn.placement import spec_of
    from mobile_agent.client import classify

    begin = time.monotonic()
    (result,) = classify(agent, [image], timeout=60.0)
    return {
        "spec": spec_of(result.placement),
        "latency_ms": round(result.latency_ms, 2),
        "client_ms": round((time.monotonic() - begin) * 1e3, 2),
        "fallback": result.fallback,
        "bytes_up": result.bytes_up,
    }


def run_scenario(
    start_mbps: float = 100.0,
    end_mbps: float = 1.0,
    slowdown: float = 4.0,
    idle_s: float = 15.0,
    timeout_s: float = 30.0,
    drops: int = 1,
    log_dir: Path | None = None,
) -> dict[str, Any]:
    """Run the scenario in the current network namespace (see the module doc)."""
    from collabdnn.netem import shaping
    from collabdnn.planning.link import Link
    from collabdnn.testbed.stack import SAMPLE_PHOTO, SEEDED_ALEXNET, Stack

    image_path = SAMPLE_PHOTO
    image = image_path.read_bytes()
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="collabdnn-idledrop-"))
    applied = shaping.apply(Link(start_mbps, start_mbps, 0.0), cloud_port=CLOUD_PORT)
    common = list(SEEDED_ALEXNET)
    stack = Stack(
        common, cloud_port=CLOUD_PORT, log_dir=log_dir,
        scheduler_args=["--mobile-slowdown", str(slowdown), "--up-mbps", str(start_mbps),
                        "--down-mbps", str(start_mbps), "--rtt-ms", "1",
                        "--images", str(image_path), "--profile-repeats", "3"],
    )  # fmt: skip
    runs: list[dict[str, Any]] = []
    with stack:
        assert stack.agent is not None and stack.scheduler is not None
        agent, scheduler = stack.agent.address, stack.scheduler.address
        clock0 = time.monotonic()
        with _EstimatePoller(agent, scheduler, clock0) as poller:
            first_plan = ""
            for drop in range(drops):
                before, _ = stack.wait_agent_plan(
                    functools.partial(_offloading, want=first_plan), timeout=90.0
                )
                first_plan = first_plan or before
                warm = _classify(agent, image)  # the last traffic before the idle spell
                idle_from = time.monotonic() - clock0
                time.sleep(idle_s)
                before_estimate = stack_estimate(agent)
                at_drop = _scheduler_plan(scheduler)
                dropped = _link_set(end_mbps)
                snap, detected = _wait_scheduler(
                    scheduler, lambda spec, b=before: spec.count("M") > b.count("M"), timeout_s
                )
                _, agent_waited = stack.wait_agent_plan(
                    functools.partial(_is, want=snap.plan.spec), timeout=timeout_s
                )
                after_estimate = stack_estimate(agent)
                first = _classify(agent, image)
                moved = [
                    s["t"]
                    for s in poller.samples
                    if s["t"] >= dropped - clock0
                    and min(s.get("up_mbps", start_mbps), s.get("down_mbps", start_mbps))
                    < start_mbps / 4
                ]
                idle_specs = [
                    s.get("scheduler_plan")
                    for s in poller.samples
                    if idle_from <= s["t"] <= dropped - clock0 and s.get("scheduler_plan")
                ]
                runs.append(
                    {
                        "drop": drop + 1,
                        "dropped_at_s": round(dropped - clock0, 3),
                        "plan_before": before,
                        "plan_at_drop": at_drop.plan.spec,
                        # plan changes the scheduler made while idle on the fast link
                        "idle_switches": sum(a != b for a, b in itertools.pairwise(idle_specs)),
                        "predicted_before_ms": round(at_drop.plan.latency_ms, 2),
                        "warm": warm,
                        "estimate_before": before_estimate,
                        "plan_after": snap.plan.spec,
                        "predicted_after_ms": round(snap.plan.latency_ms, 2),
                        # the agent's estimate read below a quarter of the fast link
                        # (polled every 0.25 s), the scheduler's plan changed, the
                        # agent holds the new plan
                        # (at most detect_s: the report that changed the plan came from it)
                        "estimate_s": round(
                            min(moved[0] - (dropped - clock0), detected - dropped)
                            if moved
                            else detected - dropped,
                            3,
                        ),
                        "detect_s": round(detected - dropped, 3),
                        "agent_s": round(detected - dropped + agent_waited, 3),
                        "estimate_after": after_estimate,
                        "first": first,
                        "first_ratio": round(first["latency_ms"] / snap.plan.latency_ms, 3),
                        "first_client_ratio": round(first["client_ms"] / snap.plan.latency_ms, 3),
                    }
                )
                if drop + 1 < drops:  # back to the fast link; the plan returns to the cloud
                    _link_set(start_mbps)
        samples = poller.samples
        scheduler_log = stack.scheduler.log_tail(60)
        agent_log = stack.agent.log_tail(60)
    return {
        "start_mbps": start_mbps, "end_mbps": end_mbps, "mobile_slowdown": slowdown,
        "idle_s": idle_s, "delay_shaped": applied.delay_shaped, "runs": runs,
        "estimates": samples,
        "scheduler_log": scheduler_log.splitlines()[-30:],
        "agent_log": agent_log.splitlines()[-30:],
    }  # fmt: skip


def stack_estimate(agent: str) -> dict[str, Any] | None:
    """The agent's link estimate now (from its Info)."""
    from collabdnn.transport.channels import open_channel
    from collabdnn.wire.stubs import AgentStub

    with open_channel(agent) as channel:
        info = AgentStub(channel).info(timeout=5.0)
    if info.link is None:
        return None
    link = info.link.link
    return {
        "up_mbps": round(link.up_mbps, 3),
        "down_mbps": round(link.down_mbps, 3),
        "rtt_ms": round(link.rtt_ms, 2),
        "observations": info.link.observations,
    }


def measure_in_namespace(timeout: float = 400.0, **kwargs: Any) -> dict[str, Any]:
    """Create a private namespace, run the scenario inside, return its JSON (root only)."""
    from collabdnn.netem.netns import NetNamespace

    argv = [sys.executable, "-m", "collabdnn.testbed.idle_drop"]
    for key, value in kwargs.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with NetNamespace(prefix="collabdnn-idle") as ns:
        done = ns.run(argv, timeout=timeout, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"idle-drop scenario failed ({done.returncode}):\n{done.stderr[-6000:]}")
    return json.loads(done.stdout)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m collabdnn.testbed.idle_drop", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--start-mbps", type=float, default=100.0)
    parser.add_argument("--end-mbps", type=float, default=1.0)
    parser.add_argument("--slowdown", type=float, default=4.0)
    parser.add_argument("--idle-s", type=float, default=15.0)
    parser.add_argument("--timeout-s", type=float, default=30.0)
    parser.add_argument("--drops", type=int, default=1)
    parser.add_argument("--log-dir", type=Path, default=None, help="keep the services' logs")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    result = run_scenario(
        args.start_mbps,
        args.end_mbps,
        args.slowdown,
        args.idle_s,
        args.timeout_s,
        args.drops,
        args.log_dir,
    )
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
