"""Real links: tc shaping on the loopback of private network namespaces (root only).

Every namespace is created per test with a unique name and deleted afterwards; all
traffic is on 127.0.0.1 inside it.  Skipped, with the reason, where namespaces or tc
are unavailable (not root, no iproute2, a kernel without htb).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from collabdnn.measure.linkest import LinkEstimator
from collabdnn.netem.netns import NetNamespace, netns_available
from collabdnn.planning.link import Link
from tests.common import REPO as ROOT

AVAILABLE, REASON = netns_available()
pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(not AVAILABLE, reason=f"real link shaping unavailable: {REASON}"),
]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
TOLERANCE = 0.15


def namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=20)
    return {line.split()[0] for line in out.stdout.splitlines() if line.strip()}


@pytest.fixture
def netns() -> Iterator[NetNamespace]:
    ns = NetNamespace(prefix="collabdnn-test")
    try:
        ns.create()
        yield ns
    finally:
        ns.delete()
    assert ns.name not in namespaces()


def collabdnn(ns: NetNamespace, *args: str) -> subprocess.CompletedProcess:
    return ns.run([sys.executable, "-m", "collabdnn", *args], timeout=60, env=ENV)


def test_namespace_is_private_and_deleted() -> None:
    with NetNamespace(prefix="collabdnn-test") as ns:
        assert ns.name in namespaces()
        out = ns.check_call(["ip", "-o", "link", "show"])
        assert [line.split(":")[1].strip() for line in out.splitlines()] == ["lo"]
        proc = ns.popen(["sleep", "30"])
    assert proc.poll() is not None, "processes started inside are stopped on exit"
    assert ns.name not in namespaces()


def test_cli_set_show_clear(netns: NetNamespace) -> None:
    done = collabdnn(netns, "link", "set", "--up-mbps", "5", "--down-mbps", "10", "--rtt-ms", "40")
    assert done.returncode == 0, done.stderr
    shown = collabdnn(netns, "link", "show", "--json")
    assert shown.returncode == 0, shown.stderr
    status = json.loads(shown.stdout)
    assert status["shaped"] is True
    assert status["up_mbps"] == pytest.approx(5.0)
    assert status["down_mbps"] == pytest.approx(10.0)
    assert status["cloud_port"] == 50051
    assert status["mtu"] == 1500
    if "NOT shaped" in done.stdout:  # kernel without netem: said so, and shows no delay
        assert status["rtt_ms"] is None
    else:
        assert status["rtt_ms"] == pytest.approx(40.0)
    cleared = collabdnn(netns, "link", "clear")
    assert cleared.returncode == 0, cleared.stderr
    status = json.loads(collabdnn(netns, "link", "show", "--json").stdout)
    assert status["shaped"] is False
    assert status["mtu"] == 65536


def _check_estimate(data: dict, up: float, down: float, rtt_ms: float) -> None:
    # Feed the probe observations to a fresh estimator here as well: the figures must
    # come from the observations, not from anything the client process assumed.
    est = LinkEstimator()
    for p in data["probes"]:
        est.observe(p["bytes_up"], p["bytes_down"], p["wall_ms"], p["server_ms"])
    for link in (est.estimate(), Link(**data["estimate"])):
        assert link is not None
        assert link.up_mbps == pytest.approx(up, rel=TOLERANCE), data
        assert link.down_mbps == pytest.approx(down, rel=TOLERANCE), data
        # Loopback and gRPC add about a millisecond to the shaped RTT.
        assert rtt_ms - 2 <= link.rtt_ms <= rtt_ms * 1.3 + 3, data


@pytest.mark.slow
@pytest.mark.parametrize("mbps", [2.0, 8.0, 30.0])
def test_probes_measure_the_shaped_rate(mbps: float) -> None:
    from collabdnn.testbed.probe_run import measure_shaped

    data = measure_shaped(Link(mbps, mbps, 20.0), rounds=3)
    _check_estimate(data, mbps, mbps, 20.0)


@pytest.mark.slow
def test_uplink_and_downlink_shaped_apart() -> None:
    from collabdnn.testbed.probe_run import measure_shaped

    data = measure_shaped(Link(4.0, 16.0, 20.0), rounds=3)
    _check_estimate(data, 4.0, 16.0, 20.0)
