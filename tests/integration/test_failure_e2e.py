"""Failure behaviour with real services as subprocesses (docs/failure.md).

- The cloud is SIGKILLed during a stream of classifications: every one returns, those
  after the kill with ``fallback``; a cloud restarted on the same port is used again
  within the circuit breaker's period.
- Bad images sent to the agent's Classify are INVALID_ARGUMENT, whichever side runs
  preprocessing, and the agent keeps serving.
- ``--max-queue 1``: concurrent Execute calls beyond it are refused RESOURCE_EXHAUSTED
  quickly, and the cloud keeps serving.
- TLS and a token end to end: a classification through agent and cloud works; a
  plaintext call, a call without a token and one with a wrong token are refused; an
  agent whose token the cloud refuses falls back and says so.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import torch

from collabdnn.codec import encode
from collabdnn.placement import Placement, spec_of
from collabdnn.testbed.certs import CertPair
from collabdnn.testbed.procs import Service, start_all_healthy, start_healthy
from collabdnn.transport.channels import check_health, open_channel
from collabdnn.transport.security import SecurityConfig
from collabdnn.wire import serde
from collabdnn.wire.proto import (
    cloud_pb2,
    cloud_pb2_grpc,
    common_pb2,
    mobile_pb2,
    mobile_pb2_grpc,
    tensor_pb2,
)
from tests.badinputs import jpeg, png, png_header_claiming
from tests.common import COMMON, make_pki, stop_cleanly

MCM = "MMMCCCCCCMMM"  # a cloud-using placement whose upload is a small activation
RESET_S = 1.0
# The stream: calls while the cloud is up, then after its SIGKILL (enough for several
# breaker periods of fallbacks: the breaker must keep the agent answering locally).
KILLED_AT, AFTER_KILL = 20, 40


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def classify_request(image: bytes, spec: str | None = None) -> mobile_pb2.ClassifyRequest:
    request = mobile_pb2.ClassifyRequest(images=[image], top_k=5)
    if spec:
        request.placement.CopyFrom(serde.placement_to_proto(Placement.parse(spec)))
    return request


# --------------------------------------------------------------------- cloud killed


@pytest.mark.slow
def test_cloud_killed_mid_stream_then_restarted_on_the_same_port(tmp_path: Path) -> None:
    port = free_port()
    cloud_args = [*COMMON, "--port", str(port)]
    cloud = start_healthy("cloud", cloud_args, log_dir=tmp_path)
    agent = start_healthy(
        "mobile",
        [
            *COMMON,
            "--cloud",
            f"127.0.0.1:{port}",
            "--placement",
            MCM,
            "--breaker-reset-s",
            str(RESET_S),
            "--timeout",
            "10",
        ],
        log_dir=tmp_path,
    )
    restarted: Service | None = None
    image = png(64, 64)
    try:
        with open_channel(agent.address) as channel:
            stub = mobile_pb2_grpc.MobileAgentStub(channel)
            fallbacks: list[bool] = []
            for index in range(KILLED_AT + AFTER_KILL):
                if index == KILLED_AT:
                    os.kill(cloud.pid, signal.SIGKILL)  # type: ignore[arg-type]
                    cloud.stop()  # reaps it
                reply = stub.Classify(classify_request(image), timeout=30)
                (result,) = reply.results
                assert len(result.top) == 5
                fallbacks.append(result.fallback)
            assert len(fallbacks) == KILLED_AT + AFTER_KILL
            assert not any(fallbacks[:KILLED_AT]), "the cloud was up: nothing should fall back"
            assert all(fallbacks[KILLED_AT:]), "the cloud was dead: everything must fall back"
            assert "finishing locally" in agent.log_tail(200)

            restarted = start_healthy("cloud", cloud_args, name="cloud-again", log_dir=tmp_path)
            assert restarted.port == port
            back = time.monotonic()
            resumed_after = None
            while time.monotonic() - back < RESET_S + 10:
                (result,) = stub.Classify(classify_request(image), timeout=30).results
                if not result.fallback:
                    resumed_after = time.monotonic() - back
                    break
                time.sleep(0.05)
            assert resumed_after is not None, f"never resumed offloading:\n{agent.log_tail()}"
            # The breaker probes every RESET_S (plus a reconnect back-off of at most 1 s).
            assert resumed_after < RESET_S + 2.5, resumed_after
            assert spec_of(serde.result_from_proto(result).placement) == MCM
            print(f"offloading resumed {resumed_after:.2f} s after the cloud was back")
    finally:
        cloud.stop()
        if restarted is not None:
            stop_cleanly(restarted)
        stop_cleanly(agent)


# ------------------------------------------------------------- the caller's deadline


def test_a_cloud_call_never_outlives_its_callers_deadline(tmp_path: Path) -> None:
    """A hung cloud (SIGSTOP) and a client with a 1 s deadline: the agent's Execute call
    (budget and --timeout 20 s) ends with the caller's deadline, the request's place is
    freed at once, and the cut blames nobody: the next request offloads again."""
    cloud = start_healthy("cloud", COMMON, log_dir=tmp_path)
    agent = start_healthy(
        "mobile",
        [*COMMON, "--cloud", cloud.address, "--placement", MCM, "--timeout", "20",
         "--call-budget-floor-ms", "20000", "--health-watch-s", "0"],
        log_dir=tmp_path,
    )  # fmt: skip
    image = png(64, 64)
    stopped = False
    try:
        with open_channel(agent.address) as channel:
            stub = mobile_pb2_grpc.MobileAgentStub(channel)
            (result,) = stub.Classify(classify_request(image), timeout=30).results
            assert not result.fallback, "the cloud is up: the warm-up should offload"
            os.kill(cloud.pid, signal.SIGSTOP)  # type: ignore[arg-type]
            stopped = True
            begin = time.monotonic()
            with pytest.raises(grpc.RpcError) as caught:
                stub.Classify(classify_request(image), timeout=1.0)
            assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            freed_after = None
            while time.monotonic() - begin < 10:
                info = stub.Info(common_pb2.InfoRequest(), timeout=5)
                if serde.agent_info_from_proto(info).info.load.in_flight == 0:
                    freed_after = time.monotonic() - begin
                    break
                time.sleep(0.05)
            assert freed_after is not None and freed_after < 4, (
                f"the agent's call ran on past its caller's deadline:\n{agent.log_tail()}"
            )
            os.kill(cloud.pid, signal.SIGCONT)  # type: ignore[arg-type]
            stopped = False
            (result,) = stub.Classify(classify_request(image), timeout=30).results
            assert not result.fallback, f"the breaker was told:\n{agent.log_tail()}"
            print(f"the agent's request ended {freed_after:.2f} s after it came")
    finally:
        if stopped:
            os.kill(cloud.pid, signal.SIGCONT)  # type: ignore[arg-type]
        stop_cleanly(agent)
        stop_cleanly(cloud)


# ------------------------------------------------------------- bad images, agent

BAD_IMAGES = {
    "empty bytes": (b"", "empty image"),
    "truncated JPEG": (jpeg(96, 96)[:-2000], "truncated or corrupt"),
    "1x1 image": (png(1, 1), "at least 8"),
    "PNG header claiming 20000x20000": (png_header_claiming(20000, 20000), "pixels"),
    "not an image": (
        b"plain text, no image " + bytes(range(256)) * 4,
        "no format Pillow recognises",
    ),
}


@pytest.fixture(scope="module")
def agent_stub(agent: Service) -> Iterator[mobile_pb2_grpc.MobileAgentStub]:
    with open_channel(agent.address) as channel:
        yield mobile_pb2_grpc.MobileAgentStub(channel)


@pytest.mark.parametrize("spec", ["mobile", "cloud"])
@pytest.mark.parametrize("case", list(BAD_IMAGES))
def test_agent_refuses_bad_images_then_still_serves(
    case: str, spec: str, agent_stub: mobile_pb2_grpc.MobileAgentStub
) -> None:
    data, fragment = BAD_IMAGES[case]
    with pytest.raises(grpc.RpcError) as caught:
        agent_stub.Classify(classify_request(data, spec), timeout=30)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    assert fragment in caught.value.details()
    (result,) = agent_stub.Classify(classify_request(png(32, 32), spec), timeout=30).results
    assert not result.fallback and len(result.top) == 5


# ------------------------------------------------------------------ bounded queue


def test_max_queue_refuses_quickly_and_keeps_serving(tmp_path: Path) -> None:
    cloud = start_healthy(  # batches of 16 (over the default --max-batch) take long
        "cloud",
        [*COMMON, "--max-queue", "1", "--workers", "1", "--max-batch", "16"],
        log_dir=tmp_path,
    )
    try:
        with open_channel(cloud.address) as channel:
            stub = cloud_pb2_grpc.CloudServerStub(channel)
            info = stub.Info(common_pb2.InfoRequest(), timeout=10)
            # A batch of 16 through units [1, 12): long enough for the calls to overlap.
            batch = torch.zeros(16, 3, 224, 224)
            request = cloud_pb2.ExecuteRequest(
                model=info.model,
                weights_hash=info.weights_hash,
                start=1,
                end=12,
                tensor=tensor_pb2.Tensor(frame=encode(batch)),
            )
            start = threading.Barrier(6)
            outcomes: list[tuple[grpc.StatusCode, float]] = []
            lock = threading.Lock()

            def call() -> None:
                start.wait(10)
                begin = time.perf_counter()
                try:
                    stub.Execute(request, timeout=60)
                    code = grpc.StatusCode.OK
                except grpc.RpcError as exc:
                    code = exc.code()
                with lock:
                    outcomes.append((code, time.perf_counter() - begin))

            threads = [threading.Thread(target=call) for _ in range(6)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(120)
            codes = [code for code, _ in outcomes]
            assert len(codes) == 6 and set(codes) <= {
                grpc.StatusCode.OK,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
            }
            refused = [s for code, s in outcomes if code == grpc.StatusCode.RESOURCE_EXHAUSTED]
            served = [s for code, s in outcomes if code == grpc.StatusCode.OK]
            assert refused and served, outcomes
            assert max(refused) < min(served), outcomes  # refused before any finished
            assert check_health(cloud.address) == "SERVING"
            assert stub.Execute(request, timeout=60).output.frame  # still serving
        assert "refused" in cloud.log_tail(50)
    finally:
        stop_cleanly(cloud)


# --------------------------------------------------------------------- TLS + token

TOKEN = "tok-" + "x" * 20


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CertPair]:
    return make_pki(tmp_path_factory.mktemp("pki"), "cloud", "agent", "client")


def config(pki: dict[str, CertPair], who: str, token: str | None = TOKEN) -> SecurityConfig:
    pair = pki[who]
    return SecurityConfig(pair.cert, pair.key, pki["ca"].cert, token)


@pytest.mark.slow
def test_tls_and_token_end_to_end(pki: dict, tmp_path: Path) -> None:
    cloud = start_healthy("cloud", COMMON, log_dir=tmp_path, security_config=config(pki, "cloud"))
    # An agent whose token the cloud does not accept (it must run locally and say why),
    # started together with the good one: neither depends on the other.
    other = config(pki, "agent", token="not-the-clouds")
    agents: list[Service] = []
    both = [
        Service("mobile", [*COMMON, "--cloud", cloud.address, "--placement", MCM],
                log_dir=tmp_path, security_config=config(pki, "agent")),
        Service("mobile", [*COMMON, "--cloud", cloud.address, "--placement", MCM],
                name="mobile-wrong-token", log_dir=tmp_path, security_config=other),
    ]  # fmt: skip
    try:
        agents = start_all_healthy(both)
        agent, stranger = agents
        image = png(64, 64)

        def classify(
            security: SecurityConfig, target: str = agent.address
        ) -> mobile_pb2.ClassifyReply:
            with open_channel(target, security_config=security) as channel:
                stub = mobile_pb2_grpc.MobileAgentStub(channel)
                return stub.Classify(classify_request(image), timeout=30)

        (result,) = classify(config(pki, "client")).results
        assert not result.fallback and result.bytes_up > 0
        assert spec_of(serde.result_from_proto(result).placement) == MCM

        refusals = {
            "plaintext": SecurityConfig(insecure=True, token=TOKEN),
            "no token": config(pki, "client", token=None),
            "wrong token": config(pki, "client", token="wrong"),
            "no client certificate": SecurityConfig(ca=pki["ca"].cert, token=TOKEN),
        }
        for name, security in refusals.items():
            with pytest.raises(grpc.RpcError) as caught:
                classify(security)
            assert caught.value.code() in {
                grpc.StatusCode.UNAUTHENTICATED,
                grpc.StatusCode.UNAVAILABLE,
            }, name
            if "token" in name:
                assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED, name
        assert not classify(config(pki, "client")).results[0].fallback  # still serving

        reply = classify(config(pki, "client", token="not-the-clouds"), stranger.address)
        assert reply.results[0].fallback
        assert "REFUSED this agent (UNAUTHENTICATED" in stranger.log_tail(100)
        with open_channel(stranger.address, security_config=other) as channel:
            info = mobile_pb2_grpc.MobileAgentStub(channel).Info(
                common_pb2.InfoRequest(), timeout=10
            )
        assert info.cloud_state == "refused"
    finally:
        for service in agents:
            stop_cleanly(service)
        stop_cleanly(cloud)
