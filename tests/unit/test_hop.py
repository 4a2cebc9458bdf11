"""What one cloud hop costs the runtime, beyond the link and the units (issue 18).

In-process: a real cloud servicer on a gRPC server on 127.0.0.1 and a
:class:`MobileAgent` calling it. The agent keeps one client per channel, the cloud
samples its CPU load at most every half second, and the server time it reports covers
everything the handler does (decoding, the units, encoding, the reply).
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
import torch

from cloud_server.servicer import CloudServicer, CpuSampler
from collabdnn.codec import CodecConfig, encode
from collabdnn.model.split_model import SplitModel
from collabdnn.placement import AssignedPlan, Placement
from collabdnn.services import ExecuteRequest
from collabdnn.transport.channels import ChannelPool
from collabdnn.wire.proto import cloud_pb2_grpc
from collabdnn.wire.stubs import CloudStub
from mobile_agent.agent import AgentSettings, MobileAgent
from mobile_agent.cloud_client import CLOUD_CHANNEL_OPTIONS

MCM = Placement.parse("MMMCCCCCCMMM")


@pytest.fixture(scope="module")
def cloud(alexnet: SplitModel) -> Iterator[str]:
    torch.set_num_threads(1)
    server = grpc.server(futures.ThreadPoolExecutor(4))
    servicer = CloudServicer()
    servicer.model = alexnet
    cloud_pb2_grpc.add_CloudServerServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(None)


def test_the_agent_keeps_one_cloud_client_per_channel(
    alexnet: SplitModel, cloud: str, cat_bytes: bytes
) -> None:
    with ChannelPool(options=CLOUD_CHANNEL_OPTIONS) as pool:
        agent = MobileAgent(alexnet, AssignedPlan(MCM), pool, AgentSettings(cloud=cloud))
        client = agent.cloud()
        results = [agent.classify(cat_bytes) for _ in range(2)]
        assert not any(r.fallback for r in results) and results[0].top == results[1].top
        assert agent.cloud() is client and client.channel is pool.get(cloud)
        assert agent.link.estimate().observations == 2  # both calls fitted (off the path)


def test_server_time_covers_decoding_the_units_and_encoding(
    alexnet: SplitModel, cloud: str, cat_bytes: bytes
) -> None:
    x = alexnet.run(0, 3, cat_bytes)
    request = ExecuteRequest(
        alexnet.name, alexnet.weights_hash, 3, 9, CodecConfig(), encode(x), None
    )
    with grpc.insecure_channel(cloud) as channel:
        stub = CloudStub(channel)
        for _ in range(3):
            reply = stub.execute(request, timeout=30)
            inside = reply.decode_ms + reply.encode_ms + sum(u.compute_ms for u in reply.units)
            assert reply.server_ms >= inside > 0


def test_the_cpu_load_is_sampled_at_most_every_period() -> None:
    rare, often = CpuSampler(every_s=3600.0), CpuSampler(every_s=0.0)
    at = rare._at
    assert [rare.percent() for _ in range(5)] == [0.0] * 5 and rare._at == at
    often.percent()
    assert often._at > at and 0.0 <= often.percent() <= 100.0 * 1024
