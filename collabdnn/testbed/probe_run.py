"""The link probe's two ends as processes, and a measurement of a shaped namespace.

``python -m collabdnn.testbed.probe_run serve`` runs a probe-only server and
``python -m collabdnn.testbed.probe_run measure`` probes one with a
:class:`~collabdnn.measure.linkest.LinkEstimator` and prints JSON; :func:`measure_shaped`
runs both inside a private network namespace whose loopback is shaped to a given link
(root only). Harness for tests and benchmarks: no runtime module imports it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from collabdnn.measure.linkest import LinkEstimator, Probe
from collabdnn.planning.link import Link
from collabdnn.transport.probe import HARNESS_PROBE_BYTES, ProbeClient, ProbeResult, serve

log = logging.getLogger(__name__)


def measure_link(
    client: ProbeClient,
    estimator: LinkEstimator,
    rounds: int = 4,
    warmup: int = 1,
) -> list[tuple[Probe, ProbeResult]]:
    """Run ``rounds`` of the estimator's probe plan, feeding it; returns what was sent.

    The warm-up round (not fed) opens the HTTP/2 connection and grows TCP's window, so
    that the first measured probe is not charged for connection set-up.
    """
    done: list[tuple[Probe, ProbeResult]] = []
    for index in range(warmup + rounds):
        for probe in estimator.probe_plan(force=True):
            result = client.probe(probe.bytes_up, probe.bytes_down)
            if index >= warmup:
                estimator.observe(
                    result.bytes_up, result.bytes_down, result.wall_ms, result.server_ms
                )
                done.append((probe, result))
            log.debug("%s probe: %s", probe.purpose, result)
    return done


def measure_shaped(
    link: Link,
    rounds: int = 4,
    port: int = 50051,
    target_s: float = 0.25,
    python: str = sys.executable,
    timeout_s: float = 120.0,
) -> dict[str, Any]:
    """Shape a private namespace's loopback to ``link`` and probe it; needs root.

    Runs a probe server and a probe client as two processes inside a fresh namespace
    (loopback only, deleted afterwards), the client measuring with a
    :class:`LinkEstimator`.  Where the kernel has no netem the RTT is emulated by the
    probe server (``rtt_emulated`` is then true).  Returns the client's JSON plus
    ``shaped`` (the link applied) and ``rtt_emulated``.
    """
    from collabdnn.netem import shaping
    from collabdnn.netem.netns import NetNamespace

    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    with NetNamespace() as ns:
        result = shaping.apply(link, cloud_port=port, netns=ns.name)
        extra = 0.0 if result.delay_shaped else link.rtt_ms
        ns.popen(
            [python, "-m", "collabdnn.testbed.probe_run", "serve", "--address", f"127.0.0.1:{port}",
             "--extra-delay-ms", str(extra)],
            env=env,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        client = ns.run(
            [python, "-m", "collabdnn.testbed.probe_run", "measure",
             "--target", f"127.0.0.1:{port}",
             "--rounds", str(rounds), "--target-s", str(target_s)],
            timeout=timeout_s,
            env=env,
        )  # fmt: skip
        if client.returncode != 0:
            raise RuntimeError(f"probe client failed: {client.stderr.strip()[-2000:]}")
    data = json.loads(client.stdout)
    data["shaped"] = link.to_dict()
    data["rtt_emulated"] = not result.delay_shaped
    return data


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m collabdnn.testbed.probe_run", description=__doc__
    )
    sub = parser.add_subparsers(dest="action", required=True)
    p_serve = sub.add_parser("serve", help="run a probe server until killed")
    p_serve.add_argument("--address", default="127.0.0.1:50051")
    p_serve.add_argument(
        "--extra-delay-ms", type=float, default=0.0, help="emulated delay (no netem)"
    )
    p_measure = sub.add_parser("measure", help="probe a server and print JSON")
    p_measure.add_argument("--target", default="127.0.0.1:50051")
    p_measure.add_argument("--rounds", type=int, default=4)
    p_measure.add_argument("--target-s", type=float, default=0.25, help="airtime per probe")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    if args.action == "serve":
        # a harness server: it echoes activation-sized replies of any model
        server, port = serve(args.address, args.extra_delay_ms, max_reply_bytes=HARNESS_PROBE_BYTES)
        print(f"READY {port}", flush=True)
        server.wait_for_termination()
        return 0
    estimator = LinkEstimator(probe_target_s=args.target_s)
    with ProbeClient(args.target) as client:
        done = measure_link(client, estimator, rounds=args.rounds)
    estimate = estimator.estimate()
    json.dump(
        {
            "estimate": estimate.to_dict() if estimate else None,
            "probes": [{"purpose": p.purpose, **asdict(r)} for p, r in done],
        },
        sys.stdout,
    )
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
