"""The thin clients (classify, health) work against real services and never load torch."""

from __future__ import annotations

import json
import subprocess
import sys

from collabdnn.testbed.procs import Service
from tests.common import REPO, SAMPLES

DESIGN_KEYS = {
    "top5",
    "placement",
    "latency_ms",
    "bytes_up",
    "bytes_down",
    "mobile_energy_mj",
    "fallback",
}
# What only the model's side needs: a thin client that imports one of these is not thin.
HEAVY = {"torch", "torchvision", "numpy", "PIL"}


def collabdnn(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "collabdnn", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


def imported(stderr: str) -> set[str]:
    """Top-level modules named in ``-X importtime`` output."""
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


def test_classify_help_loads_no_heavy_module() -> None:
    """The thin client's help imports none of the model stack (its start-up time is
    measured by ``benchmarks/bench_startup.py``, not asserted here)."""
    done = collabdnn("classify", "--help", timeout=60)
    assert done.returncode == 0 and "--agent" in done.stdout
    assert not imported(done.stderr) & HEAVY, imported(done.stderr) & HEAVY


def test_classify_json_has_the_design_keys(agent: Service) -> None:
    images = [str(SAMPLES / "chelsea.png"), str(SAMPLES / "rocket.jpg")]
    done = collabdnn(
        "classify",
        "--insecure",
        "--agent",
        agent.address,
        "--placement",
        "MMMCCCCCCMMM",
        "--json",
        *images,
    )
    assert done.returncode == 0, done.stderr
    assert "torch" not in imported(done.stderr)
    results = json.loads(done.stdout)
    assert [r["image"] for r in results] == images
    for result in results:
        assert result.keys() >= DESIGN_KEYS
        assert len(result["top5"]) == 5 and {"label", "probability"} <= result["top5"][0].keys()
        assert result["placement"] == ["mobile"] * 3 + ["cloud"] * 6 + ["mobile"] * 3
        assert result["mobile_energy_mj"] > 0 and result["fallback"] is False
        assert result["bytes_up"] > 0 and result["bytes_down"] > 0
        assert [u["name"] for u in result["units"]][:2] == ["preprocess", "conv1"]
        assert {"compute_ms", "encode_ms", "transfer_ms", "decode_ms"} <= result["units"][0].keys()


def test_classify_table_and_errors(agent: Service) -> None:
    done = collabdnn(
        "classify", "--insecure", "--agent", agent.address, str(SAMPLES / "coffee.png")
    )
    assert done.returncode == 0 and "preprocess" in done.stdout and "latency" in done.stdout
    bad = collabdnn(
        "classify",
        "--insecure",
        "--agent",
        agent.address,
        "--placement",
        "MC",
        str(SAMPLES / "coffee.png"),
    )
    assert bad.returncode == 1 and "INVALID_ARGUMENT" in bad.stderr and "12 units" in bad.stderr
    missing = collabdnn("classify", "--insecure", "--agent", agent.address, "/nonexistent.png")
    assert missing.returncode == 2


def test_health_command(cloud: Service, agent: Service) -> None:
    for service in (cloud, agent):
        done = collabdnn("health", "--insecure", service.address, "--timeout", "5")
        assert done.returncode == 0 and done.stdout.strip() == "SERVING"
        assert "torch" not in imported(done.stderr)
    down = collabdnn("health", "--insecure", "127.0.0.1:1", "--timeout", "1")
    assert down.returncode == 1 and down.stdout.strip() == "UNREACHABLE"
