"""Split execution over real gRPC equals local execution, bit for bit.

Both services and this test run torch with one thread, so every unit performs the same
float operations in the same order wherever it runs, and the agent's logits equal the
local model's exactly (``torch.equal``). With different thread counts on the two sides
that no longer holds: a reduction split across threads may sum in another order and
differ in the last bits, so such setups can only be compared with ``assert_close``
(float32 tolerances); the top-k classes still agree in practice.

Bytes on the wire are the codec's frame sizes (the image's own size when unit 0 runs
in the cloud), computed here from local activations with the agent's codec settings.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from collabdnn.codec import CodecConfig, decode, encode
from collabdnn.model.split_model import SplitModel, load_model
from collabdnn.placement import Placement, spec_of
from collabdnn.testbed.procs import Service, start_healthy
from mobile_agent.client import classify
from tests.common import MODEL, WEIGHTS, stop_cleanly

AGENT_CODEC = CodecConfig(level=1)  # the agent's default (--zstd-level 1, no shuffle)
MULTI_SWITCH = [
    "MMMCCCCCCMMM",  # mobile -> cloud -> mobile
    "CCMMCCMMCCMC",  # cloud -> mobile -> cloud -> ... -> cloud
    "MCMCMCMCMCMC",  # a switch after every unit
    "CMMMMMMMMMMM",  # only preprocessing in the cloud
    "MMMMMMMMMMMC",  # only the last unit in the cloud
]


@pytest.fixture(scope="module")
def local() -> SplitModel:
    torch.set_num_threads(1)
    return load_model(MODEL, WEIGHTS)


@pytest.fixture(scope="module")
def activations(local: SplitModel, chelsea: bytes) -> list[torch.Tensor]:
    """Output of every unit on the sample image, computed locally."""
    outputs, x = [], chelsea
    for index in range(local.num_units):
        x = local.run(index, index + 1, x)
        outputs.append(x)
    return outputs


def expected_bytes(sides: str, image: bytes, acts: list[torch.Tensor]) -> tuple[int, int]:
    """(up, down): every crossing's frame size, the final return to mobile included."""
    up = down = 0
    previous = "M"  # the photo starts on the phone
    for index, side in enumerate([*sides, "M"]):  # ... and the answer must end there
        if side != previous:
            size = len(image) if index == 0 else len(encode(acts[index - 1], AGENT_CODEC))
            if side == "C":
                up += size
            else:
                down += size
        previous = side
    return up, down


def single_cuts(num_units: int) -> list[str]:
    """Cut k: units [0, k) on the mobile, [k, N) in the cloud; k = N is mobile only."""
    return ["M" * k + "C" * (num_units - k) for k in range(num_units + 1)]


def test_every_single_cut_and_multi_switch_is_bit_exact(
    agent: Service, local: SplitModel, activations: list[torch.Tensor], chelsea: bytes
) -> None:
    reference = activations[-1]
    assert torch.equal(reference, local.run(0, local.num_units, chelsea))
    specs = single_cuts(local.num_units) + MULTI_SWITCH
    assert len(specs) == local.num_units + 1 + len(MULTI_SWITCH)
    failures = []
    for spec in specs:
        (result,) = classify(agent.address, [chelsea], Placement.parse(spec), return_logits=True)
        assert spec_of(result.placement) == spec
        assert not result.fallback
        logits = decode(result.logits_frame)
        if not torch.equal(logits, reference):
            failures.append(f"{spec}: max diff {(logits - reference).abs().max().item()}")
        up, down = expected_bytes(spec, chelsea, activations)
        assert (result.bytes_up, result.bytes_down) == (up, down), spec
        assert result.bytes_up == sum(t.bytes for t in result.transfers if t.upload)
        cloud_units = [u for u in result.units if u.platform == "cloud"]
        assert len(cloud_units) == spec.count("C")
        assert all(u.compute_ms > 0 for u in result.units)
    assert not failures, failures


def test_result_reports_top5_and_timings(
    agent: Service, local: SplitModel, activations: list[torch.Tensor], chelsea: bytes
) -> None:
    (result,) = classify(agent.address, [chelsea], Placement.parse("MMMCCCCCCMMM"))
    probs = torch.softmax(activations[-1].reshape(-1), 0)
    top = probs.topk(5)
    assert [p.class_index for p in result.top] == top.indices.tolist()
    assert [p.probability for p in result.top] == pytest.approx(top.values.tolist())
    assert result.mobile_energy_mj is not None and result.mobile_energy_mj > 0  # modelled
    assert result.emulated_link is False
    assert result.latency_ms > sum(u.compute_ms for u in result.units if u.platform == "mobile")
    ups = [t for t in result.transfers if t.upload]
    downs = [t for t in result.transfers if not t.upload]
    assert [t.after_unit for t in ups] == [2] and [t.after_unit for t in downs] == [8]
    assert result.units[2].bytes == ups[0].bytes and result.units[8].bytes == downs[0].bytes


def test_plan_is_used_when_the_request_names_none(agent: Service, chelsea: bytes) -> None:
    from collabdnn.placement import AssignedPlan
    from collabdnn.transport.channels import open_channel
    from collabdnn.wire.stubs import AgentStub

    with open_channel(agent.address) as channel:
        stub = AgentStub(channel)
        before = stub.get_plan(timeout=10)
        plan = AssignedPlan(Placement.parse("MMMMMCCCCCCC"), plan_id="p1", source="test")
        assert stub.set_plan(plan, timeout=10) == plan
        try:
            (result,) = classify(agent.address, [chelsea])
            assert spec_of(result.placement) == "MMMMMCCCCCCC"
            assert stub.get_plan(timeout=10) == plan
        finally:
            stub.set_plan(before, timeout=10)


@pytest.fixture(scope="module")
def mismatched_agent(cloud: Service, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    args = ["--model", MODEL, "--weights", "seed:1", "--threads", "1", "--cloud", cloud.address]
    service = start_healthy(
        "mobile", args, name="mobile-seed1", log_dir=tmp_path_factory.mktemp("mismatch")
    )
    yield service
    stop_cleanly(service)


def test_agent_refuses_to_offload_across_a_weights_mismatch(
    mismatched_agent: Service, chelsea: bytes
) -> None:
    (result,) = classify(mismatched_agent.address, [chelsea], Placement.parse("cloud"))
    assert spec_of(result.placement) == "M" * 12
    assert result.fallback
    assert result.bytes_up == result.bytes_down == 0
    assert "REFUSING TO OFFLOAD" in mismatched_agent.log_tail(100)


def test_agent_info_reports_the_verified_cloud(agent: Service, cloud: Service) -> None:
    from collabdnn.transport.channels import open_channel
    from collabdnn.wire.stubs import AgentStub

    with open_channel(agent.address) as channel:
        info = AgentStub(channel).info(timeout=10)
    assert info.cloud_address == cloud.address and info.cloud_state == "verified"
    assert info.info.role == "mobile" and info.info.threads == 1 and len(info.info.units) == 12
    assert info.info.units[0].name == "preprocess" and info.link is not None


@pytest.mark.parametrize("photo", ["crop:webp", "crop:png", "crop:zstd"])
def test_the_plans_codecs_are_used_and_stay_bit_exact(
    agent: Service, local: SplitModel, activations: list[torch.Tensor], chelsea: bytes, photo: str
) -> None:
    """A plan whose photo goes up as a lossless crop and whose crossings each have
    their own codec: the same logits, and each crossing's bytes are its codec's."""
    from collabdnn.placement import AssignedPlan
    from collabdnn.transport.channels import open_channel
    from collabdnn.wire.stubs import AgentStub

    spec = "CCCMMCCCCCMM"  # up at 0 and 5, down at 3 and 10
    codecs = ((0, photo), (3, "raw"), (5, "zstd:3+shuffle"), (10, "zstd:1"))
    with open_channel(agent.address) as channel:
        stub = AgentStub(channel)
        before = stub.get_plan(timeout=10)
        plan = AssignedPlan(Placement.parse(spec), "codecs", "test", codecs)
        assert stub.set_plan(plan, timeout=10) == plan
        try:
            (result,) = classify(agent.address, [chelsea], return_logits=True)
        finally:
            stub.set_plan(before, timeout=10)
    assert spec_of(result.placement) == spec and not result.fallback
    assert torch.equal(decode(result.logits_frame), activations[-1])
    crop = local.crop_images(chelsea, photo.removeprefix("crop:")).images[0]
    up = len(crop) + len(encode(activations[4], CodecConfig(level=3, shuffle=True)))
    down = len(encode(activations[2], CodecConfig(level=0)))
    down += len(encode(activations[9], CodecConfig(level=1)))
    assert (result.bytes_up, result.bytes_down) == (up, down)
    assert len(crop) < len(chelsea)
