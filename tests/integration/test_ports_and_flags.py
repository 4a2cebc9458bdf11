"""Ports, flags and TLS as the command line meets them (issue 13, item 6), real processes.

A second service on a busy port exits 1 with one clear line and never serves; bad flags
and bad TLS files are one line each, not a traceback; ``--token-file`` keeps the token
out of ``ps``; the thin clients hint at TLS when the handshake fails; the agent logs a
client certificate from another CA as a refusal.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from collabdnn.testbed.certs import CertPair
from collabdnn.testbed.procs import Service, ServiceError, start_healthy
from collabdnn.transport.channels import check_health, open_channel
from collabdnn.transport.security import SecurityConfig
from collabdnn.wire.proto import cloud_pb2_grpc, common_pb2, mobile_pb2_grpc
from tests.common import COMMON, REPO, SAMPLES, make_pki, stop_cleanly

TOKEN = "t0ken-that-must-not-show-in-ps"


def collabdnn(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "collabdnn", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env=env,
    )


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(("collabdnn", "hint:"))]


# ------------------------------------------------------------------ ports


def test_a_second_service_on_a_busy_port_exits_with_one_line(cloud: Service, tmp_path: Path):
    port = cloud.port
    assert port is not None
    second = Service("cloud", [*COMMON, "--insecure", "--port", str(port)], log_dir=tmp_path)
    with pytest.raises(ServiceError, match="exited with 1 before binding a port"):
        second.start(timeout=60)
    assert second.port is None  # never announced a port: never served
    log = second.log_tail()
    assert "Traceback" not in log
    assert log.strip().splitlines()[-1] == (
        f"collabdnn cloud: error: cannot listen on 127.0.0.1:{port}: the port is already in "
        "use (is another service running there?)"
    )
    # The first one keeps serving every connection.
    for _ in range(5):
        assert check_health(cloud.address, timeout=5) == "SERVING"


@pytest.mark.parametrize(
    "argv,message",
    [
        (["cloud", "--insecure", "--port", "99999"], "--port: must be in 0..65535"),
        (["mobile", "--insecure", "--timeout", "-1"], "--timeout: must be more than 0"),
        (["mobile", "--insecure", "--workers", "0"], "--workers: must be at least 1"),
        (["mobile", "--insecure", "--zstd-level", "99"], "--zstd-level: must be in -7..22"),
    ],
)
def test_bad_flags_exit_2_before_anything_starts(argv, message):
    done = collabdnn(*argv)
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert "listening on" not in done.stdout


# ------------------------------------------------------------------ TLS


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | CertPair]:
    folder = tmp_path_factory.mktemp("pki")
    pki = make_pki(folder, "cloud", "client")
    bundle = folder / "both-cas.pem"
    bundle.write_bytes(pki["ca"].cert.read_bytes() + pki["other_ca"].cert.read_bytes())
    token = folder / "token"
    token.write_text(TOKEN + "\n")
    token.chmod(0o600)
    return {**pki, "bundle": bundle, "token": token}


@pytest.fixture(scope="module")
def tls_cloud(pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A cloud under mutual TLS whose token comes from a file."""
    cloud_cert = pki["cloud"]
    security = SecurityConfig(cloud_cert.cert, cloud_cert.key, pki["ca"].cert)
    service = start_healthy(
        "cloud",
        [*COMMON, "--token-file", str(pki["token"])],
        security_config=security,
        log_dir=tmp_path_factory.mktemp("tls-cloud"),
    )
    yield service
    stop_cleanly(service)


def test_the_token_file_is_required_and_stays_out_of_ps(tls_cloud: Service, pki):
    cmdline = Path(f"/proc/{tls_cloud.pid}/cmdline").read_bytes().decode()
    assert str(pki["token"]) in cmdline and TOKEN not in cmdline
    client = pki["client"]
    for token, expected in ((None, grpc.StatusCode.UNAUTHENTICATED), (TOKEN, None)):
        config = SecurityConfig(client.cert, client.key, pki["ca"].cert, token=token)
        with open_channel(tls_cloud.address, security_config=config) as channel:
            stub = cloud_pb2_grpc.CloudServerStub(channel)
            try:
                stub.Info(common_pb2.InfoRequest(), timeout=10)
                code = None
            except grpc.RpcError as exc:
                code = exc.code()
        assert code == expected


def test_thin_clients_hint_at_tls(tls_cloud: Service, pki):
    address = tls_cloud.address
    runs = {
        "health": collabdnn("health", "--insecure", address),
        "classify": collabdnn(
            "classify", "--insecure", "--agent", address, str(SAMPLES / "rocket.jpg")
        ),
        "plan": collabdnn("plan", "--insecure", "--scheduler", address),
    }
    for name, done in runs.items():
        assert done.returncode == 1, name
        assert "Traceback" not in done.stderr, name
        assert "hint: the service uses TLS: pass --tls-ca" in done.stderr, (name, done.stderr)
    rogue = pki["rogue"]
    done = collabdnn(
        "health", "--tls-ca", str(pki["ca"].cert), "--tls-cert", str(rogue.cert),
        "--tls-key", str(rogue.key), address,
    )  # fmt: skip
    assert done.returncode == 1
    assert f"hint: the service refused this client's certificate '{rogue.cert}'" in done.stderr


def test_bad_tls_files_are_one_line_naming_the_file(pki):
    cloud_cert, client = pki["cloud"], pki["client"]
    done = collabdnn(
        "cloud", *COMMON, "--port", "0", "--tls-cert", str(cloud_cert.cert),
        "--tls-key", str(client.key),
    )  # fmt: skip
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert error_lines(done.stderr) == [
        f"collabdnn cloud: error: TLS key '{client.key}' does not match the certificate "
        f"'{cloud_cert.cert}'"
    ]
    missing = Path(str(cloud_cert.cert) + ".missing")
    done = collabdnn("cloud", *COMMON, "--port", "0", "--tls-cert", str(missing),
                     "--tls-key", str(cloud_cert.key))  # fmt: skip
    assert done.returncode == 1
    assert error_lines(done.stderr) == [
        f"collabdnn cloud: error: cannot read TLS certificate '{missing}': No such file or "
        "directory"
    ]


def test_the_agent_logs_a_certificate_from_another_ca_as_a_refusal(
    tls_cloud: Service, pki, tmp_path: Path
):
    rogue = pki["rogue"]
    # The agent trusts both CAs (so the harness can reach it with the rogue certificate);
    # the cloud trusts only its own, and refuses the agent's certificate.
    security = SecurityConfig(rogue.cert, rogue.key, pki["bundle"], token=TOKEN)
    agent = start_healthy(
        "mobile", [*COMMON, "--cloud", tls_cloud.address], security_config=security,
        log_dir=tmp_path,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        with open_channel(agent.address, security_config=security) as channel:
            stub = mobile_pb2_grpc.MobileAgentStub(channel)
            while (state := stub.Info(common_pb2.InfoRequest(), timeout=10).cloud_state) in (
                "unchecked",
                "",
            ):
                assert time.monotonic() < deadline, "the agent never checked the cloud"
                time.sleep(0.2)
        assert state == "refused"
        log = agent.log_tail(200)
        assert "REFUSED this agent in the TLS handshake" in log
        assert "refused this client's certificate" in log
        assert "unreachable" not in log
    finally:
        stop_cleanly(agent)
