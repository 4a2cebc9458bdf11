"""``--health-port``: a plaintext listener with grpc.health.v1 and nothing else, beside a
TLS service port (Kubernetes' native gRPC probes cannot speak TLS)."""

from __future__ import annotations

import threading
import time

import grpc
import pytest

from collabdnn.cli import main
from collabdnn.testbed.certs import make_ca, make_cert
from collabdnn.transport.channels import health_status
from collabdnn.transport.security import PLAINTEXT, SecurityConfig
from collabdnn.transport.server import ServerConfig, build_server

ECHO = "/collabdnn.test.Echo/Echo"


def _echo(server: grpc.Server) -> None:
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                "collabdnn.test.Echo",
                {"Echo": grpc.unary_unary_rpc_method_handler(lambda request, context: request)},
            )
        ]
    )


def test_health_port_answers_probes_in_plaintext_beside_mutual_tls(tmp_path) -> None:
    ca = make_ca(tmp_path)
    cert = make_cert(tmp_path, ca, "server")
    tls = SecurityConfig(cert=cert.cert, key=cert.key, ca=ca.cert, token="s3cret")
    loaded = threading.Event()

    def load() -> str:
        loaded.wait(10)
        return "echo"

    config = ServerConfig(host="127.0.0.1", port=0, security=tls, health_port=0)
    built = build_server(
        "test", config, services=["collabdnn.test.Echo"], register=_echo, load=load
    )
    assert built.health_server is not None and built.health_port
    built.server.start()
    built.health_server.start()
    probe = f"127.0.0.1:{built.health_port}"
    try:
        assert health_status(probe)[0] == "NOT_SERVING"  # still loading
        loaded.set()
        deadline = time.monotonic() + 10
        while health_status(probe)[0] != "SERVING" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert health_status(probe, "collabdnn.test.Echo")[0] == "SERVING"
        # The health port serves nothing else, and the service port stays TLS-only.
        with grpc.insecure_channel(probe) as channel, pytest.raises(grpc.RpcError) as refused:
            channel.unary_unary(ECHO)(b"ping", timeout=5)
        assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED
        status, _ = health_status(f"127.0.0.1:{built.port}", timeout=2, explain=False)
        assert status == "UNREACHABLE"
    finally:
        built.server.stop(0).wait()
        built.health_server.stop(0).wait()


def test_no_health_port_unless_asked() -> None:
    config = ServerConfig(host="127.0.0.1", port=0, security=PLAINTEXT)
    built = build_server("test", config, services=[], register=_echo, load=lambda: "echo")
    try:
        assert built.health_server is None and built.health_port is None
    finally:
        built.server.stop(0).wait()


@pytest.mark.parametrize("command", ["cloud", "mobile", "scheduler"])
def test_every_service_takes_health_port(command: str, capsys) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert "--health-port" in capsys.readouterr().out
