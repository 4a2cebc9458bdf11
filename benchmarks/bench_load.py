"""Load benchmark: concurrent clients against a mobile agent that offloads to a cloud.

Starts a cloud server and a mobile agent as subprocesses on 127.0.0.1 (free ports,
plaintext, one torch thread each unless told otherwise), gives the agent a cloud-using
plan, then runs ``--clients`` client threads, each with its own channel, classifying a
sample photo back to back for ``--duration`` seconds. Every outcome is counted: errors
(any status other than OK) must be zero; fallbacks (answered, but without the cloud)
are reported apart. Writes benchmarks/results/load.{json,md}.

    python -m benchmarks.bench_load [--clients 8] [--duration 30] [--placement MMMCCCCCCMMM]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.common import write_results

log = logging.getLogger("bench_load")

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "chelsea.png"


@dataclass
class ClientStats:
    """What one client thread saw; merged after the run."""

    latencies_ms: list[float] = field(default_factory=list)
    fallbacks: int = 0
    errors: Counter[str] = field(default_factory=Counter)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100), linear between closest ranks."""
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[max(0, min(98, round(q) - 1))]


def client(
    address: str, image: bytes, placement: str, stop_at: float, timeout_s: float, stats: ClientStats
) -> None:
    """Classify ``image`` back to back until ``stop_at`` (a monotonic time)."""
    import grpc

    from collabdnn.placement import Placement
    from collabdnn.services import ClassifyRequest
    from collabdnn.transport.channels import open_channel
    from collabdnn.wire.stubs import AgentStub

    request = ClassifyRequest((image,), Placement.parse(placement), top_k=5)
    with open_channel(address) as channel:
        stub = AgentStub(channel)
        while time.monotonic() < stop_at:
            begin = time.perf_counter()
            try:
                results = stub.classify(request, timeout=timeout_s)
            except grpc.RpcError as exc:
                stats.errors[exc.code().name] += 1
                continue
            stats.latencies_ms.append((time.perf_counter() - begin) * 1e3)
            stats.fallbacks += sum(r.fallback for r in results)


def run(args: argparse.Namespace) -> dict:
    from collabdnn.testbed.procs import start_healthy

    common = ["--model", args.model, "--weights", args.weights, "--threads", str(args.threads)]
    logs = Path(tempfile.mkdtemp(prefix="collabdnn-load-"))
    cloud = start_healthy("cloud", common, log_dir=logs)
    try:
        agent = start_healthy(
            "mobile",
            [*common, "--cloud", cloud.address, "--placement", args.placement],
            log_dir=logs,
        )
        try:
            image = args.image.read_bytes()
            warm = time.monotonic() + 2.0  # warm-up: not measured
            client(agent.address, image, args.placement, warm, args.timeout, ClientStats())
            stats = [ClientStats() for _ in range(args.clients)]
            stop_at = time.monotonic() + args.duration
            begin = time.perf_counter()
            threads = [
                threading.Thread(
                    target=client,
                    args=(agent.address, image, args.placement, stop_at, args.timeout, s),
                )
                for s in stats
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(args.duration + args.timeout + 30)
            elapsed = time.perf_counter() - begin
        finally:
            agent.stop()
    finally:
        cloud.stop()
    latencies = sorted(ms for s in stats for ms in s.latencies_ms)
    errors: Counter[str] = Counter()
    for s in stats:
        errors.update(s.errors)
    return {
        "model": args.model,
        "weights": args.weights,
        "placement": args.placement,
        "image": args.image.name,
        "image_bytes": len(image),
        "clients": args.clients,
        "duration_s": round(elapsed, 2),
        "torch_threads_per_service": args.threads,
        "requests": len(latencies) + sum(errors.values()),
        "ok": len(latencies),
        "errors": sum(errors.values()),
        "errors_by_code": dict(errors),
        "fallbacks": sum(s.fallbacks for s in stats),
        "throughput_rps": round(len(latencies) / elapsed, 2),
        "latency_ms": {
            "p50": round(percentile(latencies, 50), 1),
            "p90": round(percentile(latencies, 90), 1),
            "p99": round(percentile(latencies, 99), 1),
            "max": round(latencies[-1], 1) if latencies else None,
            "mean": round(statistics.fmean(latencies), 1) if latencies else None,
        },
    }


def table(data: dict) -> str:
    lat = data["latency_ms"]
    return "\n".join(
        [
            f"{data['clients']} concurrent clients for {data['duration_s']} s against the mobile "
            f"agent ({data['model']}, weights {data['weights']}, placement {data['placement']}, "
            f"{data['image']} of {data['image_bytes']:,} bytes; cloud and agent on one host, "
            f"{data['torch_threads_per_service']} torch thread each).",
            "",
            "| requests | errors | fallbacks | throughput (req/s) | p50 ms | p90 ms | p99 ms "
            "| max ms |",
            "|---|---|---|---|---|---|---|---|",
            f"| {data['ok']:,} | {data['errors']} | {data['fallbacks']} | "
            f"{data['throughput_rps']:.1f} | {lat['p50']:.1f} | {lat['p90']:.1f} | "
            f"{lat['p99']:.1f} | {lat['max']:.1f} |",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds")
    parser.add_argument(
        "--placement",
        default="MMMCCCCCCMMM",
        help="a cloud-using plan (default: mobile -> cloud -> mobile)",
    )
    parser.add_argument("--model", default="alexnet")
    parser.add_argument("--weights", default="seed:0")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per service")
    parser.add_argument("--image", type=Path, default=SAMPLE)
    parser.add_argument("--timeout", type=float, default=30.0, help="deadline per request")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    data = run(args)
    path = write_results("load", data, table(data))
    log.info("%s\n%s", path, table(data))
    return 1 if data["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
