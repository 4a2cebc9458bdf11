"""docker-compose.yml: its services really run as declared, and scale.

(The file's own checks, schema and declarations, are in tests/unit/test_compose_file.py.)
There is no Docker engine on the test machines, so the first test reads the compose
file and starts each service as a local process with exactly the command and
environment it declares; only the listening addresses are mapped to free local ports
(and service host names to 127.0.0.1). It then waits on each service's own healthcheck
command and classifies a sample photo through the agent.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from collabdnn.testbed.procs import Service, start_all_healthy, start_healthy
from tests.common import REPO

COMPOSE = REPO / "docker-compose.yml"
_INTERPOLATION = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")


def _load() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _interpolate(value: str, environ: dict[str, str]) -> str:
    return _INTERPOLATION.sub(lambda m: environ.get(m.group(1)) or (m.group(2) or ""), value)


def _start_order(services: dict) -> list[str]:
    order: list[str] = []
    while len(order) < len(services):
        for name, spec in services.items():
            if name not in order and all(d in order for d in spec.get("depends_on", {})):
                order.append(name)
    return order


class _Declared:
    """One compose service run locally: ``collabdnn <command>`` with its environment."""

    def __init__(self, name: str, spec: dict, env: dict[str, str], log_dir: Path) -> None:
        self.name, self.spec, self.env = name, spec, {**os.environ, **env}
        self.log = log_dir / f"{name}.log"
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "collabdnn", *spec["command"]],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
            )

    def wait_healthy(self, health: list[str], timeout: float = 120.0) -> None:
        """Run the service's own healthcheck command until it exits 0."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"{self.name} exited:\n{self.log.read_text()}"
            done = subprocess.run(health, capture_output=True, env=self.env, timeout=30)
            if done.returncode == 0:
                return
            time.sleep(0.5)
        raise AssertionError(f"{self.name}: {' '.join(health)} never exited 0")

    def stop(self) -> int:
        self.proc.terminate()
        try:
            return self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


@pytest.mark.slow
def test_compose_services_run_as_declared(tmp_path):
    services = _load()["services"]
    # What Compose would interpolate from the host: seeded weights (nothing to download).
    host_env = {"COLLABDNN_WEIGHTS": "seed:0", "COLLABDNN_MODEL": "alexnet"}
    ports = {name: _free_port() for name in services}
    declared = {name: spec["environment"]["COLLABDNN_PORT"] for name, spec in services.items()}

    def localise(value: object) -> str:
        """Compose interpolation, then service names and ports to local ones."""
        text = _interpolate(str(value), host_env)
        for name in services:
            text = text.replace(f"{name}:{declared[name]}", f"127.0.0.1:{ports[name]}")
        return text

    running: list[_Declared] = []
    try:
        for name in _start_order(services):
            spec = services[name]
            env = {key: localise(value) for key, value in spec["environment"].items()}
            env["COLLABDNN_HOST"] = "127.0.0.1"  # the container binds 0.0.0.0
            env["COLLABDNN_PORT"] = str(ports[name])
            service = _Declared(name, spec, env, tmp_path)
            running.append(service)
            test = spec["healthcheck"]["test"][1:]  # drop "CMD"
            health = [sys.executable, "-m", *(localise(arg) for arg in test)]
            health = [
                a.replace(f"127.0.0.1:{declared[name]}", f"127.0.0.1:{ports[name]}") for a in health
            ]
            service.wait_healthy(health)
        reply = subprocess.run(
            [
                sys.executable,
                "-m",
                "collabdnn",
                "classify",
                "--insecure",
                "--json",
                "--agent",
                f"127.0.0.1:{ports['mobile']}",
                str(REPO / "samples" / "chelsea.png"),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert reply.returncode == 0, reply.stderr
        result = json.loads(reply.stdout)[0]
        assert len(result["top5"]) == 5
        assert result["fallback"] is False
    finally:
        codes = [service.stop() for service in reversed(running)]
    assert codes == [0] * len(running), "a service did not stop cleanly on SIGTERM"


@pytest.mark.slow
def test_agent_round_robins_over_several_clouds(tmp_path, cat_bytes):
    """Two cloud servers behind one target: requests reach both (round_robin)."""
    common = ["--model", "alexnet", "--weights", "seed:0", "--threads", "1"]
    clouds = [Service("cloud", common, name=f"cloud{i}", log_dir=tmp_path) for i in range(2)]
    try:
        start_all_healthy(clouds)
        target = "ipv4:" + ",".join(c.address for c in clouds)
        with start_healthy(
            "mobile", [*common, "--cloud", target, "--placement", "cloud"], log_dir=tmp_path
        ) as agent:
            from mobile_agent.client import classify

            for _ in range(6):
                [result] = classify(agent.address, [cat_bytes], timeout=60)
                assert not result.fallback
        served = [_served(c) for c in clouds]
        assert all(n > 0 for n in served), served
    finally:
        for cloud in clouds:
            cloud.stop()


def _served(cloud: Service) -> int:
    from collabdnn.transport.channels import open_channel
    from collabdnn.wire.proto import cloud_pb2_grpc, common_pb2

    with open_channel(cloud.address) as channel:
        info = cloud_pb2_grpc.CloudServerStub(channel).Info(common_pb2.InfoRequest(), timeout=10)
    return info.load.served


# ``dns:///cloud:PORT`` over replicas behind one name: tests/system/test_live_scaling.py
