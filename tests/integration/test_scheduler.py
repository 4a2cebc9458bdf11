"""The scheduler end to end: profiles over gRPC, plans, pushes, re-plans on link reports.

One agent (reporting to the scheduler) and one scheduler per module, next to the
session's cloud server. The mobile profile is the agent's own (through its Profile
call) made 10x slower: on one machine both sides share a CPU, so without it nothing
would ever be worth offloading (see ``collabdnn.testbed.stack.slower_profile``). The cloud is
profiled live by the scheduler.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from collabdnn.measure.profile_service import ProfileSettings, fetch_profile
from collabdnn.placement import AssignedPlan, spec_of
from collabdnn.planning.link import Link, LinkEstimate
from collabdnn.planning.profiles import Profile, save_profile, slower_profile
from collabdnn.services import LinkReport, ObjectiveChange, ReportOutcome
from collabdnn.testbed.procs import Service, start_healthy
from collabdnn.testbed.stack import free_port
from collabdnn.transport.channels import open_channel
from collabdnn.wire.stubs import AgentStub, SchedulerStub
from mobile_agent.client import classify
from tests.common import COMMON, REPO, SAMPLES, stop_cleanly

FAST = ProfileSettings(repeats=2, warmup=1)


@pytest.fixture(scope="module")
def stack(
    cloud: Service, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Service, Service]]:
    folder = tmp_path_factory.mktemp("sched")
    port = free_port()
    agent = start_healthy(
        "mobile", [*COMMON, "--cloud", cloud.address, "--scheduler", f"127.0.0.1:{port}"],
        log_dir=folder)  # fmt: skip
    try:
        with open_channel(agent.address) as channel:
            mobile = fetch_profile(
                channel, "mobile", [(SAMPLES / "chelsea.png").read_bytes()], FAST
            )
        save_profile(slower_profile(mobile, 10.0), folder / "mobile.json")
        scheduler = start_healthy(
            "scheduler", ["--cloud", cloud.address, "--mobile", agent.address,
                          "--mobile-profile", str(folder / "mobile.json"), "--port", str(port),
                          "--images", str(SAMPLES / "chelsea.png"), "--profile-repeats", "2"],
            log_dir=folder)  # fmt: skip
    except BaseException:
        agent.stop()
        raise
    yield agent, scheduler
    stop_cleanly(scheduler)
    stop_cleanly(agent)


def scheduler_stub(scheduler: Service) -> tuple[grpc.Channel, SchedulerStub]:
    channel = open_channel(scheduler.address)
    return channel, SchedulerStub(channel)


def agent_plan(agent: Service) -> AssignedPlan:
    with open_channel(agent.address) as channel:
        return AgentStub(channel).get_plan(timeout=5)


def wait_agent(agent: Service, accept, timeout: float = 20.0) -> AssignedPlan:
    deadline = time.monotonic() + timeout
    while True:
        plan = agent_plan(agent)
        if accept(plan):
            return plan
        assert time.monotonic() < deadline, f"agent plan still {plan}"
        time.sleep(0.05)


def test_profile_rpc_returns_a_valid_profile(
    agent: Service, cloud: Service, chelsea: bytes
) -> None:
    for role, address in (("mobile", agent.address), ("cloud", cloud.address)):
        with open_channel(address) as channel:
            profile = fetch_profile(channel, role, [chelsea], FAST)
        assert isinstance(profile, Profile) and profile.side == role
        assert profile.model == "alexnet" and len(profile.units) == 12
        assert all(u.latency_ms.median > 0 and u.latency_ms.repeats == 2 for u in profile.units)
        assert profile.input_bytes == len(chelsea) and profile.units[1].encoded_bytes > 0


def test_agent_runs_the_pushed_plan_and_reports_energy(
    stack: tuple[Service, Service], chelsea: bytes
) -> None:
    agent, scheduler = stack
    plan = wait_agent(agent, lambda p: p.source == "scheduler")
    channel, stub = scheduler_stub(scheduler)
    with channel:
        before = stub.get_plan(timeout=5)
        (result,) = classify(agent.address, [chelsea])
        after = stub.get_plan(timeout=5)
    assert plan.plan_id.split("-")[0].isdigit()
    used = spec_of(result.placement)
    assert used in {before.plan.spec, after.plan.spec}
    assert "C" in used, "a 10x slower phone on a fast link offloads"
    assert result.mobile_energy_mj is not None and result.mobile_energy_mj > 0
    assert not result.fallback


def test_plan_scheduler_json_has_the_contract_keys(stack: tuple[Service, Service]) -> None:
    _, scheduler = stack
    done = subprocess.run(
        [sys.executable, "-m", "collabdnn", "plan", "--scheduler", scheduler.address, "--json",
         "--insecure"], capture_output=True, text=True, timeout=60, cwd=REPO)  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["objective"] == "latency" and out["source"] == "scheduler"
    assert len(out["units"]) == len(out["placement"]) == 12
    assert set(out["placement"]) <= {"mobile", "cloud"}
    keys = {"latency_ms", "mobile_energy_mj"}
    assert keys <= out["predicted"].keys()
    for name in ("mobile_only", "cloud_only", "best_single_cut"):
        assert keys <= out["baselines"][name]["predicted"].keys()


def test_a_slow_link_report_pushes_a_mobile_plan(stack: tuple[Service, Service]) -> None:
    agent, scheduler = stack
    wait_agent(agent, lambda p: p.source == "scheduler")
    channel, stub = scheduler_stub(scheduler)

    def report(mbps: float, rtt: float) -> ReportOutcome:
        estimate = LinkEstimate(Link(mbps, mbps, rtt, "wifi"))
        return stub.report_link(LinkReport(estimate, source="test"), timeout=5)

    with channel:
        # Reported again and again: the agent's own (loopback-fast) reports would undo it.
        deadline = time.monotonic() + 20
        while "C" in str(agent_plan(agent).placement):
            reply = report(0.5, 50.0)
            assert str(reply.placement) == "M" * 12
            assert time.monotonic() < deadline, "the mobile-only plan never reached the agent"
            time.sleep(0.1)
        assert stub.get_plan(timeout=5).plan.link.up_mbps == 0.5
        report(1000.0, 1.0)  # and back: the cloud is used again
        wait_agent(agent, lambda p: "C" in str(p.placement))
        # A link no client can build (serde refuses it on this side too), sent raw:
        from collabdnn.wire.proto import common_pb2, scheduler_pb2, scheduler_pb2_grpc

        bad = common_pb2.LinkEstimate(up_mbps=-1.0, down_mbps=1.0, rtt_ms=1.0, network="wifi")
        with pytest.raises(grpc.RpcError) as caught:
            scheduler_pb2_grpc.SchedulerStub(channel).ReportLink(
                scheduler_pb2.LinkReport(link=bad, source="test"), timeout=5
            )
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "bad link report" in (caught.value.details() or "")


def test_objective_change_and_bad_objective(stack: tuple[Service, Service]) -> None:
    _, scheduler = stack
    channel, stub = scheduler_stub(scheduler)
    with channel:
        reply = stub.set_objective(ObjectiveChange("energy"), timeout=10)
        assert reply.plan.objective == "energy" and reply.to_dict()["objective"] == "energy"
        with pytest.raises(grpc.RpcError) as caught:
            stub.set_objective(ObjectiveChange("deadline"), timeout=10)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        reply = stub.set_objective(ObjectiveChange("latency"), timeout=10)
        assert reply.plan.objective == "latency"


def test_profile_cli_asks_a_running_agent(agent: Service, tmp_path: Path) -> None:
    out = tmp_path / "m.json"
    done = subprocess.run(
        [sys.executable, "-m", "collabdnn", "profile", "--agent", agent.address, "--insecure",
         "--repeats", "1", "--warmup", "1", "--images", str(SAMPLES / "chelsea.png"),
         "-o", str(out)], capture_output=True, text=True, timeout=120, cwd=REPO)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text())["side"] == "mobile"
