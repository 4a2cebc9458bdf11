"""Never worse than local (issue 12): call budgets, a hung cloud, live scaling.

- :class:`~mobile_agent.budget.CallBudget` gives each segment's call a deadline from its
  recent times (in process).
- A hung cloud (SIGSTOP, real subprocesses): requests fall back within their budget,
  the agent notices the hang while idle, and offloading resumes after SIGCONT
  (:mod:`collabdnn.testbed.hung_cloud`).
- Live scaling (root, a private namespace): a third cloud replica added behind the
  ``dns:///`` name while the agent runs gets calls, with no restart.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

import pytest

from mobile_agent.budget import CallBudget

REPO = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------------ the budget


def test_budget_is_the_flat_timeout_before_a_segment_was_seen() -> None:
    budget = CallBudget(factor=3, floor_ms=250, cap_s=30)
    assert budget.deadline_s(3, 9, 1000) == 30
    budget.observe(3, 9, 1000, 40.0)
    assert budget.deadline_s(0, 3, 1000) == 30  # another segment: still unknown


def test_budget_is_factor_times_expected_with_a_floor_and_a_cap() -> None:
    budget = CallBudget(factor=3, floor_ms=250, cap_s=2)
    budget.observe(3, 9, 1000, 40.0)
    assert budget.deadline_s(3, 9, 1000) == pytest.approx(0.25)  # 120 ms < floor
    budget.observe(5, 12, 1000, 200.0)
    assert budget.deadline_s(5, 12, 1000) == pytest.approx(0.6)
    budget.observe(0, 12, 1000, 5000.0)
    assert budget.deadline_s(0, 12, 1000) == 2  # capped by the flat timeout


def test_budget_grows_with_the_bytes_sent_and_after_a_miss() -> None:
    budget = CallBudget(factor=2, floor_ms=0, cap_s=30, alpha=0.5)
    budget.observe(0, 5, 100_000, 100.0)
    assert budget.deadline_s(0, 5, 300_000) == pytest.approx(0.6)  # 3x the bytes
    assert budget.deadline_s(0, 5, 50_000) == pytest.approx(0.2)  # never below usual
    budget.missed(0, 5, 100_000, 0.2)  # counted as 200 ms (a lower bound)
    assert budget.expected_ms(0, 5, 100_000) == pytest.approx(150.0)
    budget.observe(0, 5, 100_000, 50.0)
    assert budget.expected_ms(0, 5, 100_000) == pytest.approx(100.0)


def test_budget_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        CallBudget(factor=0)


# ------------------------------------------------------------------- a hung cloud


@pytest.mark.slow
@pytest.mark.integration
def test_a_hung_cloud_costs_at_most_a_second_more_than_local(tmp_path: Path) -> None:
    """SIGSTOP the cloud during a stream, and again while idle; SIGCONT each time.

    Bounds are the issue's promise with wide margins for a loaded machine: no request
    over local-only latency + 1 s; the hang noticed within 15 s while idle; offloading
    back within a few seconds (the breaker's 2 s period plus one probe).
    """
    from collabdnn.testbed.hung_cloud import run

    result = run(tmp_path, requests=8)
    print(json.dumps(result, indent=1))
    local_worst = result["local"]["worst_ms"]
    assert result["offloaded"]["fallbacks"] == 0, result
    busy = result["hung_busy"]
    assert busy["fallbacks"] == busy["n"], result
    assert busy["worst_ms"] < local_worst + 1000, result
    assert result["idle_noticed_s"] is not None and result["idle_noticed_s"] < 15, result
    idle = result["hung_idle"]
    assert idle["fallbacks"] == idle["n"], result
    assert idle["worst_ms"] < local_worst + 1000, result
    for key in ("resume_after_busy_s", "resume_after_idle_s"):
        assert result[key] is not None and result[key] < 6, result


# ------------------------------------------------------------------ live scaling

_SCALE_SCRIPT = """
import json, sys, time
from mobile_agent.client import classify
from collabdnn.testbed.procs import start_healthy
from collabdnn.transport.channels import open_channel
from collabdnn.wire.proto import cloud_pb2_grpc, common_pb2

port, image, hosts = int(sys.argv[1]), open(sys.argv[2], "rb").read(), sys.argv[3]
common = ["--model", "alexnet", "--weights", "seed:0", "--threads", "1"]

def served(cloud):
    with open_channel(cloud.address) as channel:
        stub = cloud_pb2_grpc.CloudServerStub(channel)
        return stub.Info(common_pb2.InfoRequest(), timeout=10).load.served

clouds = []
try:
    for n, ip in enumerate(("127.0.0.1", "127.0.0.2")):
        clouds.append(start_healthy("cloud", [*common, "--port", str(port)],
                                    name=f"cloud{n}", host=ip))
    with start_healthy("mobile", [*common, "--cloud", f"dns:///cloud:{port}",
                                  "--placement", "cloud"]) as agent:
        fallbacks = [classify(agent.address, [image], timeout=60)[0].fallback
                     for _ in range(4)]
        clouds.append(start_healthy("cloud", [*common, "--port", str(port)],
                                    name="cloud2", host="127.0.0.3"))
        with open(hosts, "a") as f:  # the namespace's /etc/hosts, the same file
            f.write("127.0.0.3 cloud\\n")
        added, reached = time.monotonic(), None
        while time.monotonic() - added < 60:
            fallbacks.append(classify(agent.address, [image], timeout=60)[0].fallback)
            if served(clouds[2]) > 0:
                reached = time.monotonic() - added
                break
            time.sleep(0.25)
    print(json.dumps({"reached_s": reached, "served": [served(c) for c in clouds],
                      "fallbacks": sum(fallbacks), "requests": len(fallbacks)}))
finally:
    for cloud in clouds:
        cloud.stop()
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
@pytest.mark.root
@pytest.mark.system
def test_a_replica_added_behind_the_name_gets_calls_without_restarting_the_agent() -> None:
    """Two replicas behind ``cloud``, then a third: calls reach it within 30 s.

    The cloud closes each connection after ``--max-connection-age-s`` (default 20 s);
    the agent's channel then resolves ``cloud`` again and round-robins over all three.
    """
    from collabdnn.netem.netns import NetNamespace, netns_available

    ok, why = netns_available()
    if not ok:
        pytest.skip(f"needs a private network namespace: {why}")
    with NetNamespace("collabdnn-scale") as ns:
        folder = Path("/etc/netns") / ns.name
        folder.mkdir(parents=True)
        hosts = folder / "hosts"
        try:
            hosts.write_text("127.0.0.1 cloud\n127.0.0.2 cloud\n")
            image = REPO / "samples" / "chelsea.png"
            args = [sys.executable, "-c", _SCALE_SCRIPT, str(_free_port()), str(image), str(hosts)]
            done = ns.run(args, timeout=240, env={**os.environ, "PYTHONPATH": str(REPO)})
        finally:
            hosts.unlink(missing_ok=True)
            folder.rmdir()
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(result)
    assert result["fallbacks"] == 0, result
    assert result["reached_s"] is not None and result["reached_s"] < 35, result


# ------------------------------------------------------------- probes while idle


def test_a_probe_is_cancelled_when_real_traffic_starts() -> None:
    import time

    from collabdnn.transport.probe import ProbeCancelled, ProbeClient, serve

    server, port = serve("127.0.0.1:0", extra_delay_ms=3000)  # a probe that takes 3 s
    try:
        with ProbeClient(f"127.0.0.1:{port}", timeout_s=10) as client:
            begin = time.monotonic()
            with pytest.raises(ProbeCancelled):
                client.probe(64, 64, cancel_if=lambda: time.monotonic() - begin > 0.2)
            assert time.monotonic() - begin < 2.0
    finally:
        server.stop(0)


def test_probes_start_small_and_keep_to_their_share_of_airtime() -> None:
    import time

    from collabdnn.transport.channels import open_channel
    from collabdnn.transport.probe import serve
    from mobile_agent.link_monitor import LinkMonitor, LinkSettings

    server, port = serve("127.0.0.1:0", extra_delay_ms=50)
    address = f"127.0.0.1:{port}"
    channel = open_channel(address)
    try:
        monitor = LinkMonitor(
            LinkSettings(probe_idle_s=0.0, probe_share=0.1),
            channel_for=lambda _: channel,
            cloud=address,
        )
        scale = monitor._probe_scale
        assert scale < 1, "the first round is scaled down"
        begin = time.monotonic()
        assert monitor.probe_if_idle() == 3
        took = time.monotonic() - begin
        assert monitor._probe_scale == 2 * scale, "a good round grows the next one"
        # 4 probes of >= 50 ms: quiet for 9x that before the next round
        assert monitor.probe_if_idle() == 0
        assert monitor._probe_quiet_until - time.monotonic() > 5 * took
    finally:
        channel.close()
        server.stop(0)
