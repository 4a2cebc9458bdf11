"""The cloud server refuses bad requests precisely, and keeps serving after each.

Every case goes to the real server over gRPC: the status code and a telling fragment
of the message are checked, then a good request must still succeed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import grpc
import pytest
import torch

from collabdnn.codec import CodecConfig, encode
from collabdnn.testbed.procs import Service
from collabdnn.transport.channels import check_health, open_channel
from collabdnn.wire import serde
from collabdnn.wire.proto import cloud_pb2, cloud_pb2_grpc, common_pb2, tensor_pb2
from tests.badinputs import png, png_header_claiming, zstd_bomb, zstd_bomb_lying, zstd_frame
from tests.common import MODEL

INVALID = grpc.StatusCode.INVALID_ARGUMENT
CONV5 = (1, 256, 13, 13)  # the input of unit 8, as in _with_frame
BOMB = 64 << 20
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION


@pytest.fixture(scope="module")
def stub(cloud: Service) -> Iterator[cloud_pb2_grpc.CloudServerStub]:
    with open_channel(cloud.address) as channel:
        yield cloud_pb2_grpc.CloudServerStub(channel)


@pytest.fixture(scope="module")
def info(stub: cloud_pb2_grpc.CloudServerStub) -> common_pb2.ServiceInfo:
    return stub.Info(common_pb2.InfoRequest(), timeout=10)


def tensor_request(
    info: common_pb2.ServiceInfo,
    start: int,
    end: int,
    tensor: torch.Tensor | None = None,
    **overrides: object,
) -> cloud_pb2.ExecuteRequest:
    """A request for units [start, end) fed a tensor shaped like unit start-1's output."""
    if tensor is None:
        shape = list(info.units[max(start, 1) - 1].output_shape)
        tensor = torch.zeros(shape)
    fields = {
        "model": info.model,
        "weights_hash": info.weights_hash,
        "start": start,
        "end": end,
        "tensor": tensor_pb2.Tensor(frame=encode(tensor)),
        "reply_codec": tensor_pb2.CodecOptions(level=1),
    }
    fields.update(overrides)
    return cloud_pb2.ExecuteRequest(**fields)


def good_request(info: common_pb2.ServiceInfo) -> cloud_pb2.ExecuteRequest:
    return tensor_request(info, 8, len(info.units))


def test_info_describes_the_model(info: common_pb2.ServiceInfo) -> None:
    assert info.role == "cloud" and info.model == MODEL and info.weights == "seed:0"
    assert len(info.weights_hash) == 16 and info.threads == 1 and info.device == "cpu"
    assert [u.name for u in info.units][:3] == ["preprocess", "conv1", "pool1"]
    assert len(info.units) == 12


def test_health_is_serving(cloud: Service) -> None:
    assert check_health(cloud.address) == "SERVING"
    assert check_health(cloud.address, "collabdnn.proto.CloudServer") == "SERVING"
    assert check_health(cloud.address, "no.such.Service") == "UNKNOWN_SERVICE"


def test_execute_returns_output_timings_and_load(
    stub: cloud_pb2_grpc.CloudServerStub, info: common_pb2.ServiceInfo
) -> None:
    from collabdnn.codec import decode

    reply = stub.Execute(good_request(info), timeout=30)
    assert decode(reply.output.frame).shape == (1, 1000)
    assert [u.index for u in reply.units] == [8, 9, 10, 11]
    assert reply.server_ms >= sum(u.compute_ms for u in reply.units)
    assert reply.load.in_flight >= 1


def _with_frame(info: common_pb2.ServiceInfo, frame: bytes) -> cloud_pb2.ExecuteRequest:
    request = tensor_request(info, 8, 12)
    request.tensor.frame = frame
    return request


def _corrupt_frame() -> bytes:
    frame = bytearray(encode(torch.ones(1, 256, 13, 13), CodecConfig(level=0)))
    frame[-1] ^= 0xFF  # flip payload bits: the header is intact, the CRC is not
    return bytes(frame)


CASES: dict[
    str, tuple[Callable[[common_pb2.ServiceInfo], cloud_pb2.ExecuteRequest], grpc.StatusCode, str]
] = {
    "weights hash mismatch": (
        lambda i: tensor_request(i, 8, 12, weights_hash="0123456789abcdef"),
        PRECONDITION,
        "differs from this server's",
    ),
    "no weights hash": (
        lambda i: tensor_request(i, 8, 12, weights_hash=""),
        PRECONDITION,
        "(none)",
    ),
    "unknown model": (
        lambda i: tensor_request(i, 8, 12, model="nosuchnet"),
        INVALID,
        "unknown model 'nosuchnet'",
    ),
    "model not served": (
        lambda i: tensor_request(i, 8, 12, model="vgg11"),
        INVALID,
        "serves model 'alexnet', not 'vgg11'",
    ),
    "negative start": (lambda i: tensor_request(i, -1, 3), INVALID, "[-1, 3) is outside"),
    "end past the last unit": (lambda i: tensor_request(i, 8, 13), INVALID, "[8, 13) is outside"),
    "start after end": (lambda i: tensor_request(i, 5, 3), INVALID, "[5, 3) is outside"),
    "empty range": (lambda i: tensor_request(i, 4, 4), INVALID, "[4, 4) is empty"),
    "wrong shape": (
        lambda i: tensor_request(i, 8, 12, torch.zeros(1, 128, 13, 13)),
        INVALID,
        "takes shape ['B', 256, 13, 13], got [1, 128, 13, 13]",
    ),
    "wrong dtype": (
        lambda i: tensor_request(i, 8, 12, torch.zeros(1, 256, 13, 13, dtype=torch.float16)),
        INVALID,
        "takes float32, got float16",
    ),
    "corrupt frame": (lambda i: _with_frame(i, _corrupt_frame()), INVALID, "CRC-32"),
    "truncated frame": (lambda i: _with_frame(i, b"CDNF\x01"), INVALID, "truncated frame"),
    "not a frame": (lambda i: _with_frame(i, b"\x89PNG" + bytes(40)), INVALID, "bad magic"),
    "tensor for unit 0": (lambda i: tensor_request(i, 0, 3), INVALID, "takes encoded images"),
    "images for unit 5": (
        lambda i: cloud_pb2.ExecuteRequest(
            model=i.model,
            weights_hash=i.weights_hash,
            start=5,
            end=6,
            images=tensor_pb2.ImageBatch(images=[b"x"]),
        ),
        INVALID,
        "not images",
    ),
    "undecodable image": (
        lambda i: cloud_pb2.ExecuteRequest(
            model=i.model,
            weights_hash=i.weights_hash,
            start=0,
            end=2,
            images=tensor_pb2.ImageBatch(images=[b"not an image"]),
        ),
        INVALID,
        "cannot decode image",
    ),
    "bad reply codec": (
        lambda i: tensor_request(i, 8, 12, reply_codec=tensor_pb2.CodecOptions(level=99)),
        INVALID,
        "zstd level",
    ),
    # zstd bombs: a few KB inflating to 64 MB behind a frame claiming 173 kB
    "zstd bomb, zstd header honest": (
        lambda i: _with_frame(i, zstd_frame(CONV5, zstd_bomb(BOMB))),
        INVALID,
        "zstd content size 67108864 differs",
    ),
    "zstd bomb, no zstd content size": (
        lambda i: _with_frame(i, zstd_frame(CONV5, zstd_bomb(BOMB, content_size=False))),
        INVALID,
        "zstd content size",
    ),
    "zstd bomb, zstd header lying": (
        lambda i: _with_frame(i, zstd_frame(CONV5, zstd_bomb_lying(BOMB, 4 * 256 * 13 * 13))),
        INVALID,
        "zstd payload",  # its blocks: far more than the claimed size needs (never inflated)
    ),
    "zstd frame claiming more than the limit": (
        lambda i: _with_frame(i, zstd_frame((4096, 256, 13, 13), zstd_bomb(1 << 20))),
        INVALID,
        "more than the limit",
    ),
    "image claiming 20000x20000 pixels": (
        lambda i: cloud_pb2.ExecuteRequest(
            model=i.model,
            weights_hash=i.weights_hash,
            start=0,
            end=2,
            images=tensor_pb2.ImageBatch(images=[png_header_claiming(20000, 20000)]),
        ),
        INVALID,
        "pixels",
    ),
    "1x1 image": (
        lambda i: cloud_pb2.ExecuteRequest(
            model=i.model,
            weights_hash=i.weights_hash,
            start=0,
            end=2,
            images=tensor_pb2.ImageBatch(images=[png(1, 1)]),
        ),
        INVALID,
        "at least 8",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_refusal_then_still_serving(
    case: str, stub: cloud_pb2_grpc.CloudServerStub, info: common_pb2.ServiceInfo
) -> None:
    make, code, fragment = CASES[case]
    request = make(info)
    with pytest.raises(grpc.RpcError) as caught:
        stub.Execute(request, timeout=30)
    assert caught.value.code() == code, caught.value.details()
    assert fragment in caught.value.details()
    assert stub.Execute(good_request(info), timeout=30).output.frame  # still serving


def test_oversized_frame_is_refused_before_allocating(
    stub: cloud_pb2_grpc.CloudServerStub, info: common_pb2.ServiceInfo
) -> None:
    request = tensor_request(info, 8, 12)
    header = bytearray(request.tensor.frame[: 8 + 8 * 4 + 12])
    # claim 2**20 x 256 x 13 x 13 floats (~180 GB) with a tiny payload
    header[8:16] = (1 << 20).to_bytes(8, "little")
    header[8 + 32 : 8 + 40] = (4 * (1 << 20) * 256 * 13 * 13).to_bytes(8, "little")
    request.tensor.frame = bytes(header)
    with pytest.raises(grpc.RpcError) as caught:
        stub.Execute(request, timeout=30)
    assert caught.value.code() == INVALID and "more than the limit" in caught.value.details()


def test_profile_measures_every_unit(
    stub: cloud_pb2_grpc.CloudServerStub, info: common_pb2.ServiceInfo, chelsea: bytes
) -> None:
    reply = stub.Profile(
        cloud_pb2.ProfileRequest(
            model=info.model, weights_hash=info.weights_hash, images=[chelsea], repeats=2, warmup=1
        ),
        timeout=60,
    )
    profile = serde.profile_reply_from_proto(reply)
    assert [u.name for u in profile.units] == [u.name for u in info.units]
    assert all(u.latency_ms.median > 0 for u in profile.units)
    assert profile.weights_hash == info.weights_hash
    assert profile.schema == "collabdnn.profile/1" and profile.side == "cloud"
    assert all(u.latency_ms.repeats == 2 for u in profile.units)
    assert profile.host["images"] == 1 and isinstance(profile.host["cores"], int | None)


def test_profile_refuses_without_images_or_with_wrong_weights(
    stub: cloud_pb2_grpc.CloudServerStub, info: common_pb2.ServiceInfo
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        stub.Profile(
            cloud_pb2.ProfileRequest(model=info.model, weights_hash=info.weights_hash), timeout=10
        )
    assert caught.value.code() == INVALID
    with pytest.raises(grpc.RpcError) as caught:
        stub.Profile(
            cloud_pb2.ProfileRequest(model=info.model, weights_hash="x", images=[b"x"]), timeout=10
        )
    assert caught.value.code() == PRECONDITION
