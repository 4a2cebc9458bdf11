"""Split execution of graph-shaped models over real gRPC equals local execution, bit for bit.

Two DAG models, each with its own cloud and agent processes (one torch thread each, as
in test_split_grpc.py): torchvision's ShuffleNetV2 (channel split and shuffle: the
``chunk`` whose tuple once became a unit boundary) by name, and the example custom model
(residual blocks and concatenated branches, 64x64 input, its own labels) as
``package.module:factory``. Placements switch sides several times (M...C...M...).
The cloud started with the custom model refuses any other custom name.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest
import torch

from collabdnn.codec import decode, encode
from collabdnn.model.examples import LABELS
from collabdnn.model.split_model import SplitModel, load_model
from collabdnn.placement import Placement, spec_of
from collabdnn.testbed.procs import Service, start_healthy
from mobile_agent.client import classify
from tests.common import stop_cleanly

TINY = "collabdnn.model.examples:tiny_cnn"
SHUFFLENET = "shufflenet_v2_x0_5"


@dataclass
class Pair:
    name: str
    cloud: Service
    agent: Service
    local: SplitModel


def _pair(name: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    args = ["--model", name, "--weights", "seed:0", "--threads", "1"]
    logs = tmp_path_factory.mktemp(name.replace(":", "_"))
    cloud = start_healthy("cloud", args, name=f"cloud-{name}", log_dir=logs)
    try:
        agent = start_healthy(
            "mobile", [*args, "--cloud", cloud.address], name=f"mobile-{name}", log_dir=logs
        )
        try:
            torch.set_num_threads(1)
            yield Pair(name, cloud, agent, load_model(name, "seed:0"))
        finally:
            stop_cleanly(agent)
    finally:
        stop_cleanly(cloud)


@pytest.fixture(scope="module")
def shufflenet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    yield from _pair(SHUFFLENET, tmp_path_factory)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    yield from _pair(TINY, tmp_path_factory)


def multi_switch(n: int) -> list[str]:
    """Placements of ``n`` units that cross the link several times."""
    third = n // 3
    return [
        "M" * third + "C" * third + "M" * (n - 2 * third),  # mobile -> cloud -> mobile
        "C" * 2 + "M" * third + "C" * (n - 2 - third),  # cloud -> mobile -> cloud
        ("MC" * n)[:n],  # a switch after every unit
        "M" * (n - 1) + "C",  # only the classifier in the cloud
        "C" * n,
        "M" * n,
    ]


def _check_pair(pair: Pair, image: bytes) -> None:
    reference = pair.local.run(0, pair.local.num_units, image)
    failures = []
    for spec in multi_switch(pair.local.num_units):
        (result,) = classify(pair.agent.address, [image], Placement.parse(spec), return_logits=True)
        assert spec_of(result.placement) == spec
        assert not result.fallback, f"{pair.name} {spec}: fell back\n{pair.agent.log_tail()}"
        assert len([u for u in result.units if u.platform == "cloud"]) == spec.count("C")
        logits = decode(result.logits_frame)
        if not torch.equal(logits, reference):
            failures.append(f"{spec}: max diff {(logits - reference).abs().max().item()}")
    assert not failures, f"{pair.name}: {failures}"


def test_shufflenet_split_over_grpc_equals_local(shufflenet: Pair, chelsea: bytes) -> None:
    assert shufflenet.local.num_units == 22
    _check_pair(shufflenet, chelsea)


def test_custom_model_split_over_grpc_equals_local_and_names_its_classes(
    tiny: Pair, chelsea: bytes
) -> None:
    _check_pair(tiny, chelsea)
    (result,) = classify(tiny.agent.address, [chelsea], Placement.parse("MMCCCMMM"))
    assert [p.label for p in result.top] == [LABELS[p.class_index] for p in result.top]
    assert len(result.top) == 5


def test_cloud_refuses_another_custom_model(tiny: Pair) -> None:
    from collabdnn.transport.channels import open_channel
    from collabdnn.wire.proto import cloud_pb2, cloud_pb2_grpc, common_pb2, tensor_pb2

    with open_channel(tiny.cloud.address) as channel:
        stub = cloud_pb2_grpc.CloudServerStub(channel)
        info = stub.Info(common_pb2.InfoRequest(), timeout=10)
        assert info.model == TINY and len(info.units) == tiny.local.num_units
        frame = encode(torch.zeros(list(info.units[2].output_shape)))
        for model, fragment in (
            ("evil_pkg_xyz.payload:run", "unknown model 'evil_pkg_xyz.payload:run'"),
            (SHUFFLENET, f"serves model '{TINY}', not '{SHUFFLENET}'"),
        ):
            request = cloud_pb2.ExecuteRequest(
                model=model,
                weights_hash=info.weights_hash,
                start=3,
                end=len(info.units),
                tensor=tensor_pb2.Tensor(frame=frame),
                reply_codec=tensor_pb2.CodecOptions(level=1),
            )
            with pytest.raises(grpc.RpcError) as caught:
                stub.Execute(request, timeout=10)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert fragment in (caught.value.details() or "")
    log = tiny.cloud.log_tail(200)
    assert "Execute refused" in log and "cannot import" not in log  # refused, not imported
