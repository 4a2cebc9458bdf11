"""The scheduler's training plans over real gRPC servers in this process (tiny_cnn, one
thread): a cloud, an agent that reports to a single-agent scheduler, the scheduler.
``collabdnn train`` without ``--placement`` takes the scheduler's plan, ``collabdnn plan
--scheduler`` shows it, and an agent whose scheduler is gone plans the run itself."""

from __future__ import annotations

import json
from collections.abc import Iterator

import grpc
import pytest

from cloud_server.server import CloudConfig
from cloud_server.server import create_server as cloud_server
from collabdnn.measure.profile_service import ProfileSettings
from collabdnn.services import TrainingPlanQuery
from collabdnn.testbed.stack import free_port
from collabdnn.training.spec import TrainingProfileQuery
from collabdnn.transport.channels import open_channel
from collabdnn.wire.stubs import AgentStub, SchedulerStub
from collabdnn.wire.training_stubs import TrainerStub
from mobile_agent.link_monitor import LinkSettings
from mobile_agent.server import MobileConfig
from mobile_agent.server import create_server as agent_server
from scheduler.core import SchedulerSettings
from scheduler.server import SchedulerConfig
from scheduler.server import create_server as scheduler_server
from tests.common import SAMPLES, image_folder
from tests.unit.test_training import TINY
from tests.unit.test_training_grpc import _wait_ready


@pytest.fixture(scope="module")
def stack() -> Iterator[dict[str, object]]:
    cloud, cloud_port = cloud_server(CloudConfig(model=TINY, threads=1, port=0))
    cloud.start()
    _wait_ready(f"127.0.0.1:{cloud_port}")  # seeded weights: one model load at a time
    port = free_port()
    agent, agent_port = agent_server(
        MobileConfig(
            model=TINY,
            threads=1,
            port=0,
            cloud=f"127.0.0.1:{cloud_port}",
            link=LinkSettings(scheduler=f"127.0.0.1:{port}", probe=False),
        )
    )
    agent.start()
    _wait_ready(f"127.0.0.1:{agent_port}")
    settings = SchedulerSettings(
        cloud=f"127.0.0.1:{cloud_port}",
        mobile=f"127.0.0.1:{agent_port}",
        images=(str(SAMPLES / "chelsea.png"),),
        profile=ProfileSettings(repeats=1, warmup=0),
        mobile_slowdown=10.0,
        load_poll_s=0.0,
    )
    scheduler, _ = scheduler_server(SchedulerConfig(settings=settings, port=port))
    scheduler.start()
    _wait_ready(f"127.0.0.1:{port}")
    try:
        yield {
            "cloud": f"127.0.0.1:{cloud_port}",
            "agent": f"127.0.0.1:{agent_port}",
            "scheduler": f"127.0.0.1:{port}",
            "scheduler_server": scheduler,
        }
    finally:
        scheduler.stop(0)
        agent.stop(0)
        cloud.stop(0)


def _train(stack: dict[str, object], tmp_path, capsys) -> dict:
    from collabdnn.cli import main

    photos = [p.read_bytes() for p in sorted(SAMPLES.iterdir()) if p.suffix in {".png", ".jpg"}]
    folder = image_folder(tmp_path, photos)
    argv = ["train", "--insecure", "--agent", str(stack["agent"]), "--data", str(folder)]
    assert main([*argv, "--steps", "1", "--batch-size", "2", "--lr", "0.01", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_train_without_a_placement_takes_the_schedulers_training_plan(
    stack, tmp_path, capsys
) -> None:
    out = _train(stack, tmp_path, capsys)
    with open_channel(str(stack["scheduler"])) as channel:
        stub = SchedulerStub(channel)
        planned = stub.get_training_plan(TrainingPlanQuery(batch_size=2), timeout=60)
        again = stub.get_training_plan(TrainingPlanQuery(batch_size=2), timeout=60)
    assert out["plan_source"] == "scheduler" and "the scheduler" in out["placement_source"]
    assert out["placement"] == planned.plan.spec == again.plan.spec
    assert planned.batch_size == 2 and planned.source == "scheduler"
    assert planned.plan.link.network == "wifi" and "inference plan" in planned.reason
    assert [s["step"] for s in out["steps"]] == [1]


def test_plan_scheduler_json_adds_the_training_plan(stack, capsys) -> None:
    from collabdnn.cli import main

    argv = ["plan", "--insecure", "--scheduler", str(stack["scheduler"]), "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["source"] == "scheduler" and len(out["placement"]) == 8  # the inference plan
    training = out["training"]
    assert training["batch_size"] == 4 and training["source"] == "scheduler"  # the default
    assert len(training["placement"]) == 8 and training["predicted"]["latency_ms"] > 0
    assert "training_error" not in out
    assert main([*argv[:-1], "--train-batch-size", "999"]) == 0  # text; refused: said why
    assert "no training plan: INVALID_ARGUMENT" in capsys.readouterr().out


def test_training_plan_requests_are_bounded(stack) -> None:
    with open_channel(str(stack["scheduler"])) as channel:
        stub = SchedulerStub(channel)
        for query, code in (
            (TrainingPlanQuery(batch_size=10_000), grpc.StatusCode.INVALID_ARGUMENT),
            (TrainingPlanQuery("phone-1", 2), grpc.StatusCode.FAILED_PRECONDITION),
        ):
            with pytest.raises(grpc.RpcError) as caught:
                stub.get_training_plan(query, timeout=10)
            assert caught.value.code() == code, query
    with open_channel(str(stack["agent"])) as channel:  # the agent's ProfileTraining
        photo = (SAMPLES / "chelsea.png").read_bytes()
        with pytest.raises(grpc.RpcError) as caught:
            TrainerStub(channel).profile(
                TrainingProfileQuery(TINY, "another-hash", (photo,)), timeout=10
            )
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "another-hash" in str(caught.value.details())


def test_without_its_scheduler_the_agent_plans_the_run(stack, tmp_path, capsys) -> None:
    stack["scheduler_server"].stop(0).wait()  # type: ignore[attr-defined]
    out = _train(stack, tmp_path, capsys)
    assert out["plan_source"] == "agent"
    assert out["placement_source"].startswith("the training plan (latency, batch 2")
    assert "UNAVAILABLE" in out["placement_source"]


@pytest.fixture(scope="module")
def fleet(stack) -> Iterator[dict[str, str]]:
    """A fleet scheduler and one agent that heart-beats to it as ``phone-1`` (the
    module's cloud; the single-agent scheduler is stopped by then or not: unrelated)."""
    from mobile_agent.heartbeat import HeartbeatSettings
    from scheduler.fleet import FleetSettings

    cloud = str(stack["cloud"])
    port = free_port()
    settings = SchedulerSettings(
        cloud=cloud,
        images=(str(SAMPLES / "chelsea.png"),),
        profile=ProfileSettings(repeats=1, warmup=0),
        load_poll_s=0.0,
    )
    fleet = FleetSettings(heartbeat_s=0.3, timeout_s=30.0, capacity_poll_s=0.0)
    scheduler, _ = scheduler_server(SchedulerConfig(settings=settings, fleet=fleet, port=port))
    scheduler.start()
    _wait_ready(f"127.0.0.1:{port}")
    address = f"127.0.0.1:{port}"
    agent, agent_port = agent_server(
        MobileConfig(
            model=TINY,
            threads=1,
            port=0,
            cloud=cloud,
            link=LinkSettings(scheduler=address, probe=False),
            heartbeat=HeartbeatSettings(address, "phone-1", heartbeat_s=0.3, slowdown=10.0),
        )
    )
    agent.start()
    _wait_ready(f"127.0.0.1:{agent_port}")
    try:
        yield {"agent": f"127.0.0.1:{agent_port}", "scheduler": address}
    finally:
        agent.stop(0)
        scheduler.stop(0)


def test_a_fleet_scheduler_plans_training_for_the_agent_it_names(fleet, tmp_path, capsys) -> None:
    import time

    with open_channel(fleet["agent"]) as channel:
        for _ in range(400):  # registered (its heartbeat's reply taken): its plan pushed
            if AgentStub(channel).get_plan(timeout=5).source == "scheduler":
                break
            time.sleep(0.05)
    with open_channel(fleet["scheduler"]) as channel:
        stub = SchedulerStub(channel)
        planned = stub.get_training_plan(TrainingPlanQuery("phone-1", 2), timeout=60)
        with pytest.raises(grpc.RpcError) as caught:
            stub.get_training_plan(TrainingPlanQuery("", 2), timeout=10)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.RpcError) as caught:
            stub.get_training_plan(TrainingPlanQuery("x" * 65, 2), timeout=10)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    out = _train(fleet, tmp_path, capsys)
    assert out["plan_source"] == "scheduler" and out["placement"] == planned.plan.spec
