"""Fallback timings: what a failing cloud costs a request, and how soon offloading resumes.

In process, as tests/unit/test_fallback.py (which checks the behaviour; this measures
the time): a real cloud servicer on a gRPC server on 127.0.0.1 that can hold or fail
its replies, and a MobileAgent (alexnet, seed:0, one torch thread, placement
``MMMCCCCCCMMM``) calling it with the service's channel options. Cases:

- local only: the whole model on the agent, for reference;
- missed deadline: Execute's deadline is 0.2 s and the cloud holds its reply;
- cloud unreachable: a port nobody listens on; the first request (identity check) and
  the requests after it, which must not wait on the cloud;
- resume: the cloud fails once (the breaker opens for 0.3 s), then recovers; the time
  from its recovery to the first request offloaded again.

Writes benchmarks/results/fallback.{json,md}.

    python -m benchmarks.bench_fallback [--repeats 5]
"""

from __future__ import annotations

import argparse
import logging
import socket
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import torch

from benchmarks.common import markdown_table, median, write_results
from cloud_server.servicer import CloudServicer
from collabdnn.cli.output import format_table
from collabdnn.model.split_model import SplitModel, load_model
from collabdnn.placement import AssignedPlan, Placement
from collabdnn.transport.channels import ChannelPool
from collabdnn.wire.proto import cloud_pb2_grpc
from mobile_agent.agent import AgentSettings, MobileAgent
from mobile_agent.cloud_client import CLOUD_CHANNEL_OPTIONS

if TYPE_CHECKING:
    from collabdnn.wire import messages

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "chelsea.png"
MCM = Placement.parse("MMMCCCCCCMMM")
DEADLINE_S = 0.2
RESET_S = 0.3


class FlakyCloud(CloudServicer):
    def __init__(self, model: SplitModel) -> None:
        super().__init__()
        self.model = model
        self.fail_with: grpc.StatusCode | None = None
        self.hold: threading.Event | None = None

    def Execute(
        self, request: messages.ExecuteRequest, context: grpc.ServicerContext
    ) -> messages.ExecuteReply:
        if self.hold is not None:
            self.hold.wait(30)
        if self.fail_with is not None:
            context.abort(self.fail_with, "injected failure")
        return self.serve(request, context)

    serve = CloudServicer.Execute  # the servicer's own (a server-side method, no deadline)


@contextmanager
def serving(model: SplitModel) -> Iterator[tuple[FlakyCloud, str]]:
    server = grpc.server(futures.ThreadPoolExecutor(4))
    servicer = FlakyCloud(model)
    cloud_pb2_grpc.add_CloudServerServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield servicer, f"127.0.0.1:{port}"
    finally:
        if servicer.hold is not None:
            servicer.hold.set()
        server.stop(None)


@contextmanager
def agent_for(model: SplitModel, address: str, **settings: Any) -> Iterator[MobileAgent]:
    with ChannelPool(options=CLOUD_CHANNEL_OPTIONS) as pool:
        yield MobileAgent(
            model,
            AssignedPlan(MCM),
            pool,
            AgentSettings(cloud=address, breaker_reset_s=RESET_S, **settings),
        )


def timed_ms(agent: MobileAgent, image: bytes, placement: Placement | None = None) -> float:
    begin = time.perf_counter()
    agent.classify(image, placement)
    return (time.perf_counter() - begin) * 1e3


def local_only(model: SplitModel, image: bytes, repeats: int) -> list[float]:
    with agent_for(model, "") as agent:
        agent.classify(image, Placement.parse("mobile"))
        return [timed_ms(agent, image, Placement.parse("mobile")) for _ in range(repeats)]


def missed_deadline(model: SplitModel, image: bytes, repeats: int) -> list[float]:
    times = []
    with serving(model) as (servicer, address):
        for _ in range(repeats):
            servicer.hold = None
            with agent_for(model, address, timeout_s=DEADLINE_S) as agent:
                assert not agent.classify(image).fallback  # verified, warm
                servicer.hold = threading.Event()
                begin = time.perf_counter()
                assert agent.classify(image).fallback
                times.append((time.perf_counter() - begin) * 1e3)
                servicer.hold.set()
    return times


def unreachable(model: SplitModel, image: bytes, repeats: int) -> tuple[list[float], list[float]]:
    first: list[float] = []
    later: list[float] = []
    for _ in range(repeats):
        with socket.socket() as sock:  # bound, not listening: connections are refused
            sock.bind(("127.0.0.1", 0))
            address = f"127.0.0.1:{sock.getsockname()[1]}"
            with agent_for(model, address, info_timeout_s=1.0) as agent:
                first.append(timed_ms(agent, image))
                later.extend(timed_ms(agent, image) for _ in range(3))
    return first, later


def resume(model: SplitModel, image: bytes, repeats: int) -> list[float]:
    times = []
    with serving(model) as (servicer, address):
        for _ in range(repeats):
            servicer.fail_with = None
            with agent_for(model, address) as agent:
                assert not agent.classify(image).fallback
                servicer.fail_with = grpc.StatusCode.INTERNAL
                assert agent.classify(image).fallback  # the breaker opens
                servicer.fail_with = None
                back = time.perf_counter()
                while agent.classify(image).fallback:
                    if time.perf_counter() - back > 30:
                        raise RuntimeError("offloading never resumed")
                    time.sleep(0.01)
                times.append((time.perf_counter() - back) * 1e3)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the agent's fallback warnings are expected
    torch.set_num_threads(1)
    model = load_model("alexnet", "seed:0")
    image = SAMPLE.read_bytes()
    first, later = unreachable(model, image, args.repeats)
    measured = {
        "local only (whole model on the agent)": local_only(model, image, args.repeats),
        f"missed deadline ({DEADLINE_S:g} s), finished locally": missed_deadline(
            model, image, args.repeats
        ),
        "cloud unreachable: first request (identity check)": first,
        "cloud unreachable: each later request": later,
        f"resume after the cloud recovers (breaker {RESET_S:g} s)": resume(
            model, image, args.repeats
        ),
    }
    rows = [[name, f"{median(ms):.0f}", f"{max(ms):.0f}", len(ms)] for name, ms in measured.items()]
    headers = ["case", "median ms", "max ms", "n"]
    table = (
        "In process: alexnet (seed:0, one torch thread), placement `MMMCCCCCCMMM`, "
        f"{SAMPLE.name}; a request's wall time, or the time until offloading resumed.\n\n"
        + markdown_table(headers, rows)
    )
    records = [{"case": name, "ms": ms, "median_ms": median(ms)} for name, ms in measured.items()]
    write_results(
        "fallback",
        {"deadline_s": DEADLINE_S, "breaker_reset_s": RESET_S, "records": records},
        table,
    )
    print(format_table(headers, rows))


if __name__ == "__main__":
    main()
