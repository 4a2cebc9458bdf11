"""Fleet mode end to end: three real agents heart-beat to one scheduler next to the
session's cloud; each gets its own plan pushed; a killed agent is forgotten; a
restarted scheduler rebuilds its view from the heartbeats and, when the cloud's own
Capacity says the agents' offloaded work would saturate it, moves work back to the
phones.

Intervals are short (heartbeat 0.3 s, timeout 2 s, capacity poll 0.5 s) so the module
runs in seconds. The mobile profile is the session agent's made 10x slower (see
test_scheduler.py: on one machine nothing is worth offloading otherwise).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from collabdnn.measure.profile_service import ProfileSettings, fetch_profile
from collabdnn.placement import Side
from collabdnn.planning.link import Link, LinkEstimate
from collabdnn.planning.profiles import save_profile, slower_profile
from collabdnn.services import AgentHeartbeat, FleetView, LinkReport, ProfileSummary
from collabdnn.testbed.procs import Service, start_healthy
from collabdnn.testbed.stack import free_port
from collabdnn.transport.channels import open_channel
from collabdnn.wire.stubs import AgentStub, SchedulerStub
from tests.common import COMMON, REPO, SAMPLES, stop_cleanly

FAST = ProfileSettings(repeats=2, warmup=1)
AGENTS = ("phone-0", "phone-1", "phone-2")
pytestmark = pytest.mark.slow  # three agents load their models: ~15 s on 2 cores

TIMING = ["--heartbeat-s", "0.3", "--agent-timeout-s", "2", "--capacity-poll-s", "0.5"]


class Fleet:
    """The scheduler (restartable on its port) and the three agents."""

    def __init__(self, folder: Path, cloud: Service) -> None:
        self.folder, self.cloud, self.port = folder, cloud, free_port()
        self.scheduler: Service | None = None
        self.agents: dict[str, Service] = {}

    def start_scheduler(self, *extra: str) -> Service:
        self.scheduler = start_healthy(
            "scheduler",
            ["--cloud", self.cloud.address, "--port", str(self.port), *TIMING,
             "--mobile-profile", str(self.folder / "mobile.json"),
             "--cloud-profile", str(self.folder / "cloud.json"), *extra],
            log_dir=self.folder,
        )  # fmt: skip
        return self.scheduler

    def view(self) -> FleetView:
        assert self.scheduler is not None
        with open_channel(self.scheduler.address) as channel:
            return SchedulerStub(channel).get_fleet(timeout=5)

    def wait(self, accept: Callable[[FleetView], bool], timeout: float = 30.0) -> FleetView:
        deadline = time.monotonic() + timeout
        while True:
            view = self.view()
            if accept(view):
                return view
            assert time.monotonic() < deadline, f"fleet never got there: {view.to_dict()}"
            time.sleep(0.1)


@pytest.fixture(scope="module")
def fleet(
    cloud: Service, agent: Service, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fleet]:
    folder = tmp_path_factory.mktemp("fleet")
    photo = [(SAMPLES / "chelsea.png").read_bytes()]
    with open_channel(agent.address) as channel:
        mobile = fetch_profile(channel, "mobile", photo, FAST)
    with open_channel(cloud.address) as channel:
        save_profile(fetch_profile(channel, "cloud", photo, FAST), folder / "cloud.json")
    save_profile(slower_profile(mobile, 10.0), folder / "mobile.json")
    state = Fleet(folder, cloud)
    # Ample capacity first (a fixed 16 requests at once), so that every phone offloads.
    state.start_scheduler("--cloud-capacity", "16", "--replicas", "1")
    procs = [
        Service("mobile", [*COMMON, "--cloud", cloud.address, "--agent-id", name,
                           "--scheduler", f"127.0.0.1:{state.port}", "--heartbeat-s", "0.3",
                           "--expected-rate", "50", "--no-probe"], name=name, log_dir=folder)
        for name in AGENTS
    ]  # fmt: skip
    try:
        for proc in procs:  # load the three models at once
            proc.start()
        for proc in procs:
            state.agents[proc.name] = proc.wait_healthy()
        yield state
    finally:
        for proc in procs:
            proc.stop()
        if state.scheduler is not None:
            state.scheduler.stop()


def agent_plan(service: Service) -> Any:
    with open_channel(service.address) as channel:
        return AgentStub(channel).get_plan(timeout=5)


def pushed_everywhere(fleet: Fleet) -> Callable[[FleetView], bool]:
    """Every agent listed, its plan acknowledged and held by the agent."""

    def accept(view: FleetView) -> bool:
        if {a.agent_id for a in view.agents} != set(fleet.agents):
            return False
        return all(
            a.plan.pushed and agent_plan(fleet.agents[a.agent_id]).plan_id == a.plan.plan_id
            for a in view.agents
        )

    return accept


def plan_cli(scheduler: Service, *extra: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "collabdnn", "plan", "--scheduler", scheduler.address, "--json",
         "--insecure", *extra], capture_output=True, text=True, timeout=60, cwd=REPO)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_three_agents_register_and_each_gets_its_plan(fleet: Fleet) -> None:
    view = fleet.wait(pushed_everywhere(fleet))
    # servers = replicas x requests at once x the cloud's measured speed against its profile;
    # the shared cloud fixture has served other tests, so only the first two are fixed here.
    assert view.fleet and view.replicas == 1 and view.servers > 0
    assert "16 request(s) at once" in view.capacity_source
    for entry in view.agents:
        held = agent_plan(fleet.agents[entry.agent_id])
        assert held.source == "scheduler" and "C" in str(held.placement), (
            "10x slower phones offload"
        )
        assert entry.plan.plan.spec == entry.alone_spec, "below saturation: each its own plan"
    assert fleet.scheduler is not None
    out = plan_cli(fleet.scheduler)
    assert sorted(a["id"] for a in out["agents"]) == list(AGENTS)
    for entry in out["agents"]:
        assert {"id", "placement", "predicted", "link", "battery", "plan_id"} <= entry.keys()
        assert len(entry["placement"]) == 12
    text = subprocess.run(
        [sys.executable, "-m", "collabdnn", "plan", "--scheduler", fleet.scheduler.address,
         "--insecure"], capture_output=True, text=True, timeout=60, cwd=REPO)  # fmt: skip
    assert text.returncode == 0 and "3 agents; cloud: " in text.stdout, text.stderr
    one = plan_cli(fleet.scheduler, "--agent", "phone-1")  # today's single-agent shape
    assert one["source"] == "scheduler" and "agents" not in one and len(one["units"]) == 12


def test_heartbeats_and_single_agent_calls_are_bounded(fleet: Fleet) -> None:
    assert fleet.scheduler is not None
    link = LinkEstimate(Link(10.0, 10.0, 5.0, "wifi"))
    good = AgentHeartbeat("probe", "127.0.0.1:1", link, profile=ProfileSummary("alexnet"))
    refused = {
        "x" * 65: grpc.StatusCode.INVALID_ARGUMENT,  # id too long
        "bad id!": grpc.StatusCode.INVALID_ARGUMENT,
    }
    with open_channel(fleet.scheduler.address) as channel:
        stub = SchedulerStub(channel)
        for agent_id, code in refused.items():
            with pytest.raises(grpc.RpcError) as caught:
                stub.heartbeat(AgentHeartbeat(agent_id, "127.0.0.1:1", link), timeout=5)
            assert caught.value.code() == code
        for beat, code in (
            (AgentHeartbeat("p", "no-port", link), grpc.StatusCode.INVALID_ARGUMENT),
            (AgentHeartbeat("p", "h:1", link, battery=2.0), grpc.StatusCode.INVALID_ARGUMENT),
            (AgentHeartbeat("p", "h:1", link, rate_hz=1e9), grpc.StatusCode.INVALID_ARGUMENT),
            (AgentHeartbeat("p", "h:1", link, profile=ProfileSummary("vgg11")),
             grpc.StatusCode.FAILED_PRECONDITION),
        ):  # fmt: skip
            with pytest.raises(grpc.RpcError) as caught:
                stub.heartbeat(beat, timeout=5)
            assert caught.value.code() == code, beat
        assert stub.heartbeat(good, timeout=5).registered
        with pytest.raises(grpc.RpcError) as caught:  # at once again: too fast
            stub.heartbeat(good, timeout=5)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        with pytest.raises(grpc.RpcError) as caught:
            stub.get_plan(timeout=5, agent_id="nobody")
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.RpcError) as caught:
            stub.report_link(LinkReport(link), timeout=5)
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    # "probe" sends no more heartbeats: it is forgotten after the timeout
    fleet.wait(lambda v: "probe" not in {a.agent_id for a in v.agents}, timeout=10)


def test_a_restarted_scheduler_rebuilds_and_saturation_moves_work_back(fleet: Fleet) -> None:
    assert fleet.scheduler is not None
    os.kill(fleet.scheduler.pid or 0, signal.SIGKILL)
    fleet.scheduler.stop()
    # The same port, and the capacity now learned from the cloud's Capacity call: three
    # phones asking 50 requests/s each would saturate it.
    fleet.start_scheduler()
    view = fleet.wait(pushed_everywhere(fleet))
    assert "answered Capacity" in view.capacity_source
    assert view.utilisation_alone > 1.0, view.to_dict()
    assert view.utilisation <= 0.9 + 1e-9, "the fleet's plans stay within capacity"
    moved = [a for a in view.agents if a.plan.plan.spec != a.alone_spec]
    assert moved, "some work moved back to the phones"
    for entry in moved:
        mine = entry.plan.plan.placement
        assert sum(s == Side.CLOUD for s in mine) < entry.alone_spec.count("C")
        assert "would load the cloud" in entry.plan.reason
    assert fleet.scheduler is not None
    log = (fleet.folder / "scheduler.log").read_text()
    assert "fleet-aware plans load it" in log


def test_a_killed_agent_is_forgotten(fleet: Fleet) -> None:
    victim = fleet.agents.pop("phone-2")
    os.kill(victim.pid or 0, signal.SIGKILL)
    victim.stop()
    view = fleet.wait(lambda v: {a.agent_id for a in v.agents} == {"phone-0", "phone-1"})
    assert len(view.agents) == 2
    assert fleet.scheduler is not None
    with open_channel(fleet.scheduler.address) as channel, pytest.raises(grpc.RpcError) as caught:
        SchedulerStub(channel).get_plan(timeout=5, agent_id="phone-2")
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    stop_cleanly(fleet.scheduler)
    fleet.scheduler = None
