"""Split training over real gRPC servers in this process: a cloud and an agent on port 0
(tiny_cnn, one thread), driven by the training client and by ``collabdnn train``."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import torch

from cloud_server.cloud import Cloud
from cloud_server.server import CloudConfig
from cloud_server.server import create_server as cloud_server
from cloud_server.training import TrainingSessions, TrainingSettings
from collabdnn.codec import encode
from collabdnn.errors import CancelledError, TrainingStateError
from collabdnn.model.split_model import SplitModel, load_model
from collabdnn.training.spec import (
    BeginTraining,
    OptimizerConfig,
    StartTraining,
    StatusRequest,
    StepCall,
    TrainForward,
    TrainingProfileQuery,
    TrainingSpec,
)
from collabdnn.transport.channels import open_channel
from collabdnn.wire.stubs import CloudStub
from collabdnn.wire.training_stubs import CloudTrainingStub
from mobile_agent.server import MobileConfig
from mobile_agent.server import create_server as agent_server
from mobile_agent.train_client import train
from tests.common import image_folder
from tests.unit.test_training import TINY

SGD = OptimizerConfig("sgd", 0.05)


def _wait_ready(address: str) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with open_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)  # NOT_SERVING while the model loads
        for _ in range(300):
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=5, wait_for_ready=True)
                if reply.status != health_pb2.HealthCheckResponse.SERVING:
                    time.sleep(0.05)
                    continue
                return
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.UNAVAILABLE:
                    raise
                time.sleep(0.05)
    raise AssertionError(f"{address} never became ready")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    root = tmp_path_factory.mktemp("training")
    cloud, cloud_port = cloud_server(
        CloudConfig(model=TINY, threads=1, port=0, checkpoint_dir=str(root / "cloud"))
    )
    cloud.start()
    # one at a time: seeded weights are drawn from torch's one global generator
    _wait_ready(f"127.0.0.1:{cloud_port}")
    agent, agent_port = agent_server(
        MobileConfig(
            model=TINY,
            threads=1,
            port=0,
            cloud=f"127.0.0.1:{cloud_port}",
            checkpoint_dir=str(root / "mobile"),
        )
    )
    agent.start()
    addresses = {"cloud": f"127.0.0.1:{cloud_port}", "agent": f"127.0.0.1:{agent_port}"}
    _wait_ready(addresses["agent"])
    try:
        yield addresses
    finally:
        agent.stop(0)
        cloud.stop(0)


@pytest.fixture(scope="module")
def photos() -> list[bytes]:
    from tests.common import SAMPLES

    return [p.read_bytes() for p in sorted(SAMPLES.iterdir()) if p.suffix in {".png", ".jpg"}]


def test_split_training_over_grpc_equals_local_and_inference_loads_it(stack, photos) -> None:
    batches = [(photos, [0, 1, 2, 3])] * 3
    runs = {}
    for spec in ("mobile", "MMMCCMMM", "CCCCCCCM"):
        run, steps, final = train(
            stack["agent"], batches, StartTraining(spec, SGD, seed=3), checkpoint=True
        )
        runs[spec] = ([s.loss for s in steps], final.weights_hash)
        assert final.global_checkpoint, spec
        assert load_model(TINY, final.global_checkpoint).weights_hash == final.weights_hash
        if spec != "mobile":
            assert all(s.bytes_up > 0 and s.bytes_down > 0 for s in steps)
            assert final.cloud is not None and Path(final.cloud.checkpoint).is_file()
    assert runs["MMMCCMMM"] == runs["mobile"] == runs["CCCCCCCM"]
    # both services still serve inference with the weights they loaded
    with open_channel(stack["cloud"]) as channel:
        info = CloudStub(channel).info(timeout=10)
    assert info.weights_hash == run.weights_hash != final.weights_hash


def test_the_train_command_prints_json_and_counts_skipped_images(
    stack, photos, tmp_path, capsys
) -> None:
    from collabdnn.cli import main

    folder = image_folder(tmp_path, photos)
    argv = ["train", "--insecure", "--agent", stack["agent"], "--data", str(folder)]
    argv += ["--steps", "2"]
    argv += ["--batch-size", "4", "--lr", "0.01", "--optimizer", "adam"]
    assert main([*argv, "--placement", "MMMCCMMM", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [s["step"] for s in out["steps"]] == [1, 2]
    assert set(out["steps"][0]) == {"step", "loss", "ms", "bytes_up", "bytes_down"}
    assert out["skipped"] == 3 and out["images"] == 8 and out["placement"] == "MMMCCMMM"
    # without --placement: the training plan for the batch, and lines instead of JSON
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "step 2: loss" in captured.out and "weights hash after 2 steps" in captured.out
    assert "from the training plan (latency, batch 4" in captured.err


def test_the_cloud_refuses_other_weights_and_calls_out_of_turn(stack, photos) -> None:
    with open_channel(stack["cloud"]) as channel:
        stub = CloudTrainingStub(channel)
        model = load_model(TINY, "seed:0")
        spec = TrainingSpec(TINY, model.weights_hash, "MMMCCMMM", SGD)

        def refused(call, code: grpc.StatusCode, text: str) -> None:
            with pytest.raises(grpc.RpcError) as caught:
                call()
            assert caught.value.code() == code, caught.value.details()
            assert text in caught.value.details()

        other = TrainingSpec(TINY, "0123456789abcdef", "MMMCCMMM", SGD)
        refused(
            lambda: stub.begin(BeginTraining("s1", other), timeout=10),
            grpc.StatusCode.FAILED_PRECONDITION,
            "from weights '0123456789abcdef'",
        )
        alexnet = TrainingSpec("alexnet", model.weights_hash, "mobile", SGD)
        refused(
            lambda: stub.begin(BeginTraining("s1", alexnet), timeout=10),
            grpc.StatusCode.FAILED_PRECONDITION,
            "this server holds",
        )
        refused(
            lambda: stub.commit(StepCall("nobody", 1), timeout=10),
            grpc.StatusCode.FAILED_PRECONDITION,
            "no training session 'nobody'",
        )
        profile = TrainingProfileQuery(TINY, "0123456789abcdef", (b"x",))
        refused(
            lambda: stub.profile(profile, timeout=10),
            grpc.StatusCode.FAILED_PRECONDITION,
            "training refused",
        )
        profile = TrainingProfileQuery(TINY, model.weights_hash, (b"x",), repeats=9)
        refused(
            lambda: stub.profile(profile, timeout=10),
            grpc.StatusCode.INVALID_ARGUMENT,
            "repeats must be in 1..5",
        )
        bad_placement = TrainingSpec(TINY, model.weights_hash, "MC", SGD)
        refused(
            lambda: stub.begin(BeginTraining("s1", bad_placement), timeout=10),
            grpc.StatusCode.INVALID_ARGUMENT,
            "letters",
        )
        stub.begin(BeginTraining("s1", spec), timeout=10)
        x = encode(torch.zeros(1, *model.units[2].output_shape[1:]))
        refused(
            lambda: stub.forward(TrainForward("s1", 5, 3, 5, x), timeout=10),
            grpc.StatusCode.FAILED_PRECONDITION,
            "out of order",
        )
        big = encode(torch.zeros(9, *model.units[2].output_shape[1:]))
        refused(
            lambda: stub.forward(TrainForward("s1", 1, 3, 5, big), timeout=10),
            grpc.StatusCode.INVALID_ARGUMENT,
            "batch 9",
        )
        refused(
            lambda: stub.commit(StepCall("s1", 1), timeout=10),
            grpc.StatusCode.FAILED_PRECONDITION,
            "not in flight",
        )
        stub.forward(TrainForward("s1", 1, 3, 5, x), timeout=10)
        stub.begin(BeginTraining("s2", spec), timeout=10)
        refused(
            lambda: stub.begin(BeginTraining("s3", spec), timeout=10),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "2 training sessions are open",
        )
        for session in ("s1", "s2"):
            state = stub.status(StatusRequest(session, end=True), timeout=10)
            assert state.step == 0 and state.digests
        stub.begin(BeginTraining("s3", spec), timeout=10)  # a place is free again
        stub.status(StatusRequest("s3", end=True), timeout=10)


@pytest.fixture(scope="module")
def tiny() -> SplitModel:
    return load_model(TINY, "seed:0")


def _session(tiny: SplitModel, **settings: float) -> TrainingSessions:
    sessions = TrainingSessions(lambda: Cloud(tiny), TrainingSettings(**settings))  # type: ignore[arg-type]
    spec = TrainingSpec(TINY, tiny.weights_hash, "MMMCCMMM", SGD)
    sessions.begin(BeginTraining("s", spec))
    return sessions


def test_what_a_step_keeps_is_freed_on_timeout_cancel_and_idle(tiny) -> None:
    x = encode(torch.zeros(2, *tiny.units[2].output_shape[1:]))
    forward = TrainForward("s", 1, 3, 5, x)

    sessions = _session(tiny, step_timeout_s=0.0)
    sessions.forward(forward)
    trainer = sessions._sessions["s"].trainer
    assert trainer.saved_bytes > 0
    sessions.sweep()  # the step's activations outlived step_timeout_s: aborted
    assert trainer.saved_bytes == 0 and trainer.in_flight is None
    with pytest.raises(TrainingStateError, match="not in flight"):
        sessions.commit(StepCall("s", 1))

    sessions = _session(tiny)

    def gone() -> None:
        raise CancelledError("the caller went away")

    with pytest.raises(CancelledError):
        sessions.forward(forward, should_stop=gone)
    assert sessions._sessions["s"].trainer.saved_bytes == 0

    sessions = _session(tiny, idle_timeout_s=0.0)
    sessions.sweep()
    assert sessions.count == 0


def test_one_run_at_a_time_and_an_abandoned_run_gives_way(tiny, photos) -> None:
    from collabdnn.errors import BusyError, ImageError
    from collabdnn.placement import AssignedPlan, Placement
    from collabdnn.training.spec import FinishTraining, TrainStep
    from collabdnn.transport.channels import ChannelPool
    from mobile_agent.agent import AgentSettings, MobileAgent
    from mobile_agent.training import AgentTraining
    from mobile_agent.training import TrainingSettings as AgentSettingsForTraining

    pool = ChannelPool()
    agent = MobileAgent(tiny, AssignedPlan(Placement.mobile()), pool, AgentSettings())
    training = AgentTraining(lambda: agent, pool.get, AgentSettingsForTraining(idle_timeout_s=60))
    first = training.start(StartTraining("mobile", SGD))
    assert first.placement == "MMMMMMMM" and first.placement_source.startswith("the request")
    with pytest.raises(BusyError, match="in progress"):
        training.start(StartTraining("", SGD))
    with pytest.raises(TrainingStateError, match="out of order"):
        training.step(TrainStep(first.session_id, 2, (photos[0],), (1,)))
    with pytest.raises(ImageError, match="cannot decode image"):
        training.step(TrainStep(first.session_id, 1, (b"not an image",), (1,)))
    training.step(TrainStep(first.session_id, 1, (photos[0],), (1,)))  # nothing was staged
    training.settings = AgentSettingsForTraining(idle_timeout_s=0.0)
    second = training.start(StartTraining("", SGD))  # the first was abandoned
    # no cloud, so no training plan: the agent's own plan, and the run says so
    assert second.placement_source.startswith("the agent's plan")
    with pytest.raises(TrainingStateError, match="no training run"):
        training.finish(FinishTraining(first.session_id))
    assert training.finish(FinishTraining(second.session_id)).step == 0
    pool.close()


def test_a_cloud_that_dies_mid_run_leaves_the_phone_at_the_last_step(tiny, photos) -> None:
    from collabdnn.placement import AssignedPlan, Placement
    from collabdnn.training.spec import FinishTraining, TrainStep
    from collabdnn.transport.channels import ChannelPool
    from mobile_agent.agent import AgentSettings, MobileAgent
    from mobile_agent.training import AgentTraining

    server, port = cloud_server(CloudConfig(model=TINY, threads=1, port=0))
    server.start()
    _wait_ready(f"127.0.0.1:{port}")
    pool = ChannelPool()
    settings = AgentSettings(cloud=f"127.0.0.1:{port}", timeout_s=5.0)
    agent = MobileAgent(tiny, AssignedPlan(Placement.mobile()), pool, settings)
    training = AgentTraining(lambda: agent, pool.get)
    try:
        run = training.start(StartTraining("MMMCCMMM", SGD))
        batch = (tuple(photos), (0, 1, 2, 3))
        training.step(TrainStep(run.session_id, 1, *batch))
        assert training._run is not None
        trainer = training._run.driver.trainer
        before = trainer.digests()
        server.stop(0).wait()
        with pytest.raises(grpc.RpcError) as failed:
            training.step(TrainStep(run.session_id, 2, *batch))
        assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
        # step 2 was applied by neither side: the phone is at step 1, as it was
        assert trainer.step == 1 and trainer.in_flight is None and trainer.digests() == before
        with pytest.raises(grpc.RpcError):
            training.finish(FinishTraining(run.session_id))  # the cloud's half is gone
        assert training.start(StartTraining("mobile", SGD)).placement == "MMMMMMMM"
    finally:
        server.stop(0)
        pool.close()


def test_a_run_resumed_from_its_checkpoints_goes_on_bit_for_bit(stack, photos) -> None:
    from collabdnn.training.spec import Resume
    from collabdnn.wire.training_stubs import TrainerStub

    batches = [(photos, [0, 1, 2, 3]), (photos[::-1], [3, 2, 1, 0])] * 2
    start = StartTraining("MMMCCMMM", SGD, seed=5)
    _, straight, whole = train(stack["agent"], batches, start)
    # two steps, a checkpoint in the middle of the run, then a new run from it
    first, head, _ = train(stack["agent"], batches[:2], start, checkpoint_every=2)
    resumed = StartTraining("", SGD, seed=5, resume=Resume(first.session_id, 2))
    run, tail, final = train(stack["agent"], batches[2:], resumed)
    assert run.step == 2 and run.placement == "MMMCCMMM"
    assert [s.step for s in tail] == [3, 4]
    assert [s.loss for s in head + tail] == [s.loss for s in straight]
    assert final.weights_hash == whole.weights_hash
    with open_channel(stack["agent"]) as channel:
        with pytest.raises(grpc.RpcError) as refused:
            stub = TrainerStub(channel)
            stub.start(StartTraining("mobile", SGD, resume=Resume(first.session_id, 2)), timeout=30)
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "a resumed run keeps it" in refused.value.details()
        with pytest.raises(grpc.RpcError) as missing:
            stub.start(StartTraining("", SGD, resume=Resume(first.session_id, 7)), timeout=30)
        assert "no checkpoint" in missing.value.details()
