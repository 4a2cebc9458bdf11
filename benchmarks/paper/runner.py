"""Run the chosen parts on one machine: throttle the phone, shape the link, measure.

Runs in the current network namespace: ``collabdnn bench`` calls it inside a private
namespace it created (so tc touches nothing else), or, where shaping is impossible, on
the host's loopback with the shaped parts skipped.  Returns one JSON-ready dict per
part; :mod:`benchmarks.paper.report` writes them.
"""

from __future__ import annotations

import contextlib
import logging
import platform
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tqdm import tqdm

from benchmarks.paper.config import PARTS, BenchConfig
from benchmarks.paper.parts import (
    ModelRun,
    bounds_table,
    cuts_entry,
    hop_entry,
    paper_entry,
    throughput_entry,
)
from benchmarks.paper.testbed import (
    CLOUD_PORT,
    Measurements,
    SideSetup,
    Testbed,
    measure_loopback_rtt,
    profile_summary,
)
from collabdnn.planning.link import LINK_PRESETS, Link
from collabdnn.planning.profiles import plan_input_from_profiles

log = logging.getLogger(__name__)

RTT_NOTE = (
    "this kernel has no netem qdisc, so tc shapes the rates only: every shaped run "
    "sees the loopback's own round trip (measured, ~{rtt:.2f} ms per gRPC call), and "
    "the planner is given that RTT instead of the preset's"
)
HOP_CUTS = ("pool1", "pool3")  # a large and a small activation


class _Shaper:
    """Shapes the namespace's loopback per network and remembers whether delay works."""

    def __init__(self) -> None:
        self.delay_works: bool | None = None

    @staticmethod
    def status() -> dict[str, Any]:
        """The shaping read back from the kernel, recorded next to the measurements."""
        from collabdnn.netem import shaping

        return shaping.status().to_dict()

    def apply(self, network: str, cloud_port: int) -> bool:
        from collabdnn.netem import shaping

        preset = LINK_PRESETS[network]
        if self.delay_works is False:  # do not ask for (and warn about) delay again
            preset = Link(preset.up_mbps, preset.down_mbps, 0.0, network)
        result = shaping.apply(preset, cloud_port=cloud_port)
        if self.delay_works is None:
            self.delay_works = result.delay_shaped
        return bool(self.delay_works)

    @staticmethod
    def clear() -> None:
        from collabdnn.netem import shaping

        shaping.clear()


@contextlib.contextmanager
def _mobile_cgroup(cpus: float, period_us: int) -> Iterator[tuple[Path | None, str]]:
    """The mobile side's cgroup (quota ``cpus``), or None with the reason it is missing."""
    from collabdnn.netem.throttle import ThrottleError, cpu_quota

    with contextlib.ExitStack() as stack:
        try:
            folder = stack.enter_context(cpu_quota(cpus, period_us))
        except ThrottleError as exc:
            yield None, f"no CPU quota ({exc}); one torch thread only"
            return
        yield folder, (f"cgroup CPU quota of {cpus:g} CPU (CFS period {period_us / 1000:g} ms)")


def run(
    config: BenchConfig, shaping_problem: str | None, say: Callable[[str], None] = lambda _: None
) -> dict[str, dict[str, Any]]:
    """Measure ``config.parts``; ``shaping_problem`` None means tc shaping is possible here.

    ``say`` receives one-line progress messages (the CLI prints them above the bars).
    """
    parts = set(config.parts)
    shaped = shaping_problem is None and config.shape
    results: dict[str, dict[str, Any]] = {}
    image = config.image.read_bytes()
    shaper = _Shaper()
    with _mobile_cgroup(config.mobile_cpus, config.mobile_period_us) as (cgroup, throttle_note):
        mobile = SideSetup(
            config.mobile_threads, "cpu", cgroup, config.mobile_cpus if cgroup else None
        )
        cloud = SideSetup(config.cloud_threads)
        rtt = measure_loopback_rtt()
        say(f"loopback gRPC round trip: {rtt['median_ms']:.2f} ms (median)")
        setup: dict[str, Any] = {
            "mobile": {**mobile.describe(), "how": throttle_note},
            "cloud": {**cloud.describe(), "how": "no quota: the rest of the machine"},
            "machine_cores": _cores(),
            "kernel": platform.release(),
            "image": {"name": config.image.name, "bytes": len(image)},
            "loopback_rtt_ms": rtt,
            "shaping": "tc htb per direction (port filters) on the loopback of a private "
            "network namespace, MTU 1500"
            if shaped
            else f"none: {shaping_problem or 'disabled (--no-shape)'}",
            "config": config.to_dict(),
        }
        networks = tuple(config.networks) if shaped else ()
        paper: dict[str, Any] = {}
        cuts: dict[str, Any] = {}
        profiles: dict[str, Any] = {}
        unit_names: dict[str, tuple[str, ...]] = {}
        throughput: dict[str, Any] | None = None
        try:
            if shaped and networks:
                shaper.apply(networks[0], CLOUD_PORT)  # before any connection opens
            if parts & {1, 2, 4}:
                for model in config.models:
                    say(f"{model}: starting the services and profiling both sides")
                    with Testbed(
                        model, mobile, cloud, weights=config.weights, fixed_ports=shaped
                    ) as bed:
                        mob, clo = bed.profile(
                            config.image, config.profile_repeats, config.profile_warmup
                        )
                        raw = plan_input_from_profiles(mob, clo)
                        if shaped and networks:  # time the units on the fastest link
                            fastest = max(networks, key=lambda n: LINK_PRESETS[n].up_mbps)
                            shaper.apply(fastest, bed.cloud_port)
                        mob, clo = bed.served_profiles(mob, clo, image, config.served_requests)
                        inp = plan_input_from_profiles(mob, clo)
                        unit_names[model] = inp.names
                        profiles[model] = profile_summary(mob, clo, inp, raw)
                        say(
                            f"{model}: mobile/cloud time ratio "
                            f"{profiles[model]['ratio_total']:.2f} (whole model)"
                        )
                        mrun = ModelRun(model, inp, bed, config, image, rtt["median_ms"])
                        for network in networks:
                            delay = shaper.apply(network, bed.cloud_port)
                            if delay:
                                mrun.rtt_ms = rtt["median_ms"] + LINK_PRESETS[network].rtt_ms
                            meas = Measurements(
                                bed.agent, image, config.warmup, progress=_bar(f"{model} {network}")
                            )
                            tc_status = shaper.status()
                            if 1 in parts:
                                say(f"{model} on {network}: part 1 (paper strategies)")
                                entry = paper_entry(mrun, network, meas)
                                paper.setdefault(model, {})[network] = entry
                                entry["tc_status"] = tc_status
                            if 2 in parts:
                                say(f"{model} on {network}: part 2 (every single cut)")
                                entry = cuts_entry(mrun, network, meas)
                                cuts.setdefault(model, {})[network] = entry
                                entry["tc_status"] = tc_status
                                entry["tc_status_after"] = shaper.status()
                            if (
                                4 in parts
                                and throughput is None
                                and network == config.throughput_network
                            ):
                                say(f"{model} on {network}: part 4 (throughput)")
                                throughput = throughput_entry(mrun, mrun.link(network), network)
                        if 4 in parts and throughput is None:
                            say(f"{model}: part 4 (throughput) on the unshaped loopback")
                            throughput = throughput_entry(
                                mrun, Link(10_000.0, 10_000.0, rtt["median_ms"]), "loopback"
                            )
            if shaped:
                shaper.clear()
            rtt_note = (
                RTT_NOTE.format(rtt=rtt["median_ms"])
                if shaper.delay_works is False
                else "RTT shaped with netem"
                if shaper.delay_works
                else "no shaping"
            )
            setup["rtt"] = rtt_note
            if 1 in parts:
                results["paper"] = _paper_result(setup, profiles, paper, shaped, shaping_problem)
            if 2 in parts:
                results["cuts"] = _cuts_result(setup, profiles, cuts, shaped, shaping_problem)
            if 4 in parts:
                results["throughput"] = {"setup": setup, **(throughput or {})}
            if 3 in parts:
                say("part 3: overhead against the bound; a cloud hop on the bare loopback")
                results["overhead"] = _overhead_result(
                    config, setup, paper, unit_names.get(config.models[0], ())
                )
            if 5 in parts:
                results["gpu"] = _gpu_result(
                    config, setup, mobile, image, rtt["median_ms"], shaped, shaper, say
                )
        finally:
            if shaped:
                with contextlib.suppress(Exception):
                    shaper.clear()
    return results


def _bar(prefix: str) -> Callable[[str, int], Any]:
    return lambda spec, n: tqdm(total=n, desc=f"{prefix} {spec}", unit="req", leave=False)


def _cores() -> int | None:
    import os

    return os.cpu_count()


def _skipped(shaping_problem: str | None) -> dict[str, Any]:
    return {
        "skipped": f"links cannot be shaped here: {shaping_problem or 'shaping disabled'}; "
        "run as root on Linux (network namespaces + tc)"
    }


def _paper_result(
    setup: dict[str, Any],
    profiles: dict[str, Any],
    paper: dict[str, Any],
    shaped: bool,
    problem: str | None,
) -> dict[str, Any]:
    if not shaped:
        return {"setup": setup, **_skipped(problem)}
    return {
        "setup": setup,
        "profiles": profiles,
        "models": paper,
        "paper": {
            "latency_improvement_pct": 73,
            "energy_improvement_pct": 56,
            "communication_share_cloud_only": {"3g": 0.99, "4g": 0.93, "wifi": 0.81},
        },
    }


def _cuts_result(
    setup: dict[str, Any],
    profiles: dict[str, Any],
    cuts: dict[str, Any],
    shaped: bool,
    problem: str | None,
) -> dict[str, Any]:
    if not shaped:
        return {"setup": setup, **_skipped(problem)}
    entries = [e for nets in cuts.values() for e in nets.values()]
    return {
        "setup": setup,
        "profiles": profiles,
        "models": cuts,
        "summary": {
            "links": len(entries),
            "picks_ok": sum(e["pick_ok"] for e in entries),
            "tolerance_pct": 5.0,
            "worst_pick_gap_pct": max((e["pick_gap_pct"] for e in entries), default=None),
        },
    }


def _overhead_result(
    config: BenchConfig, setup: dict[str, Any], paper: dict[str, Any], names: tuple[str, ...]
) -> dict[str, Any]:
    model = config.models[0]
    side_m = SideSetup(config.mobile_threads)
    side_c = SideSetup(config.cloud_threads)
    if not names:
        from collabdnn.model.split_model import load_model

        names = tuple(u.name for u in load_model(model, config.weights).units)
    cuts = HOP_CUTS[-1:] if config.quick else HOP_CUTS
    with Testbed(model, side_m, side_c, weights=config.weights) as bed:
        hop = hop_entry(bed, names, config.image, cuts, config)
    return {
        "setup": setup,
        "bounds": bounds_table({"models": paper}),
        "hop": {
            "model": model,
            "link": "unshaped loopback (MTU 65536)",
            "mobile": side_m.describe(),
            "cloud": side_c.describe(),
            "note": "no CPU quota here, so the runtime's own cost is not stretched by "
            "throttling; torch.distributed.rpc sends raw float tensors, "
            "CollabDNN zstd-compressed frames",
            **hop,
        },
    }


def _gpu_result(
    config: BenchConfig,
    setup: dict[str, Any],
    mobile: SideSetup,
    image: bytes,
    rtt_ms: float,
    shaped: bool,
    shaper: _Shaper,
    say: Callable[[str], None],
) -> dict[str, Any]:
    import torch

    if not torch.cuda.is_available():
        return {"skipped": "no CUDA device", "setup": setup}
    if not shaped:
        return {"skipped": "no CUDA run without shaped links", "setup": setup}
    model = config.models[0]
    cloud = SideSetup(config.cloud_threads, "cuda")
    out: dict[str, Any] = {"setup": {**setup, "cloud": cloud.describe()}, "models": {}}
    networks = tuple(config.networks)
    shaper.apply(networks[0], CLOUD_PORT)
    try:
        with Testbed(model, mobile, cloud, weights=config.weights, fixed_ports=True) as bed:
            mob, clo = bed.profile(config.image, config.profile_repeats, config.profile_warmup)
            raw = plan_input_from_profiles(mob, clo)
            mob, clo = bed.served_profiles(mob, clo, image, config.served_requests)
            inp = plan_input_from_profiles(mob, clo)
            out["profiles"] = {model: profile_summary(mob, clo, inp, raw)}
            mrun = ModelRun(model, inp, bed, config, image, rtt_ms)
            for network in networks:
                say(f"{model} on {network}: part 5 (cloud on CUDA)")
                shaper.apply(network, bed.cloud_port)
                meas = Measurements(
                    bed.agent, image, config.warmup, progress=_bar(f"gpu {model} {network}")
                )
                out["models"].setdefault(model, {})[network] = paper_entry(mrun, network, meas)
    finally:
        shaper.clear()
    return out


__all__ = ["PARTS", "run"]
