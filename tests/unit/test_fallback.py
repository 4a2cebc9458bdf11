"""The agent finishes locally when the cloud fails, and the breaker keeps it off a bad cloud.

In-process and fast: a real gRPC server on 127.0.0.1 whose cloud servicer can be told
to fail (an error code, a slow reply), and a :class:`MobileAgent` calling it through
the same channel options as the service. The end-to-end version, with the cloud killed
and restarted as a subprocess, is in test_failure_e2e.py.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
import torch
from PIL import Image

from cloud_server.servicer import CloudServicer
from collabdnn.errors import ImageError
from collabdnn.model.split_model import SplitModel
from collabdnn.placement import AssignedPlan, Placement, spec_of
from collabdnn.transport.breaker import CLOSED, OPEN
from collabdnn.transport.channels import ChannelPool
from collabdnn.wire.proto import cloud_pb2, cloud_pb2_grpc
from mobile_agent.agent import (
    MISMATCH,
    UNREACHABLE,
    VERIFIED,
    AgentSettings,
    MobileAgent,
)
from mobile_agent.cloud_client import CLOUD_CHANNEL_OPTIONS

MCM = Placement.parse("MMMCCCCCCMMM")  # mobile -> cloud -> mobile
CLOUD_FIRST = Placement.parse("cloud")  # the image itself goes to the cloud
RESET_S = 0.3


class FlakyCloud(CloudServicer):
    """A real cloud servicer whose Execute can be made to fail, or to hold its reply
    until the test releases it."""

    def __init__(self, model: SplitModel) -> None:
        super().__init__()
        self.model = model
        self.fail_with: grpc.StatusCode | None = None
        self.hold: threading.Event | None = None
        self.calls = 0
        self.answered = 0

    def Execute(
        self, request: cloud_pb2.ExecuteRequest, context: grpc.ServicerContext
    ) -> cloud_pb2.ExecuteReply:
        self.calls += 1
        if self.hold is not None:
            self.hold.wait(30)  # a bound that only stops a hung test
        if self.fail_with is not None:
            context.abort(self.fail_with, "injected failure")
        reply = super().Execute(request, context)
        self.answered += 1
        return reply


@pytest.fixture(scope="module")
def model(alexnet: SplitModel) -> SplitModel:
    torch.set_num_threads(1)
    return alexnet


@pytest.fixture()
def cloud(model: SplitModel) -> Iterator[tuple[FlakyCloud, str]]:
    server = grpc.server(futures.ThreadPoolExecutor(4))
    servicer = FlakyCloud(model)
    cloud_pb2_grpc.add_CloudServerServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield servicer, f"127.0.0.1:{port}"
    server.stop(None)


def make_agent(
    model: SplitModel, address: str, **settings: float
) -> tuple[MobileAgent, ChannelPool]:
    pool = ChannelPool(options=CLOUD_CHANNEL_OPTIONS)
    agent = MobileAgent(
        model,
        AssignedPlan(MCM),
        pool,
        AgentSettings(cloud=address, breaker_reset_s=RESET_S, **settings),
    )
    return agent, pool


@pytest.fixture(scope="module")
def image() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 30, 90)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def reference(model: SplitModel, image: bytes) -> torch.Tensor:
    return model.run(0, model.num_units, image)


def wait_until(predicate, timeout_s: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_an_error_mid_request_finishes_locally_then_the_breaker_resumes(
    model: SplitModel, cloud: tuple[FlakyCloud, str], image: bytes, reference: torch.Tensor
) -> None:
    servicer, address = cloud
    agent, pool = make_agent(model, address)
    with pool:
        first = agent.classify(image, return_logits=True)
        assert not first.fallback and agent.cloud_state == VERIFIED
        servicer.fail_with = grpc.StatusCode.INTERNAL
        failed = agent.classify(image, return_logits=True)
        # Units 0-2 ran here before the call; 3-11 ran here after it failed.
        assert failed.fallback and spec_of(failed.placement) == "M" * 12
        assert failed.top == first.top and failed.bytes_up == 0
        assert all(u.compute_ms > 0 for u in failed.units)
        assert agent.breaker.state == OPEN
        calls = servicer.calls
        assert agent.classify(image).fallback  # open: the cloud is not even tried
        assert servicer.calls == calls
        servicer.fail_with = None
        # After RESET_S one background probe (Info) closes the breaker again.
        assert wait_until(lambda: not agent.classify(image).fallback, 10 * RESET_S + 2)
        assert agent.breaker.state == CLOSED


def test_a_missed_deadline_finishes_locally(
    model: SplitModel, cloud: tuple[FlakyCloud, str], image: bytes
) -> None:
    servicer, address = cloud
    agent, pool = make_agent(model, address, timeout_s=0.2)
    servicer.hold = threading.Event()  # the cloud answers only once the test says so
    try:
        with pool:
            result = agent.classify(image)
            # The agent gave up at its deadline: it returned while the cloud still held
            # the call (had it waited for the reply, it would have one and no fallback).
            assert servicer.calls == 1 and servicer.answered == 0
            assert result.fallback and spec_of(result.placement) == "M" * 12
            assert agent.breaker.state == OPEN
    finally:
        servicer.hold.set()


def test_a_refusal_of_the_request_leaves_the_breaker_closed(
    model: SplitModel, cloud: tuple[FlakyCloud, str], image: bytes
) -> None:
    servicer, address = cloud
    agent, pool = make_agent(model, address)
    with pool:
        servicer.fail_with = grpc.StatusCode.INVALID_ARGUMENT
        assert agent.classify(image).fallback
        assert agent.breaker.state == CLOSED and agent.cloud_state == VERIFIED


def test_a_bad_image_is_the_clients_fault_not_a_fallback(
    model: SplitModel, cloud: tuple[FlakyCloud, str]
) -> None:
    servicer, address = cloud
    agent, pool = make_agent(model, address)
    with pool:
        # The cloud refuses it (INVALID_ARGUMENT); the agent's own decoding refuses it too.
        with pytest.raises(ImageError):
            agent.classify(b"not an image", CLOUD_FIRST)
        assert servicer.calls == 1 and agent.breaker.state == CLOSED


def test_a_weights_refusal_stops_offloading(
    model: SplitModel, cloud: tuple[FlakyCloud, str], image: bytes
) -> None:
    servicer, address = cloud
    agent, pool = make_agent(model, address)
    with pool:
        servicer.fail_with = grpc.StatusCode.FAILED_PRECONDITION
        assert agent.classify(image).fallback
        assert agent.cloud_state == MISMATCH and agent.breaker.state == OPEN


def test_no_cloud_at_all_costs_no_wait(
    model: SplitModel, image: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket_port() as port:  # a port nobody listens on
        agent, pool = make_agent(model, f"127.0.0.1:{port}", info_timeout_s=1.0)
        with pool:
            result = agent.classify(image)
            assert result.fallback and agent.cloud_state == UNREACHABLE
            assert agent.breaker.state != CLOSED
            # Once the cloud is known to be down, a request never dials it (and so never
            # waits on it); only the breaker's background probe may.
            dialled: list[threading.Thread] = []
            real = agent.cloud

            def spy():  # type: ignore[no-untyped-def]
                dialled.append(threading.current_thread())
                return real()

            monkeypatch.setattr(agent, "cloud", spy)
            for _ in range(3):
                assert agent.classify(image).fallback
            assert threading.current_thread() not in dialled, "a request dialled the cloud"
            assert agent.cloud_state == UNREACHABLE


def test_concurrent_requests_during_an_outage_all_return(
    model: SplitModel, cloud: tuple[FlakyCloud, str], image: bytes
) -> None:
    servicer, address = cloud
    agent, pool = make_agent(model, address)
    results: list[bool] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(3):
            outcome = agent.classify(image).fallback
            with lock:
                results.append(outcome)

    with pool:
        agent.classify(image)
        servicer.fail_with = grpc.StatusCode.UNAVAILABLE
        threads = [threading.Thread(target=worker) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert len(results) == 12 and all(results)


class socket_port:
    """A free TCP port on 127.0.0.1, held (bound, not listening) while in use."""

    def __enter__(self) -> int:
        import socket

        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        return self._socket.getsockname()[1]

    def __exit__(self, *exc: object) -> None:
        self._socket.close()
