"""Live scaling (root, a private namespace): a third cloud replica added behind the
``dns:///`` name while the agent runs gets calls, with no restart."""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

import pytest

from tests.common import REPO

_SCALE_SCRIPT = """
import json, sys, time
from mobile_agent.client import classify
from collabdnn.testbed.procs import start_healthy
from collabdnn.transport.channels import open_channel
from collabdnn.wire.stubs import CloudStub

port, image, hosts = int(sys.argv[1]), open(sys.argv[2], "rb").read(), sys.argv[3]
common = ["--model", "alexnet", "--weights", "seed:0", "--threads", "1"]

def served(cloud):
    with open_channel(cloud.address) as channel:
        return CloudStub(channel).info(timeout=10).load.served

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
