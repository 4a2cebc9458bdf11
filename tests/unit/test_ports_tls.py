"""Ports and TLS problems as one clear line (issue 13, item 6), on real gRPC servers.

A busy port is refused (no SO_REUSEPORT share of its connections); unusable TLS files
are refused naming the file; a failed handshake comes with a hint saying which side of
TLS is wrong; the agent logs a refused client certificate as a refusal.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from collabdnn.errors import ConfigError, PlanRequestError
from collabdnn.placement import AssignedPlan, Placement, PlacementError
from collabdnn.testbed.certs import CertPair
from collabdnn.transport.channels import ChannelPool, health_status
from collabdnn.transport.security import (
    PLAINTEXT_SERVICE,
    TLS_ACCEPTED,
    TLS_REFUSED,
    SecurityConfig,
    SecurityError,
    check_tls_files,
    handshake_hint,
    open_channel,
    probe_tls,
    tls_refusal,
)
from collabdnn.transport.server import BindError, ServerConfig, bind, new_server
from tests.common import make_pki

PLAIN = SecurityConfig(insecure=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, CertPair]:
    return make_pki(tmp_path_factory.mktemp("pki"), "server", "client")


def serve(config: SecurityConfig, port: int = 0) -> tuple[grpc.Server, int]:
    """A real server as the services build it (new_server, bind), with health only."""
    server = new_server(ServerConfig(host="127.0.0.1", port=port, workers=2, security=config))
    servicer = health.HealthServicer()
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    bound = bind(server, "127.0.0.1", port, config)
    server.start()
    return server, bound


@pytest.fixture()
def servers(pki) -> Iterator[dict[str, str]]:
    tls = SecurityConfig(pki["server"].cert, pki["server"].key)
    mutual = SecurityConfig(pki["server"].cert, pki["server"].key, pki["ca"].cert)
    started = {name: serve(config) for name, config in (("plain", PLAIN), ("tls", tls))}
    started["mutual"] = serve(mutual)
    yield {name: f"127.0.0.1:{port}" for name, (_, port) in started.items()}
    for server, _ in started.values():
        server.stop(None)


# ------------------------------------------------------------------ ports


def test_a_busy_port_is_refused_in_one_line():
    first, port = serve(PLAIN)
    try:
        second = new_server(ServerConfig(host="127.0.0.1", port=port))
        with pytest.raises(BindError) as refused:
            bind(second, "127.0.0.1", port, PLAIN)
        message = str(refused.value)
        assert message == (
            f"cannot listen on 127.0.0.1:{port}: the port is already in use "
            "(is another service running there?)"
        )
        assert isinstance(refused.value, ConfigError) and isinstance(refused.value, OSError)
        # The first server still has every connection.
        assert health_status(f"127.0.0.1:{port}", timeout=5)[0] == "SERVING"
    finally:
        first.stop(None)


def test_gRPCs_own_check_refuses_too_without_so_reuseport():
    """Even past the OS pre-check (a race), the server option keeps gRPC from sharing."""
    first, port = serve(PLAIN)
    try:
        second = new_server(ServerConfig(host="127.0.0.1", port=port))
        with pytest.raises(RuntimeError):
            second.add_insecure_port(f"127.0.0.1:{port}")
    finally:
        first.stop(None)


def test_an_address_that_is_not_this_machines_is_refused():
    server = new_server(ServerConfig(host="127.0.0.1", port=0))
    with pytest.raises(BindError, match="cannot listen on 192.0.2.1:50999: cannot assign"):
        bind(server, "192.0.2.1", 50999, PLAIN)


# ------------------------------------------------------------------ TLS files


def test_a_key_that_does_not_match_its_certificate_is_named(pki):
    config = SecurityConfig(pki["server"].cert, pki["client"].key)
    with pytest.raises(SecurityError) as refused:
        check_tls_files(config)
    assert str(refused.value) == (
        f"TLS key {str(pki['client'].key)!r} does not match the certificate "
        f"{str(pki['server'].cert)!r}"
    )
    # ... also when the server binds (it used to say "cannot bind"), and for a client.
    server = new_server(ServerConfig(host="127.0.0.1", port=0, security=config))
    with pytest.raises(SecurityError, match="does not match the certificate"):
        bind(server, "127.0.0.1", 0, config)
    with pytest.raises(SecurityError, match="does not match the certificate"):
        open_channel("127.0.0.1:1", config)


def test_bad_tls_files_are_named(pki, tmp_path: Path):
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    encrypted = tmp_path / "encrypted.key"
    encrypted.write_text("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n")
    broken = tmp_path / "broken.pem"
    broken.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    server, client, ca = pki["server"], pki["client"], pki["ca"]
    cases = [
        (SecurityConfig(tmp_path / "missing.pem", server.key), "cannot read TLS certificate"),
        (SecurityConfig(server.cert, tmp_path / "nokey"), "cannot read TLS key"),
        (SecurityConfig(garbage, server.key), "holds no PEM certificate"),
        (SecurityConfig(server.cert, garbage), "holds no PEM private key"),
        (SecurityConfig(server.cert, encrypted), "is encrypted"),
        (SecurityConfig(server.cert, server.key, garbage), "TLS CA .* holds no PEM certificate"),
        (SecurityConfig(server.cert, server.key, server.key), "TLS CA .* holds no PEM"),
        (SecurityConfig(server.cert, server.key, broken), "TLS CA .* holds no usable"),
        (SecurityConfig(ca=tmp_path / "nothing.pem"), "cannot read TLS CA"),
    ]
    for config, message in cases:
        with pytest.raises(SecurityError, match=message) as refused:
            check_tls_files(config)
        assert "\n" not in str(refused.value)
        named = [p for p in (config.cert, config.key, config.ca) if p and str(p) in str(refused)]
        assert named, f"{refused.value} names no file"
    check_tls_files(SecurityConfig(client.cert, client.key, ca.cert))  # a good set passes


# ------------------------------------------------------------------ handshake hints


def fail(target: str, config: SecurityConfig) -> tuple[str, str]:
    status, why = health_status(target, timeout=5, security_config=config)
    assert status == "UNREACHABLE"
    return status, why


def test_a_plaintext_client_against_tls_gets_a_hint(servers):
    for name in ("tls", "mutual"):
        _, why = fail(servers[name], PLAIN)
        assert "hint: the service uses TLS: pass --tls-ca" in why, why


def test_a_tls_client_against_plaintext_gets_a_hint(servers, pki):
    _, why = fail(servers["plain"], SecurityConfig(ca=pki["ca"].cert))
    assert "hint: the service is plaintext: pass --insecure" in why, why


def test_an_untrusted_service_certificate_gets_a_hint(servers, pki):
    _, why = fail(servers["tls"], SecurityConfig(ca=pki["other_ca"].cert))
    assert "certificate is not signed by the CA" in why, why


def test_a_refused_client_certificate_is_named(servers, pki):
    rogue = SecurityConfig(pki["rogue"].cert, pki["rogue"].key, pki["ca"].cert)
    _, why = fail(servers["mutual"], rogue)
    assert f"refused this client's certificate {str(pki['rogue'].cert)!r}" in why, why
    assert probe_tls(servers["mutual"], rogue) == TLS_REFUSED
    assert tls_refusal(servers["mutual"], rogue) is not None
    no_cert = SecurityConfig(ca=pki["ca"].cert)
    _, why = fail(servers["mutual"], no_cert)
    assert "requires a client certificate" in why, why
    good = SecurityConfig(pki["client"].cert, pki["client"].key, pki["ca"].cert)
    assert probe_tls(servers["mutual"], good) == TLS_ACCEPTED
    assert tls_refusal(servers["mutual"], good) is None


def test_no_hint_when_it_is_not_tls(servers, pki):
    assert health_status(servers["plain"], timeout=5, security_config=PLAIN)[0] == "SERVING"
    _, why = fail("127.0.0.1:1", PLAIN)
    assert "hint" not in why
    assert handshake_hint("127.0.0.1:1", PLAIN, "Connection refused") is None
    assert probe_tls(servers["plain"], SecurityConfig(ca=pki["ca"].cert)) == PLAINTEXT_SERVICE
    assert tls_refusal(servers["plain"], PLAIN) is None


def test_the_agent_logs_a_refused_certificate_as_a_refusal(servers, pki, alexnet, caplog):
    from mobile_agent.agent import REFUSED, UNREACHABLE, AgentSettings, MobileAgent
    from mobile_agent.cloud_client import CLOUD_CHANNEL_OPTIONS

    rogue = SecurityConfig(pki["rogue"].cert, pki["rogue"].key, pki["ca"].cert)
    with ChannelPool(security_config=rogue, options=CLOUD_CHANNEL_OPTIONS) as pool:
        agent = MobileAgent(
            alexnet,
            AssignedPlan(Placement.parse("cloud")),
            pool,
            AgentSettings(cloud=servers["mutual"]),
        )
        with caplog.at_level(logging.INFO, logger="mobile_agent.agent"):
            assert agent.check_cloud() == REFUSED
            assert agent.check_cloud(wait_for_ready=True) == REFUSED  # the breaker's probe
        assert "REFUSED this agent in the TLS handshake" in caplog.text
        assert "unreachable" not in caplog.text
    with ChannelPool(security_config=rogue, options=CLOUD_CHANNEL_OPTIONS) as pool:
        down = MobileAgent(
            alexnet,
            AssignedPlan(Placement.parse("cloud")),
            pool,
            AgentSettings(cloud="127.0.0.1:1"),
        )
        assert down.check_cloud() == UNREACHABLE  # nothing listening is not a refusal


# ------------------------------------------------------------------ smaller


@pytest.mark.parametrize("load", [math.inf, -math.inf, math.nan, 0.0, -1.0])
def test_report_load_refuses_non_finite_loads(load):
    from scheduler.core import Scheduler, SchedulerSettings

    with pytest.raises(PlanRequestError, match="finite number > 0"):
        Scheduler(SchedulerSettings()).report_load(load)


def test_report_load_inf_is_invalid_argument_over_grpc():
    from collabdnn.wire.proto import scheduler_pb2, scheduler_pb2_grpc
    from scheduler.core import Scheduler, SchedulerSettings
    from scheduler.servicer import SchedulerServicer

    server = new_server(ServerConfig(host="127.0.0.1", port=0, workers=2))
    scheduler_pb2_grpc.add_SchedulerServicer_to_server(
        SchedulerServicer(Scheduler(SchedulerSettings())), server
    )
    port = bind(server, "127.0.0.1", 0, PLAIN)
    server.start()
    try:
        with open_channel(f"127.0.0.1:{port}", PLAIN) as channel:
            stub = scheduler_pb2_grpc.SchedulerStub(channel)
            with pytest.raises(grpc.RpcError) as caught:
                stub.ReportLoad(scheduler_pb2.LoadReport(cloud_load=math.inf), timeout=5)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "finite" in caught.value.details()
    finally:
        server.stop(None)


def test_a_huge_placement_is_not_echoed_back():
    spec = "MC" * 50_000
    with pytest.raises(PlacementError) as refused:
        Placement.parse(spec).resolve(12)
    assert len(str(refused.value)) < 250
    assert "100,000 letters" in str(refused.value)
    with pytest.raises(PlacementError) as refused:
        Placement.parse("X" * 100_000)
    assert len(str(refused.value)) < 250
    with pytest.raises(PlacementError) as refused:
        Placement(per_unit=tuple(f"side{i}" for i in range(100_000)))
    assert len(str(refused.value)) < 250
    # A short one is still quoted whole.
    with pytest.raises(PlacementError, match="'MXM' is not"):
        Placement.parse("MXM")
