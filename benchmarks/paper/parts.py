"""The benchmark's parts, each a function from a test bed to a JSON-ready dict.

Kept apart from the orchestration (:mod:`benchmarks.paper.runner`) and the rendering
(:mod:`benchmarks.paper.report`) so that what is measured, and how each figure is
derived from the raw requests, reads in one place.
"""

from __future__ import annotations

import math
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.paper.config import BenchConfig
from benchmarks.paper.testbed import (
    Measurements,
    Testbed,
    classify_once,
    codecs_of,
    cut_spec,
    physical_bound,
    run_key,
    shaped_link,
    single_cut_of,
    summarise,
)
from collabdnn.placement import Placement, Side, spec_of
from collabdnn.planning.energy import power_model
from collabdnn.planning.link import LINK_PRESETS, Link
from collabdnn.planning.planner import evaluate, plan
from collabdnn.planning.profiles import PlanInput

STRATEGIES = ("mobile_only", "cloud_only", "best_single_cut", "collabdnn")
OBJECTIVES = ("latency", "energy")
PICK_TOLERANCE = 0.05  # the pick is right when within 5% of the measured best


@dataclass
class ModelRun:
    """One model on the test bed: its plan input and the link RTT the planner is given."""

    model: str
    inp: PlanInput
    bed: Testbed
    config: BenchConfig
    image: bytes
    rtt_ms: float

    def link(self, network: str) -> Link:
        return shaped_link(network, self.rtt_ms)

    def placement(self, spec: str) -> tuple[Side, ...]:
        return Placement.parse(spec).resolve(len(self.inp.units))


def _pct(reference: float, value: float) -> float | None:
    return None if reference <= 0 else 100.0 * (reference - value) / reference


# ------------------------------------------------------------------ part 1: the paper


def paper_entry(run: ModelRun, network: str, meas: Measurements) -> dict[str, Any]:
    """Mobile-only, cloud-only, best single cut and the plan, for each objective.

    Latency is measured (median and p95 of ``requests`` Classify calls); mobile energy
    is modelled (:func:`collabdnn.planning.planner.evaluate` on the measured profiles, the link
    and the network's power model), since a server has no phone battery to read.
    """
    link = run.link(network)
    power = power_model(network)
    out: dict[str, Any] = {
        "link": link.to_dict(),
        "preset_link": LINK_PRESETS[network].to_dict(),
        "power": power.to_dict(),
        "objectives": {},
    }
    for objective in OBJECTIVES:
        chosen = plan(run.inp, link, power, objective)
        strategies: dict[str, Any] = {}
        for name in STRATEGIES:
            # Each strategy runs with the codec of each crossing its plan chose (the
            # plan's, or the baseline's: cloud-only ships the photo as it is).
            cost = chosen.cost if name == "collabdnn" else chosen.baselines[name].cost
            placement = tuple(u.platform for u in cost.units)
            spec = spec_of(placement)
            codecs = codecs_of(cost)
            samples = meas.ensure(run_key(spec, codecs), run.config.requests)
            strategies[name] = {
                "spec": spec,
                "codecs": {str(b): c for b, c in codecs.items()},
                "cut": single_cut_of(spec),
                "measured": summarise(samples),
                "predicted": cost.predicted(),
                "predicted_transfer_ms": math.fsum(t.ms for t in cost.transfers),
                "predicted_transfer_mj": math.fsum(t.energy_mj for t in cost.transfers),
                "predicted_mobile_compute_mj": math.fsum(
                    u.energy_mj for u in cost.units if u.platform == Side.MOBILE
                ),
                "bound": physical_bound(run.inp, link, placement),
            }
        out["objectives"][objective] = {
            "plan": chosen.spec,
            "strategies": strategies,
            "improvement": _improvement(objective, strategies),
            "predicted_improvement_pct": chosen.improvement_pct(),
        }
    out["communication_share_cloud_only"] = _communication_share(run, network, out)
    return out


def _improvement(objective: str, strategies: dict[str, Any]) -> dict[str, Any]:
    """The plan against the best single platform: measured latency, modelled energy."""
    singles = ("mobile_only", "cloud_only")
    if objective == "latency":
        ref = min(singles, key=lambda s: strategies[s]["measured"]["median_ms"])
    else:
        ref = min(singles, key=lambda s: strategies[s]["predicted"]["mobile_energy_mj"])
    plan_entry, ref_entry = strategies["collabdnn"], strategies[ref]
    return {
        "vs": ref,
        "latency_measured_pct": _pct(
            ref_entry["measured"]["median_ms"], plan_entry["measured"]["median_ms"]
        ),
        "energy_modelled_pct": _pct(
            ref_entry["predicted"]["mobile_energy_mj"], plan_entry["predicted"]["mobile_energy_mj"]
        ),
    }


def _communication_share(run: ModelRun, network: str, entry: dict[str, Any]) -> dict[str, Any]:
    """How much of cloud-only is communication: measured, modelled, and with the preset RTT.

    Measured: the Execute call's network time (round trip minus server time) over the
    request's latency (median over requests), and the same with the codec's time added.
    Modelled: the planner's transfer time (codec + airtime + RTT) over its latency, on
    the shaped link and on the preset link with its RTT, which this kernel cannot shape.
    """
    cloud = entry["objectives"]["latency"]["strategies"]["cloud_only"]
    placement = run.placement(cloud["spec"])
    preset = LINK_PRESETS[network]
    power = power_model(network)
    codecs = {int(b): c for b, c in cloud["codecs"].items()}
    preset_cost = evaluate(run.inp, preset, power, placement, codecs=codecs)
    return {
        "measured": cloud["measured"]["communication_share"],
        "measured_with_codec": cloud["measured"]["communication_share_with_codec"],
        "modelled": cloud["predicted_transfer_ms"] / cloud["predicted"]["latency_ms"],
        "modelled_energy": cloud["predicted_transfer_mj"] / cloud["predicted"]["mobile_energy_mj"],
        "modelled_preset_rtt": math.fsum(t.ms for t in preset_cost.transfers)
        / preset_cost.latency_ms,
        "modelled_energy_preset_rtt": math.fsum(t.energy_mj for t in preset_cost.transfers)
        / preset_cost.mobile_energy_mj,
    }


# --------------------------------------------------------------- part 2: every single cut


def cuts_entry(run: ModelRun, network: str, meas: Measurements) -> dict[str, Any]:
    """Measure every single cut and check the planner's latency pick against the best.

    Cuts other than the plan get as many requests as fit ``cut_budget_s`` (at least
    ``min_cut_requests``): on 3G a cut after conv1 costs seconds per request.
    """
    cfg = run.config
    link = run.link(network)
    power = power_model(network)
    n = len(run.inp.units)
    chosen = plan(run.inp, link, power, "latency")
    specs = [cut_spec(n, k) for k in range(n + 1)]
    if chosen.spec not in specs:
        specs.append(chosen.spec)
    rows = []
    for spec in specs:
        placement = run.placement(spec)
        cost = chosen.cost if spec == chosen.spec else evaluate(run.inp, link, power, placement)
        predicted = cost.latency_ms
        wanted = (
            cfg.requests
            if spec == chosen.spec
            else min(
                cfg.requests, max(cfg.min_cut_requests, round(cfg.cut_budget_s * 1e3 / predicted))
            )
        )
        measured = summarise(meas.ensure(run_key(spec, codecs_of(cost)), wanted))
        rows.append(
            {
                "spec": spec,
                "cut": single_cut_of(spec),
                "after_unit": _after(run.inp, single_cut_of(spec)),
                "predicted_ms": predicted,
                "measured": measured,
                "error_pct": 100.0 * (predicted - measured["median_ms"]) / measured["median_ms"],
                "bound": physical_bound(run.inp, link, placement),
                "is_plan": spec == chosen.spec,
            }
        )
    best = min(rows, key=lambda r: r["measured"]["median_ms"])
    picked = next(r for r in rows if r["is_plan"])
    gap = picked["measured"]["median_ms"] / best["measured"]["median_ms"] - 1.0
    errors = [abs(r["error_pct"]) for r in rows]
    # The shaper's effective uplink, from the big uploads (network time also holds the
    # small logits' trip down and one RTT): evidence that the link was what we assume.
    goodput = [
        8.0 * r["measured"]["bytes_up"] / (r["measured"]["network_ms"] * 1e3)
        for r in rows
        if r["measured"]["bytes_up"] >= 50_000 and r["measured"]["network_ms"] > 0
    ]
    return {
        "measured_uplink_mbps": float(statistics.median(goodput)) if goodput else None,
        "link": link.to_dict(),
        "plan": chosen.spec,
        "plan_measured_ms": picked["measured"]["median_ms"],
        "best_measured": best["spec"],
        "best_measured_ms": best["measured"]["median_ms"],
        "pick_gap_pct": 100.0 * gap,
        "pick_ok": gap <= PICK_TOLERANCE,
        "median_abs_error_pct": float(statistics.median(errors)),
        "max_abs_error_pct": max(errors),
        "rows": rows,
    }


def _after(inp: PlanInput, cut: int | None) -> str | None:
    if cut is None:
        return None
    return "input" if cut == 0 else inp.units[cut - 1].name


# ---------------------------------------------------------------- part 3: overhead, hop


def bounds_table(paper: dict[str, Any]) -> list[dict[str, Any]]:
    """Every part-1 plan's measured latency against its physical bound."""
    rows = []
    seen = set()
    for model, networks in paper.get("models", {}).items():
        for network, entry in networks.items():
            for objective, obj in entry["objectives"].items():
                for name, s in obj["strategies"].items():
                    key = (model, network, s["spec"])
                    if key in seen:
                        continue
                    seen.add(key)
                    median = s["measured"]["median_ms"]
                    bound = s["bound"]["total_ms"]
                    rows.append(
                        {
                            "model": model,
                            "network": network,
                            "strategy": name,
                            "objective": objective,
                            "spec": s["spec"],
                            "measured_ms": median,
                            "bound_ms": bound,
                            "predicted_ms": s["predicted"]["latency_ms"],
                            "ratio": median / bound if bound > 0 else None,
                            "overhead_ms": median - bound,
                            "bound": s["bound"],
                        }
                    )
    return rows


def hop_entry(
    bed: Testbed,
    names: Sequence[str],
    image_path: Path,
    cut_after: Sequence[str],
    config: BenchConfig,
) -> dict[str, Any]:
    """A cloud hop on the bare loopback: CollabDNN vs a raw gRPC echo vs torch RPC.

    For each cut: CollabDNN's per-request cost outside compute (latency minus the
    units' compute: encoding, gRPC, decoding, the agent's Python), and its Execute
    call's network time (round trip minus server time); a raw gRPC echo
    (:mod:`collabdnn.transport.probe`, no protos) of the same bytes up and down, made
    back to back (every thread hot: below any hop) and made as a hop is made (the
    client computes units ``[0, k)`` first, the server ``[k, N)`` before replying:
    :mod:`benchmarks.hop_echo`), the honest floor; and ``torch.distributed.rpc`` doing
    the same split, whose hop is its RPC time minus the worker's compute.
    """
    from benchmarks.hop_echo import EchoClient, EchoServer
    from benchmarks.paper.torch_rpc import run_pair
    from collabdnn.model.split_model import load_model

    image = image_path.read_bytes()
    names = list(names)
    meas = Measurements(bed.agent, image, warmup=3)
    model = load_model(bed.model, bed.weights)
    out = []
    with (
        _probe_server() as target,
        EchoServer(image_path, bed.model, bed.weights, bed.cloud.threads) as echo_server,
    ):
        from collabdnn.transport.probe import ProbeClient

        client = ProbeClient(target)
        hoplike = EchoClient(echo_server.address)
        try:
            for name in cut_after:
                k = names.index(name) + 1
                spec = cut_spec(len(names), k)
                samples = meas.ensure(spec, config.hop_requests)
                summary = summarise(samples)
                hop = [s.latency_ms - s.mobile_ms - s.cloud_ms for s in samples]
                up, down = summary["bytes_up"], summary["bytes_down"]
                for _ in range(3):
                    client.probe(up, down)
                echo = [client.probe(up, down).wall_ms for _ in range(config.hop_requests)]
                like = []
                for index in range(3 + config.hop_requests):
                    model.run(0, k, image)  # the client computes first, as the agent does
                    wall_ms, server_ms = hoplike.call(up, down, k)
                    if index >= 3:
                        like.append(wall_ms - server_ms)
                torch_rpc = run_pair(
                    bed.model,
                    k,
                    image_path,
                    requests=config.hop_requests,
                    client_threads=bed.mobile.threads,
                    worker_threads=bed.cloud.threads,
                )
                collab_hop = float(statistics.median(hop))
                echo_ms = float(statistics.median(echo))
                floor_ms = float(statistics.median(like))
                out.append(
                    {
                        "cut_after": name,
                        "cut": k,
                        "spec": spec,
                        "bytes_up": up,
                        "bytes_down": down,
                        "collabdnn": {
                            "latency_ms": summary["median_ms"],
                            "hop_ms": collab_hop,
                            "network_ms": summary["network_ms"],
                            "codec_ms": summary["codec_ms"],
                            "mobile_compute_ms": summary["mobile_compute_ms"],
                            "cloud_compute_ms": summary["cloud_compute_ms"],
                            "n": summary["n"],
                        },
                        "grpc_echo_ms": echo_ms,  # back to back
                        "hoplike_echo_ms": floor_ms,
                        "torch_rpc": torch_rpc,
                        "ratios": {
                            "latency_vs_torch_rpc": summary["median_ms"] / torch_rpc["latency_ms"],
                            "hop_vs_torch_rpc": collab_hop / torch_rpc["hop_ms"],
                            "network_vs_grpc_echo": summary["network_ms"] / echo_ms,
                            "hop_vs_grpc_echo": collab_hop / echo_ms,
                            "network_vs_hoplike_echo": summary["network_ms"] / floor_ms,
                            "hop_vs_hoplike_echo": collab_hop / floor_ms,
                        },
                    }
                )
        finally:
            client.close()
            hoplike.close()
    return {"cuts": out}


class _probe_server:
    """A probe (raw gRPC echo) server process on a free loopback port."""

    def __enter__(self) -> str:
        from collabdnn.testbed.procs import _env

        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "collabdnn.testbed.probe_run",
                "serve",
                "--address",
                "127.0.0.1:0",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=_env(),
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().split()
        if len(line) != 2 or line[0] != "READY":
            self.proc.kill()
            raise RuntimeError("the probe server did not start")
        return f"127.0.0.1:{line[1]}"

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()


# ----------------------------------------------------------------- part 4: throughput


def stage_times(inp: PlanInput, link: Link, k: int) -> dict[str, float]:
    """Per-image busy time of each pipeline stage of single cut ``k`` (ms, modelled).

    Stages: the phone (units ``[0, k)``, encoding boundary k, decoding the logits), the
    uplink (boundary k's airtime), the cloud (decoding, units ``[k, N)``, encoding the
    logits), the downlink.  With requests in flight the stages overlap, so throughput
    is at most ``1 / max(stage)``.
    """
    n = len(inp.units)
    b_k, b_n = inp.boundaries[k], inp.boundaries[n]
    return {
        "mobile": math.fsum(u.mobile_ms for u in inp.units[:k])
        + b_k.mobile_encode_ms
        + b_n.mobile_decode_ms,
        "uplink": 8.0 * b_k.bytes / (link.up_mbps * 1e3),
        "cloud": b_k.cloud_decode_ms
        + math.fsum(u.cloud_ms for u in inp.units[k:])
        + b_n.cloud_encode_ms,
        "downlink": 8.0 * b_n.bytes / (link.down_mbps * 1e3),
    }


def throughput_entry(run: ModelRun, link: Link, label: str) -> dict[str, Any]:
    """Images per second with 1, 2, 4... clients in flight, against the stage bound.

    The split is the single cut (both sides used) with the highest bound, i.e. the most
    balanced pipeline.  Each client classifies ``throughput_images`` images back to back
    through its own channel; throughput is all images over the wall time.
    """
    cfg = run.config
    n = len(run.inp.units)
    options = []
    for k in range(1, n):
        stages = stage_times(run.inp, link, k)
        options.append((1e3 / max(stages.values()), k, stages))
    bound, k, stages = max(options, key=lambda o: (o[0], -o[1]))
    spec = cut_spec(n, k)
    classify_once(run.bed.agent, run.image, spec)  # warm-up
    pids = _side_pids(run.bed)
    levels = []
    for clients in cfg.concurrency:
        level = _measured_cpu(
            pids,
            lambda c=clients: _concurrent(run.bed.agent, run.image, spec, c, cfg.throughput_images),
        )
        level.update(cpu_bound(level, stages, run.bed.mobile.cpus))
        levels.append(level)
    single = levels[0]
    measured_stage = {
        "mobile": single["median_mobile_compute_ms"],
        "link": single["median_network_ms"],
        "cloud": single["median_cloud_compute_ms"],
    }
    for level in levels:
        level["ratio_to_bound"] = level["images_per_s"] / bound
        level["speedup_vs_1"] = level["images_per_s"] / single["images_per_s"]
    return {
        "network": label,
        "link": link.to_dict(),
        "spec": spec,
        "cut": k,
        "cut_after": run.inp.units[k - 1].name,
        "stages_ms": stages,
        "bottleneck": max(stages, key=lambda s: stages[s]),
        "bound_images_per_s": bound,
        "serial_images_per_s": 1e3 / math.fsum(stages.values()),
        "measured_stages_ms_at_1": measured_stage,
        "levels": levels,
    }


def _side_pids(bed: Testbed) -> dict[str, int]:
    pids = {}
    for side, service in (("mobile", bed.agent_service), ("cloud", bed.cloud_service)):
        if service is not None and service.pid is not None:
            pids[side] = service.pid
    return pids


def _measured_cpu(pids: dict[str, int], run: Any) -> dict[str, Any]:
    """``run()``'s result with the CPU time each side's process used meanwhile, per
    image (ms): everything the process did, the units and its own runtime alike."""

    def used() -> dict[str, float]:
        return {side: _cpu_s(pid) for side, pid in pids.items()}

    before = used()
    level: dict[str, Any] = run()
    after = used()
    level["cpu_ms_per_image"] = {
        side: 1e3 * (after[side] - before[side]) / level["images"] for side in pids
    }
    return level


def _cpu_s(pid: int) -> float:
    """CPU seconds process ``pid`` has used, threads that have exited included (in
    clock ticks, 10 ms: a level's hundreds of ms are measured to a few per cent)."""
    import psutil

    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def cpu_bound(
    level: dict[str, Any], stages: dict[str, float], mobile_cpus: float | None
) -> dict[str, Any]:
    """The throughput bound from what each side's process measurably spent per image.

    The modelled stages count the units (medians) and the codec only; each process also
    spends CPU on gRPC, threads and its own Python (20-25% of the agent's), and under a
    CPU quota the phone's stage is its CPU per image over the quota. The bound is the
    tightest of: the phone's quota (or the machine), the machine's cores shared by both
    processes, and each direction of the link.
    """
    import os

    cores = float(os.cpu_count() or 1)
    cpu = level.get("cpu_ms_per_image", {})
    limits = {
        "uplink": 1e3 / stages["uplink"] if stages["uplink"] > 0 else math.inf,
        "downlink": 1e3 / stages["downlink"] if stages["downlink"] > 0 else math.inf,
    }
    if cpu.get("mobile"):
        limits["mobile CPU"] = 1e3 * (mobile_cpus or cores) / cpu["mobile"]
    if cpu:
        limits["machine CPU"] = 1e3 * cores / max(sum(cpu.values()), 1e-9)
    limit = min(limits, key=lambda name: limits[name])
    return {
        "cpu_bounds_images_per_s": limits,
        "cpu_bound_images_per_s": limits[limit],
        "cpu_bottleneck": limit,
        "ratio_to_cpu_bound": level["images_per_s"] / limits[limit],
    }


def _concurrent(agent: str, image: bytes, spec: str, clients: int, images: int) -> dict[str, Any]:
    from benchmarks.paper.testbed import RequestSample
    from collabdnn.placement import Placement
    from mobile_agent.client import classify

    placement = Placement.parse(spec)
    results: list[list[RequestSample]] = [[] for _ in range(clients)]
    errors: list[BaseException] = []

    def client(index: int) -> None:
        try:
            done = classify(agent, [image] * images, placement, timeout=300)
            results[index] = [RequestSample.from_result(r) for r in done]
        except BaseException as exc:  # reported below, not lost in a thread
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    begin = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - begin
    if errors:
        raise errors[0]
    flat = [s for r in results for s in r]
    return {
        "clients": clients,
        "images": len(flat),
        "wall_s": wall,
        "images_per_s": len(flat) / wall,
        "median_latency_ms": float(statistics.median(s.latency_ms for s in flat)),
        "median_mobile_compute_ms": float(statistics.median(s.mobile_ms for s in flat)),
        "median_cloud_compute_ms": float(statistics.median(s.cloud_ms for s in flat)),
        "median_network_ms": float(statistics.median(s.network_ms for s in flat)),
        "fallbacks": sum(s.fallback for s in flat),
    }
