"""TLS, mutual TLS and bearer tokens, against a real gRPC server on 127.0.0.1."""

from __future__ import annotations

from concurrent import futures
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from collabdnn.transport.security import (
    SecurityConfig,
    SecurityError,
    bind,
    open_channel,
    server_interceptors,
)
from tests.common import make_pki

ECHO = "/collabdnn.test.Echo/Echo"


def _echo_handler() -> grpc.GenericRpcHandler:
    return grpc.method_handlers_generic_handler(
        "collabdnn.test.Echo",
        {"Echo": grpc.unary_unary_rpc_method_handler(lambda request, context: request)},
    )


def _serve(config: SecurityConfig):
    server = grpc.server(futures.ThreadPoolExecutor(2), interceptors=server_interceptors(config))
    server.add_generic_rpc_handlers([_echo_handler()])
    health_servicer = health.HealthServicer()
    health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    port = bind(server, "127.0.0.1:0", config)
    server.start()
    return server, f"127.0.0.1:{port}"


def _echo(target: str, config: SecurityConfig) -> bytes:
    with open_channel(target, config) as channel:
        return channel.unary_unary(ECHO)(b"ping", timeout=5)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"), "server", "client")


def test_plaintext_must_be_asked_for():
    server = grpc.server(futures.ThreadPoolExecutor(1))
    with pytest.raises(SecurityError, match="--insecure"):
        bind(server, "127.0.0.1:0", SecurityConfig())
    with pytest.raises(SecurityError, match="go together"):
        SecurityConfig(key=Path("server.key"))


def test_tls_and_token(pki):
    server_cfg = SecurityConfig(pki["server"].cert, pki["server"].key, token="s3cret")
    server, target = _serve(server_cfg)
    try:
        good = SecurityConfig(ca=pki["ca"].cert, token="s3cret")
        assert _echo(target, good) == b"ping"
        # No token, wrong token: UNAUTHENTICATED; the server keeps serving.
        for token in (None, "wrong"):
            with pytest.raises(grpc.RpcError) as info:
                _echo(target, SecurityConfig(ca=pki["ca"].cert, token=token))
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
        # Plaintext against a TLS server: the handshake fails.
        with pytest.raises(grpc.RpcError) as info:
            _echo(target, SecurityConfig(insecure=True, token="s3cret"))
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        # A client that trusts another CA refuses the server.
        with pytest.raises(grpc.RpcError) as info:
            _echo(target, SecurityConfig(ca=pki["other_ca"].cert, token="s3cret"))
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        # Health needs no token (orchestrators hold none).
        with open_channel(target, SecurityConfig(ca=pki["ca"].cert)) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=5
            )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        assert _echo(target, good) == b"ping"
    finally:
        server.stop(None)


def test_mutual_tls(pki):
    server_cfg = SecurityConfig(pki["server"].cert, pki["server"].key, ca=pki["ca"].cert)
    server, target = _serve(server_cfg)
    try:
        client = SecurityConfig(pki["client"].cert, pki["client"].key, ca=pki["ca"].cert)
        assert _echo(target, client) == b"ping"
        with pytest.raises(grpc.RpcError) as info:
            _echo(target, SecurityConfig(ca=pki["ca"].cert))  # no client certificate
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        server.stop(None)


def test_plaintext_with_token_when_asked(pki):
    server, target = _serve(SecurityConfig(insecure=True, token="t"))
    try:
        assert _echo(target, SecurityConfig(insecure=True, token="t")) == b"ping"
        with pytest.raises(grpc.RpcError) as info:
            _echo(target, SecurityConfig(insecure=True))
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        server.stop(None)


def test_options_come_from_the_environment():
    import argparse

    from collabdnn.cli import apply_environment
    from collabdnn.transport.security import add_security_arguments, config_from_args

    parser = argparse.ArgumentParser()
    add_security_arguments(parser)
    parser.add_argument("--port", type=int, default=50051)
    apply_environment(
        parser,
        {
            "COLLABDNN_TOKEN": "abc",
            "COLLABDNN_INSECURE": "1",
            "COLLABDNN_PORT": "7",
            "COLLABDNN_TLS_CA": "/x/ca.pem",
        },
    )
    args = parser.parse_args([])
    config = config_from_args(args)
    assert config.token == "abc" and config.insecure and args.port == 7
    assert config.ca == Path("/x/ca.pem")
    assert parser.parse_args(["--port", "9"]).port == 9  # the command line wins
