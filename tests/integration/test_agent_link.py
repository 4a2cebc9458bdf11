"""The agent's emulated link: cloud calls are delayed, estimated, and labelled."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from collabdnn.placement import Placement
from collabdnn.testbed.procs import Service, start_healthy
from collabdnn.transport.channels import open_channel
from collabdnn.wire.proto import common_pb2, mobile_pb2_grpc
from mobile_agent.client import classify
from tests.common import COMMON, stop_cleanly


@pytest.fixture(scope="module")
def emulated_agent(cloud: Service, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = start_healthy(
        "mobile", [*COMMON, "--cloud", cloud.address, "--emulate-up-mbps", "40",
                   "--emulate-down-mbps", "40", "--emulate-rtt-ms", "20", "--no-probe"],
        log_dir=tmp_path_factory.mktemp("emulated"))  # fmt: skip
    yield service
    stop_cleanly(service)


def test_emulated_link_delays_labels_and_is_estimated(
    emulated_agent: Service, chelsea: bytes
) -> None:
    results = [
        classify(emulated_agent.address, [chelsea], Placement.parse("cloud"))[0] for _ in range(3)
    ]
    airtime_ms = 8 * len(chelsea) / 40e3 + 20.0  # the photo up at 40 Mbit/s, plus the RTT
    for result in results:
        assert result.emulated_link and not result.fallback
        assert result.latency_ms >= airtime_ms
        assert result.mobile_energy_mj is not None and result.mobile_energy_mj > 0
    (local,) = classify(emulated_agent.address, [chelsea], Placement.parse("mobile"))
    assert not local.emulated_link  # nothing crossed the link
    with open_channel(emulated_agent.address) as channel:
        info = mobile_pb2_grpc.MobileAgentStub(channel).Info(common_pb2.InfoRequest(), timeout=5)
    assert info.link.emulated and info.link.observations >= 3
    assert 10.0 <= info.link.up_mbps <= 80.0  # the emulated 40 Mbit/s, not the loopback
