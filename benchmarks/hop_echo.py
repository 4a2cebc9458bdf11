"""A raw gRPC echo that can be made the way a cloud hop is made: the hop's floor.

Why: a raw echo made back to back measures gRPC with every thread hot. A hop is made
differently: the client computes (its units) before the call, the server computes (its
units) before the reply, and meanwhile both sides' gRPC threads go idle, so each leg
pays for waking them. An echo made that way (the client runs units ``[0, k)`` first,
the server runs ``[k, N)`` before replying) is the floor a hop can reach with gRPC;
the server's compute is reported and subtracted, as a hop's is.

Wire format (raw bytes, method ``/hopecho.HopEcho/Echo``, no protos):

* request: ``<QQ``: the reply's size in bytes and the cut ``k`` (0: no compute), then
  padding up to the upload's size;
* reply: ``<d``: the server's compute in ms, then padding up to the asked size.

``python -m benchmarks.hop_echo serve --image PATH`` runs the server (it prints
``READY PORT``); :class:`EchoServer` starts it, :class:`EchoClient` calls it.
Harness only: nothing in the runtime imports it.
"""

from __future__ import annotations

import argparse
import struct
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc

_REQUEST = struct.Struct("<QQ")
_REPLY = struct.Struct("<d")
MAX_BYTES = 64 * 1024 * 1024
_OPTIONS = [
    ("grpc.max_send_message_length", MAX_BYTES),
    ("grpc.max_receive_message_length", MAX_BYTES),
]
METHOD = "/hopecho.HopEcho/Echo"


def _identity(data: bytes) -> bytes:
    return data


def serve(model_name: str, weights: str, threads: int, image: Path) -> int:
    import torch

    from collabdnn.model.split_model import load_model

    torch.set_num_threads(threads)
    model = load_model(model_name, weights)
    photo = image.read_bytes()
    inputs: dict[int, Any] = {}

    def echo(request: bytes, context: grpc.ServicerContext) -> bytes:
        size, cut = _REQUEST.unpack_from(request)
        compute_ms = 0.0
        if cut:
            if cut not in inputs:  # the cut's input, made once (not timed)
                inputs[cut] = model.run(0, cut, photo)
            tick = time.perf_counter()
            model.run(cut, model.num_units, inputs[cut])
            compute_ms = (time.perf_counter() - tick) * 1e3
        reply = bytearray(max(int(size), _REPLY.size))
        _REPLY.pack_into(reply, 0, compute_ms)
        return bytes(reply)

    server = grpc.server(futures.ThreadPoolExecutor(4), options=_OPTIONS)
    handler = grpc.unary_unary_rpc_method_handler(
        echo, request_deserializer=_identity, response_serializer=_identity
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("hopecho.HopEcho", {"Echo": handler}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"READY {port}", flush=True)
    sys.stdin.read()  # until the parent closes our stdin
    server.stop(1).wait()
    return 0


class EchoServer:
    """The echo server as a process (one torch thread by default), for ``with``."""

    def __init__(
        self, image: Path, model: str = "alexnet", weights: str = "seed:0", threads: int = 1
    ) -> None:
        from collabdnn.testbed.procs import _env

        argv = [sys.executable, "-m", "benchmarks.hop_echo", "serve", "--image", str(image)]
        argv += ["--model", model, "--weights", weights, "--threads", str(threads)]
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=_env()
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().split()
        if len(line) != 2 or line[0] != "READY":
            self.close()
            raise RuntimeError("the hop echo server did not start")
        self.address = f"127.0.0.1:{line[1]}"

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()

    def __enter__(self) -> EchoServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EchoClient:
    """Calls an :class:`EchoServer` over one channel."""

    def __init__(self, address: str) -> None:
        self.channel = grpc.insecure_channel(address, options=_OPTIONS)
        self._echo = self.channel.unary_unary(
            METHOD, request_serializer=_identity, response_deserializer=_identity
        )

    def call(self, bytes_up: int, bytes_down: int, cut: int = 0) -> tuple[float, float]:
        """One echo; returns its wall time and the server's compute (ms)."""
        request = bytearray(max(bytes_up, _REQUEST.size))
        _REQUEST.pack_into(request, 0, bytes_down, cut)
        tick = time.perf_counter()
        reply = self._echo(bytes(request), timeout=60)
        wall_ms = (time.perf_counter() - tick) * 1e3
        (compute_ms,) = _REPLY.unpack_from(reply)
        return wall_ms, compute_ms

    def close(self) -> None:
        self.channel.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.hop_echo")
    parser.add_argument("role", choices=("serve",))
    parser.add_argument("--model", default="alexnet")
    parser.add_argument("--weights", default="seed:0")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--image", type=Path, required=True)
    args = parser.parse_args(argv)
    return serve(args.model, args.weights, args.threads, args.image)


if __name__ == "__main__":
    sys.exit(main())
