"""The same split over ``torch.distributed.rpc``: a yardstick for CollabDNN's cloud hop.

Why: the question "what does CollabDNN's runtime cost?" needs a reference that does the
same work with a mature RPC stack.  Two processes on 127.0.0.1 (TensorPipe backend): the
*mobile* one runs units ``[0, k)``, then ``rpc_sync`` sends the activation (a raw float
tensor, no compression) to the *cloud* one, which runs ``[k, N)`` and returns the logits
and its own compute time.  Also times an echo of the same tensor, the bare RPC cost.

Run by :func:`run_pair` as ``python -m benchmarks.paper.torch_rpc worker|client``; the
client prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

_STATE: dict[str, Any] = {}


def cloud_run(start: int, end: int, x: Any) -> tuple[Any, float]:
    """Runs in the cloud process: units ``[start, end)``; returns output and compute ms."""
    model = _STATE["model"]
    begin = time.perf_counter()
    out = model.run(start, end, x)
    return out.clone(), (time.perf_counter() - begin) * 1e3


def echo(x: Any, reply_numel: int) -> Any:
    """Runs in the cloud process: returns a tensor as big as the logits."""
    import torch

    return torch.zeros(reply_numel)


def _options(port: int) -> Any:
    from torch.distributed import rpc

    return rpc.TensorPipeRpcBackendOptions(
        num_worker_threads=4, init_method=f"tcp://127.0.0.1:{port}", rpc_timeout=300
    )


def _load(model: str, weights: str, threads: int) -> Any:
    import torch

    from collabdnn.model.split_model import load_model

    torch.set_num_threads(threads)
    _STATE["model"] = load_model(model, weights)
    return _STATE["model"]


def _worker(args: argparse.Namespace) -> int:
    from torch.distributed import rpc

    _load(args.model, args.weights, args.threads)
    rpc.init_rpc("cloud", rank=1, world_size=2, rpc_backend_options=_options(args.port))
    rpc.shutdown()  # blocks until the client is done
    return 0


def _client(args: argparse.Namespace) -> int:
    from torch.distributed import rpc

    from benchmarks.paper import torch_rpc as this  # pickled by this module's name

    model = _load(args.model, args.weights, args.threads)
    image = Path(args.image).read_bytes()
    rpc.init_rpc("mobile", rank=0, world_size=2, rpc_backend_options=_options(args.port))
    if args.stdin:
        return _serve_stdin(model, image)
    k = args.cut
    split(model, image, k, args.warmup)
    rows = split(model, image, k, args.requests)
    x = model.run(0, k, image)
    reply = int(model.run(0, model.num_units, image).numel())
    echoes = []
    for index in range(args.warmup + args.requests):
        tick = time.perf_counter()
        rpc.rpc_sync("cloud", this.echo, args=(x, reply))
        if index >= args.warmup:
            echoes.append((time.perf_counter() - tick) * 1e3)
    rpc.shutdown()

    def med(key: str) -> float:
        return float(statistics.median(r[key] for r in rows))

    json.dump(
        {
            "cut": k,
            "requests": len(rows),
            "activation_bytes": int(x.numel() * x.element_size()),
            "reply_bytes": reply * 4,
            "latency_ms": med("latency_ms"),
            "mobile_compute_ms": med("mobile_ms"),
            "cloud_compute_ms": med("cloud_ms"),
            "hop_ms": med("hop_ms"),
            "echo_ms": float(statistics.median(echoes)),
            "latencies_ms": [round(r["latency_ms"], 2) for r in rows],
        },
        sys.stdout,
    )
    sys.stdout.write("\n")
    return 0


def split(model: Any, image: bytes, k: int, requests: int) -> list[dict[str, float]]:
    """``requests`` requests of the split at ``k``, each timed: latency, each side's
    compute, and the hop (the ``rpc_sync`` time less the worker's compute)."""
    from torch.distributed import rpc

    from benchmarks.paper import torch_rpc as this

    rows = []
    for _ in range(requests):
        begin = time.perf_counter()
        x = model.run(0, k, image).clone()
        mobile_ms = (time.perf_counter() - begin) * 1e3
        tick = time.perf_counter()
        _, cloud_ms = rpc.rpc_sync("cloud", this.cloud_run, args=(k, model.num_units, x))
        rpc_ms = (time.perf_counter() - tick) * 1e3
        latency = (time.perf_counter() - begin) * 1e3
        rows.append(
            {
                "latency_ms": latency,
                "mobile_ms": mobile_ms,
                "cloud_ms": cloud_ms,
                "hop_ms": rpc_ms - cloud_ms,
            }
        )
    return rows


def _serve_stdin(model: Any, image: bytes) -> int:
    """Requests on demand, for benchmarks that interleave systems round by round: each
    line ``CUT REQUESTS`` on stdin is answered by one JSON line of :func:`split`'s rows;
    end of input shuts the pair down."""
    from torch.distributed import rpc

    print("READY", flush=True)
    for line in sys.stdin:
        cut, requests = (int(v) for v in line.split())
        print(json.dumps(split(model, image, cut, requests)), flush=True)
    rpc.shutdown()
    return 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _commands(
    model: str, weights: str, worker_threads: int
) -> tuple[list[str], list[str], dict[str, str]]:
    """The worker's command, the client's command stem and their environment."""
    from collabdnn.testbed.procs import _env

    port = _free_port()
    env = {
        **_env(),
        "TP_SOCKET_IFNAME": "lo",
        "GLOO_SOCKET_IFNAME": "lo",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
    }
    base = [sys.executable, "-m", "benchmarks.paper.torch_rpc"]
    common = ["--model", model, "--weights", weights, "--port", str(port)]
    worker = [*base, "worker", *common, "--threads", str(worker_threads)]
    return worker, [*base, "client", *common], env


def run_pair(
    model: str,
    cut: int,
    image: Path,
    *,
    weights: str = "seed:0",
    requests: int = 30,
    warmup: int = 3,
    client_threads: int = 1,
    worker_threads: int = 2,
    timeout_s: float = 300.0,
) -> dict[str, Any]:
    """Start the cloud and mobile processes, run the split, return the client's JSON."""
    worker_argv, client_argv, env = _commands(model, weights, worker_threads)
    worker = subprocess.Popen(
        worker_argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        client = subprocess.run(
            [
                *client_argv,
                "--threads",
                str(client_threads),
                "--cut",
                str(cut),
                "--image",
                str(image),
                "--requests",
                str(requests),
                "--warmup",
                str(warmup),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        if client.returncode != 0:
            raise RuntimeError(f"torch.distributed.rpc client failed:\n{client.stderr[-3000:]}")
        worker.wait(timeout=30)
        return json.loads(client.stdout)
    finally:
        _end(worker)


def _end(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream:
            stream.close()


class Pair:
    """A worker and a client kept running, splits run on demand (:meth:`split`), so that
    a benchmark can interleave torch RPC with other systems round by round."""

    def __init__(
        self,
        model: str,
        image: Path,
        *,
        weights: str = "seed:0",
        client_threads: int = 1,
        worker_threads: int = 1,
    ) -> None:
        worker_argv, client_argv, env = _commands(model, weights, worker_threads)
        self.worker = subprocess.Popen(
            worker_argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True
        )
        argv = [*client_argv, "--threads", str(client_threads), "--image", str(image), "--stdin"]
        self.client = subprocess.Popen(
            argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.client.stdout is not None
        if self.client.stdout.readline().strip() != "READY":
            self.close()
            raise RuntimeError("the torch.distributed.rpc pair did not start")

    def split(self, cut: int, requests: int) -> list[dict[str, float]]:
        assert self.client.stdin is not None and self.client.stdout is not None
        self.client.stdin.write(f"{cut} {requests}\n")
        self.client.stdin.flush()
        line = self.client.stdout.readline()
        if not line:
            raise RuntimeError("the torch.distributed.rpc client exited")
        rows: list[dict[str, float]] = json.loads(line)
        return rows

    def close(self) -> None:
        if self.client.stdin:
            self.client.stdin.close()  # the client shuts the pair down
        for proc in (self.client, self.worker):
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(30)
            _end(proc)

    def __enter__(self) -> Pair:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.paper.torch_rpc")
    parser.add_argument("role", choices=("worker", "client"))
    parser.add_argument("--model", default="alexnet")
    parser.add_argument("--weights", default="seed:0")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cut", type=int, default=1)
    parser.add_argument("--image", default="")
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--stdin", action="store_true", help="client: run splits asked on stdin")
    args = parser.parse_args(argv)
    os.environ.setdefault("TP_SOCKET_IFNAME", "lo")
    # Run through the package module, not ``__main__``: the functions the client sends
    # are pickled by that module's name, so its globals must hold the loaded model.
    from benchmarks.paper import torch_rpc as this

    return this._worker(args) if args.role == "worker" else this._client(args)


if __name__ == "__main__":
    sys.exit(main())
