"""What one cloud hop costs: CollabDNN against torch.distributed.rpc and two gRPC echoes.

Side by side on one machine, on the same cuts of AlexNet (after pool1 and pool3, one
torch thread per side), in interleaved rounds (each round runs every system in turn,
the order rotating), so that the machine's load falls on all of them alike:

* **CollabDNN**: a cloud server and a mobile agent as the README starts them, Classify
  requests through the agent with the split, each crossing sent with the codec the
  planner picks for it (from both services' own profiles and the agent's live link
  estimate after the warm-up: what a plan of that split would carry); *hop* = the
  agent's latency less the units' compute on both sides (encoding, the Execute call,
  decoding, the agent's Python);
* **CollabDNN, zstd-1** (``--raw``: and an agent sending raw frames): the same split
  with the agent's default codec (zstd level 1) and with raw frames, whatever the
  planner would pick;
* **CollabDNN before** (``--baseline REF``): the same from the source tree at git
  ``REF`` (exported to a temporary folder), so that a change is measured in one run;
* **torch RPC**: the same split over ``torch.distributed.rpc`` (TensorPipe, loopback;
  :class:`benchmarks.paper.torch_rpc.Pair`); hop = ``rpc_sync`` time less the worker's
  compute;
* **hop-like echo**: a raw gRPC echo of the hop's bytes made as a hop is made (the
  client computes units ``[0, k)`` first, the server ``[k, N)`` before replying;
  :mod:`benchmarks.hop_echo`); hop = call time less the server's compute: the floor;
* **gRPC echo, back to back**: the same echo with no compute on either side: gRPC
  with every thread hot, a floor no hop can reach (the old benchmark's "raw echo").

Writes results/hop.{json,md} and results/hop.png. Timings are medians over every round.

    python -m benchmarks.bench_hop [--rounds 6] [--requests 15] [--baseline REF]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from benchmarks.common import RESULTS, markdown_table, write_results
from benchmarks.hop_echo import EchoClient, EchoServer
from benchmarks.paper.testbed import classify_once, cut_spec, run_key
from benchmarks.paper.torch_rpc import Pair
from collabdnn.testbed.procs import Service
from collabdnn.testbed.stack import SAMPLE_PHOTO

ROOT = Path(__file__).resolve().parent.parent
MODEL, WEIGHTS = "alexnet", "seed:0"
CUTS = {"pool1": 3, "pool3": 9}  # unit index after which the split cuts
IDLE_S = 25.0  # before the planner picks the codecs: two or three rounds of link probes
SYSTEMS = (
    "collabdnn",
    "collabdnn_zstd",
    "collabdnn_before",
    "collabdnn_raw",
    "torch_rpc",
    "hoplike_echo",
    "grpc_echo",
)
LABELS = {
    "collabdnn": "CollabDNN, planner's codecs",
    "collabdnn_zstd": "CollabDNN, zstd-1",
    "collabdnn_before": "CollabDNN before",
    "collabdnn_raw": "CollabDNN, raw frames",
    "torch_rpc": "torch RPC",
    "hoplike_echo": "hop-like echo",
    "grpc_echo": "gRPC echo, back to back",
}


@dataclass(frozen=True)
class Stack:
    """A running agent (its address) and the processes of the agent and its cloud."""

    address: str
    pids: dict[str, int]
    cloud: str = ""  # the cloud's address
    fallbacks: list[str] = field(default_factory=list)  # requests that fell back


@contextlib.contextmanager
def stack(
    log_dir: Path, label: str, root: Path | None = None, agent_flags: Sequence[str] = ()
) -> Iterator[Stack]:
    """A cloud server and a mobile agent (one torch thread each)."""
    common = ["--model", MODEL, "--weights", WEIGHTS, "--threads", "1"]
    services: list[Service] = []
    try:
        cloud = Service("cloud", common, name=f"cloud-{label}", log_dir=log_dir, root=root)
        services.append(cloud.start(120))
        agent_args = [*common, "--cloud", cloud.address, "--timeout", "300", *agent_flags]
        agent = Service("mobile", agent_args, name=f"agent-{label}", log_dir=log_dir, root=root)
        services.append(agent.start(120))
        for service in services:
            service.wait_healthy(180)
        assert agent.pid is not None and cloud.pid is not None
        yield Stack(agent.address, {"agent": agent.pid, "cloud": cloud.pid}, cloud.address)
    finally:
        for service in reversed(services):
            service.stop()


def export_tree(ref: str, folder: Path) -> Path:
    """The source tree at git ``ref``, exported into ``folder`` (no worktree)."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", ref],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def _cpu_s(pid: int) -> float:
    """CPU seconds of process ``pid`` so far (exited threads included; 10 ms ticks)."""
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def plan_codecs(side: Stack, image: bytes) -> dict[str, Any]:
    """The codec the planner picks for each crossing of each cut: both services profile
    themselves (their Profile call), the agent reports its live link estimate (Info),
    and :func:`~collabdnn.planning.planner.evaluate` prices each cut's placement."""
    from collabdnn.measure.profile_service import ProfileSettings, fetch_profile
    from collabdnn.placement import Placement
    from collabdnn.planning.energy import power_model
    from collabdnn.planning.planner import evaluate
    from collabdnn.planning.profiles import plan_input_from_profiles
    from collabdnn.transport.channels import open_channel
    from collabdnn.wire.stubs import AgentStub

    settings = ProfileSettings(repeats=5, warmup=1)
    profiles = {}
    for role, address in (("mobile", side.address), ("cloud", side.cloud)):
        with open_channel(address) as channel:
            profiles[role] = fetch_profile(channel, role, [image], settings)
    with open_channel(side.address) as channel:
        estimate = AgentStub(channel).info(timeout=30).link
    assert estimate is not None, "the agent has no link estimate"
    link = estimate.link
    inp = plan_input_from_profiles(profiles["mobile"], profiles["cloud"])
    codecs = {}
    for cut in CUTS.values():
        placement = Placement.parse(cut_spec(len(inp.units), cut)).resolve(len(inp.units))
        cost = evaluate(inp, link, power_model(link.network), placement)
        codecs[cut] = {t.boundary: t.codec for t in cost.transfers if t.codec}
    return {
        "link": {"up_mbps": link.up_mbps, "down_mbps": link.down_mbps, "rtt_ms": link.rtt_ms},
        "codecs": codecs,
    }


def _collabdnn(
    side: Stack, image: bytes, codecs: dict[int, dict[int, str]] | None = None
) -> Callable[[int, int], list[dict[str, float]]]:
    """Requests through the agent; each row also carries the CPU time the agent's and
    the cloud's processes spent per request in its batch, units included (in the JSON
    only: two processes running the same units differ by 1-3 ms per request here, more
    than the runtime's own costs, so the figure cannot compare versions)."""

    def run(cut: int, n: int) -> list[dict[str, float]]:
        rows = []
        before = {name: _cpu_s(pid) for name, pid in side.pids.items()}
        key = run_key(cut_spec(12, cut), (codecs or {}).get(cut))
        for _ in range(n):
            try:
                s = classify_once(side.address, image, key)
            except RuntimeError as exc:  # it fell back (a call past its budget...)
                side.fallbacks.append(str(exc))
                continue
            rows.append(
                {
                    "hop_ms": s.latency_ms - s.mobile_ms - s.cloud_ms,
                    "latency_ms": s.latency_ms,
                    "network_ms": s.network_ms,
                    "codec_ms": s.codec_ms,
                    "bytes_up": s.bytes_up,
                    "bytes_down": s.bytes_down,
                }
            )
        for name, pid in side.pids.items():
            per_request = 1e3 * (_cpu_s(pid) - before[name]) / max(len(rows), 1)
            for row in rows:
                row[f"cpu_{name}_ms"] = per_request
        return rows

    return run


def _echo(
    client: EchoClient, model: Any, image: bytes, sizes: dict[int, tuple[int, int]], hoplike: bool
) -> Callable[[int, int], list[dict[str, float]]]:
    def run(cut: int, n: int) -> list[dict[str, float]]:
        up, down = sizes[cut]
        rows = []
        for _ in range(n):
            if hoplike:
                model.run(0, cut, image)  # the client computes first, as the agent does
            wall_ms, server_ms = client.call(up, down, cut if hoplike else 0)
            rows.append({"hop_ms": wall_ms - server_ms})
        return rows

    return run


def _stats(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median_ms": statistics.median(ordered),
        "mean_ms": statistics.fmean(ordered),
        "p25_ms": ordered[len(ordered) // 4],
        "p75_ms": ordered[(3 * len(ordered)) // 4],
        "n": len(ordered),
    }


def measure(
    rounds: int, requests: int, baseline: str | None, raw: bool, warmup: int = 3
) -> dict[str, Any]:
    import torch

    from collabdnn.model.split_model import load_model

    torch.set_num_threads(1)
    image = SAMPLE_PHOTO.read_bytes()
    model = load_model(MODEL, WEIGHTS)
    with contextlib.ExitStack() as stack_:
        logs = Path(tempfile.mkdtemp(prefix="collabdnn-hop-"))  # kept: the services' logs
        print(f"service logs in {logs}", flush=True)
        stacks = {"collabdnn": stack_.enter_context(stack(logs, "after"))}
        if baseline:
            tree = export_tree(baseline, Path(tempfile.mkdtemp(dir=logs, prefix="tree-")))
            stacks["collabdnn_before"] = stack_.enter_context(stack(logs, "before", tree))
        if raw:
            flags = ("--zstd-level", "0")
            stacks["collabdnn_raw"] = stack_.enter_context(stack(logs, "raw", agent_flags=flags))
        runners: dict[str, Callable[[int, int], list[dict[str, float]]]] = {
            name: _collabdnn(side, image) for name, side in stacks.items()
        }
        # The default codec on the same agent, then what the planner picks once the
        # agent has measured its link (warm-up hops and idle probes).
        ours = stacks["collabdnn"]
        runners["collabdnn_zstd"] = runners["collabdnn"]
        for cut in CUTS.values():
            runners["collabdnn_zstd"](cut, warmup * 4)
        time.sleep(IDLE_S)  # idle: the agent probes its link (every 10 s while mobile-only)
        choice = plan_codecs(ours, image)
        print(f"planner's codecs on {choice['link']}: {choice['codecs']}", flush=True)
        runners["collabdnn"] = _collabdnn(ours, image, choice["codecs"])
        pair = stack_.enter_context(Pair(MODEL, SAMPLE_PHOTO))
        runners["torch_rpc"] = pair.split
        echo_server = stack_.enter_context(EchoServer(SAMPLE_PHOTO))
        client = EchoClient(echo_server.address)
        stack_.callback(client.close)
        # The echoes carry CollabDNN's bytes of each cut (its frames up, logits down).
        sizes = {}
        for cut in CUTS.values():
            runners["collabdnn"](cut, warmup)
            row = runners["collabdnn"](cut, 3)[-1]
            sizes[cut] = (int(row["bytes_up"]), int(row["bytes_down"]))
        runners["hoplike_echo"] = _echo(client, model, image, sizes, hoplike=True)
        runners["grpc_echo"] = _echo(client, model, image, sizes, hoplike=False)
        names = [s for s in SYSTEMS if s in runners]
        rows: dict[tuple[str, int], list[dict[str, float]]] = {}
        for name in names:  # warm every path once
            for cut in CUTS.values():
                runners[name](cut, warmup)
        for index in range(rounds):
            order = names[index % len(names) :] + names[: index % len(names)]
            for cut in CUTS.values():
                for name in order:
                    rows.setdefault((name, cut), []).extend(runners[name](cut, requests))
            print(f"round {index + 1}/{rounds} done", flush=True)
    cuts = []
    for after, cut in CUTS.items():
        entry: dict[str, Any] = {"cut_after": after, "cut": cut, "bytes": sizes[cut]}
        for name in names:
            got = rows[(name, cut)]
            entry[name] = _stats([r["hop_ms"] for r in got])
            if name.startswith("collabdnn"):
                for key in ("network_ms", "codec_ms", "latency_ms"):
                    entry[name][key] = statistics.median(r[key] for r in got)
                for key in ("cpu_agent_ms", "cpu_cloud_ms"):
                    entry[name][key] = statistics.fmean(r[key] for r in got)
        hop, torch_hop = entry["collabdnn"]["median_ms"], entry["torch_rpc"]["median_ms"]
        floor = entry["hoplike_echo"]["median_ms"]
        entry["ratios"] = {
            "hop_vs_torch_rpc": hop / torch_hop,
            "hop_vs_hoplike_echo": hop / floor,
            "network_vs_hoplike_echo": entry["collabdnn"]["network_ms"] / floor,
            "hoplike_vs_back_to_back_echo": floor / entry["grpc_echo"]["median_ms"],
        }
        if "collabdnn_before" in entry:
            # What the code change cut, same codec on both sides (zstd-1).
            old, same = entry["collabdnn_before"]["median_ms"], entry["collabdnn_zstd"]["median_ms"]
            entry["ratios"]["before_vs_torch_rpc"] = old / torch_hop
            entry["cut_ms"] = old - same
            entry["cut_pct"] = 100.0 * (old - same) / old
            entry["cpu_cut_ms"] = {
                side: entry["collabdnn_before"][f"cpu_{side}_ms"]
                - entry["collabdnn_zstd"][f"cpu_{side}_ms"]
                for side in ("agent", "cloud")
            }
        entry["codecs"] = choice["codecs"][cut]
        entry["ratios"]["zstd_vs_torch_rpc"] = entry["collabdnn_zstd"]["median_ms"] / torch_hop
        if "collabdnn_raw" in entry:
            entry["ratios"]["raw_vs_torch_rpc"] = entry["collabdnn_raw"]["median_ms"] / torch_hop
        cuts.append(entry)
    return {
        "model": MODEL,
        "weights": WEIGHTS,
        "image": SAMPLE_PHOTO.name,
        "threads": {"mobile": 1, "cloud": 1},
        "rounds": rounds,
        "requests_per_round": requests,
        "baseline": baseline,
        "fallbacks": {name: side.fallbacks for name, side in stacks.items()},
        "raw": raw,
        "plan": choice,
        "cuts": cuts,
    }


def _ms(value: float) -> str:
    return f"{value:.2f}"


def render(data: dict[str, Any]) -> str:
    before, raw = bool(data["baseline"]), bool(data["raw"])
    head = ["cut after", "planner's codec up / down", "bytes up / down", "CollabDNN hop ms"]
    head += ["torch RPC hop ms", "hop / torch RPC", "zstd-1 hop ms", "zstd-1 / torch RPC"]
    head += ["before (zstd-1) ms", "cut ms (%)", "before / torch RPC"] if before else []
    head += ["raw frames hop ms", "raw / torch RPC"] if raw else []
    head += ["hop-like echo ms (floor)", "gRPC echo back to back ms", "CollabDNN network ms"]
    head += ["network / hop-like echo"]
    rows = []
    for c in data["cuts"]:
        r = c["ratios"]
        codecs = {int(b): name for b, name in c["codecs"].items()}
        up, down = codecs.get(c["cut"], "-"), codecs.get(12, "-")
        row = [c["cut_after"], f"{up} / {down}", f"{c['bytes'][0]:,} / {c['bytes'][1]:,}"]
        row += [_ms(c["collabdnn"]["median_ms"])]
        row += [_ms(c["torch_rpc"]["median_ms"]), f"{r['hop_vs_torch_rpc']:.2f}x"]
        row += [_ms(c["collabdnn_zstd"]["median_ms"]), f"{r['zstd_vs_torch_rpc']:.2f}x"]
        if before:
            row += [_ms(c["collabdnn_before"]["median_ms"])]
            row += [f"{c['cut_ms']:.2f} ({c['cut_pct']:.0f}%)", f"{r['before_vs_torch_rpc']:.2f}x"]
        if raw:
            row += [_ms(c["collabdnn_raw"]["median_ms"]), f"{r['raw_vs_torch_rpc']:.2f}x"]
        row += [_ms(c["hoplike_echo"]["median_ms"]), _ms(c["grpc_echo"]["median_ms"])]
        row += [_ms(c["collabdnn"]["network_ms"]), f"{r['network_vs_hoplike_echo']:.2f}x"]
        rows.append(row)
    n = data["cuts"][0]["collabdnn"]["n"]
    link = data["plan"]["link"]
    intro = (
        f"One cloud hop on the loopback, AlexNet (`{data['weights']}`, `{data['image']}`), "
        f"one torch thread per side, medians of {n} requests per cell in "
        f"{data['rounds']} interleaved rounds (2 cores shared with other work: compare "
        "within a row). *Hop* = latency less the units' compute on both sides; "
        "*hop-like echo* = a raw gRPC echo of the same bytes made as a hop is made (client "
        "computes, server computes, then replies), the floor; *back to back* = the same "
        "echo with no compute (every thread hot); *network* = CollabDNN's Execute round "
        "trip less `server_ms`. *CollabDNN* sends each crossing with the codec the planner "
        "picks from both services' profiles and the agent's live link estimate after the "
        f"warm-up and {IDLE_S:.0f} s idle (up {link['up_mbps']:.0f}, down "
        f"{link['down_mbps']:.0f} Mbit/s, RTT {link['rtt_ms']:.2f} ms); *zstd-1* = the "
        "same agent with its default codec."
    )
    if before:
        intro += (
            f" *Before* = the runtime at `{data['baseline'][:10]}` with its default codec"
            " (zstd-1); *cut* = before less zstd-1 (the code's change, same codec)."
        )
    if raw:
        intro += " *Raw frames* = an agent started with `--zstd-level 0` (no compression)."
    fell = {LABELS[n]: len(f) for n, f in data.get("fallbacks", {}).items() if f}
    if fell:
        intro += " Requests that fell back to the phone (a call past its budget on the busy "
        intro += "machine; left out): " + ", ".join(f"{k} {v}" for k, v in fell.items()) + "."
    text = intro + "\n\n" + markdown_table(head, rows)
    return text


def plot(data: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [s for s in SYSTEMS if s in data["cuts"][0]]
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        xs = [j + i * width for j in range(len(data["cuts"]))]
        medians = [c[name]["median_ms"] for c in data["cuts"]]
        low = [c[name]["median_ms"] - c[name]["p25_ms"] for c in data["cuts"]]
        high = [c[name]["p75_ms"] - c[name]["median_ms"] for c in data["cuts"]]
        ax.bar(xs, medians, width, yerr=[low, high], capsize=3, label=LABELS[name])
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(data["cuts"]))])
    ax.set_xticklabels([f"cut after {c['cut_after']}" for c in data["cuts"]])
    ax.set_ylabel("hop ms (median, p25-p75)")
    ax.set_title("One cloud hop beyond the units' compute (loopback)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--requests", type=int, default=15, help="per system, cut and round")
    parser.add_argument("--baseline", default=None, help="git ref of the runtime to compare")
    parser.add_argument("--raw", action="store_true", help="also an agent sending raw frames")
    args = parser.parse_args()
    data = measure(args.rounds, args.requests, args.baseline, args.raw)
    table = render(data)
    write_results("hop", data, table)
    plot(data, RESULTS / "hop.png")
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
