"""Dynamic batching through a real cloud process (``--batch-max 4``): concurrent
Execute calls for the same bit-exact range share one batch and each reply says so,
with the bits of a batch-1 run; without ``--batch-inexact`` every reply is bit-exact
(fc units, not bit-exact on this CPU, run alone); a call whose deadline passes while
it waits for its batch ends DEADLINE_EXCEEDED alone."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
import torch

from collabdnn.codec import CodecConfig, decode, encode
from collabdnn.services import ExecuteRequest
from collabdnn.testbed.procs import Service, start_healthy
from collabdnn.transport.channels import open_channel
from collabdnn.wire.stubs import CloudStub
from tests.common import COMMON, stop_cleanly

pytestmark = pytest.mark.slow  # a cloud of its own, measuring its units at start


@pytest.fixture(scope="module")
def batching_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = start_healthy(
        "cloud", [*COMMON, "--batch-max", "4", "--batch-timeout-ms", "500"],
        log_dir=tmp_path_factory.mktemp("batching"),
    )  # fmt: skip
    yield service
    stop_cleanly(service)


def request(alexnet, x: torch.Tensor, start: int, end: int) -> ExecuteRequest:
    return ExecuteRequest(
        alexnet.name, alexnet.weights_hash, start, end, CodecConfig(), tensor=encode(x)
    )


def test_concurrent_calls_share_a_batch_with_batch_one_bits(
    batching_cloud: Service, alexnet, chelsea: bytes
) -> None:
    x = alexnet.run(0, 1, [chelsea])
    pool3 = alexnet.run(1, 9, x)
    with open_channel(batching_cloud.address) as channel:
        stub = CloudStub(channel)
        pending = [stub.execute_async(request(alexnet, x, 1, 9), timeout=30) for _ in range(4)]
        replies = [p.result(timeout=30) for p in pending]
        head = [stub.execute_async(request(alexnet, pool3, 9, 12), timeout=30) for _ in range(2)]
        head_replies = [p.result(timeout=30) for p in head]
    assert max(r.batching.requests for r in replies) >= 2, "calls arriving together batch"
    for reply in replies:
        assert reply.batching.bit_exact
        assert torch.equal(decode(reply.output), pool3)
    for reply in head_replies:  # fc units (not bit-exact here) batch only with --batch-inexact
        assert reply.batching.bit_exact
        assert torch.equal(decode(reply.output), alexnet.run(9, 12, pool3))
    log = batching_cloud.log_path.read_text() if batching_cloud.log_path else ""
    assert "dynamic batching: up to 4 rows" in log and "bit-exact when batched" in log


def test_a_deadline_inside_a_batch_is_the_callers_own(
    batching_cloud: Service, alexnet, chelsea: bytes
) -> None:
    x = alexnet.run(0, 1, [chelsea])
    with open_channel(batching_cloud.address) as channel:
        stub = CloudStub(channel)
        short = stub.execute_async(request(alexnet, x, 1, 9), timeout=0.2)  # waits 0.5 s
        long = stub.execute_async(request(alexnet, x, 1, 9), timeout=30)
        with pytest.raises(grpc.RpcError) as caught:
            short.result(timeout=30)
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert torch.equal(decode(long.result(timeout=30).output), alexnet.run(1, 9, x))
