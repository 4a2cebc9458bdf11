"""The benchmark's test bed: a weakened mobile agent and a cloud server, profiled, measured.

Why real processes: the point of the benchmark is to measure the runtime, not a model of
it, so the mobile agent and the cloud server run as the services a user starts (``python
-m collabdnn mobile|cloud``), requests go through the agent's Classify RPC, and the
profiles the planner uses are taken in processes with the same torch threads and the
same cgroup CPU quota as the services they describe.
"""

from __future__ import annotations

import logging
import math
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from collabdnn.netem.throttle import add_process
from collabdnn.placement import Placement, Side, spec_of
from collabdnn.planning.link import LINK_PRESETS, Link
from collabdnn.planning.planner import Cost
from collabdnn.planning.profiles import PlanInput, Profile, load_profile
from collabdnn.results import ClassifyResult
from collabdnn.testbed.procs import Service, _env

log = logging.getLogger(__name__)

# Fixed ports inside the benchmark's private namespace (nothing else listens there); a
# known cloud port lets tc's port filters be in place before any connection opens.
CLOUD_PORT = 50051
AGENT_PORT = 50053


@dataclass(frozen=True)
class SideSetup:
    """How one side runs: torch threads, device, and an optional cgroup (the quota)."""

    threads: int
    device: str = "cpu"
    cgroup: Path | None = None
    cpus: float | None = None  # the quota of ``cgroup``, for the record

    def describe(self) -> dict[str, Any]:
        return {"threads": self.threads, "device": self.device, "cpu_quota": self.cpus}


class Testbed:
    """A cloud server and a mobile agent for one model, started and profiled.

    The agent is moved into the mobile cgroup right after it starts (before its model
    has finished loading, so every request runs under the quota).
    """

    def __init__(
        self,
        model: str,
        mobile: SideSetup,
        cloud: SideSetup,
        *,
        weights: str = "seed:0",
        fixed_ports: bool = False,
        log_dir: Path | None = None,
    ) -> None:
        self.model = model
        self.weights = weights
        self.mobile = mobile
        self.cloud = cloud
        self.fixed_ports = fixed_ports
        self.log_dir = log_dir or Path(tempfile.mkdtemp(prefix="collabdnn-bench-"))
        self.cloud_service: Service | None = None
        self.agent_service: Service | None = None

    # -- services --------------------------------------------------------------------

    def start(self) -> Testbed:
        """Start both services at once (their model loads overlap), then wait for both.

        The agent joins the mobile cgroup once it is SERVING: requests run under the
        quota, loading the model does not (it would take minutes at a quarter CPU).
        """
        common = ["--model", self.model, "--weights", self.weights]
        cloud_args = [*common, "--threads", str(self.cloud.threads), "--device", self.cloud.device]
        if self.fixed_ports:
            cloud_args += ["--port", str(CLOUD_PORT)]
        cloud_address = f"127.0.0.1:{CLOUD_PORT}"
        try:
            self.cloud_service = Service("cloud", cloud_args, log_dir=self.log_dir).start()
            if not self.fixed_ports:
                cloud_address = self.cloud_service.address
            agent_args = [
                *common,
                "--threads",
                str(self.mobile.threads),
                "--cloud",
                cloud_address,
                "--timeout",
                "300",
                # The links change under the agent between parts (loopback while
                # profiling, then each preset): a call budget learnt on one would cut
                # the first calls on a slower one short. Every call gets --timeout.
                "--call-budget-factor",
                "1000",
            ]
            if self.fixed_ports:
                agent_args += ["--port", str(AGENT_PORT)]
            self.agent_service = Service("mobile", agent_args, log_dir=self.log_dir).start()
            self.cloud_service.wait_healthy()
            self.agent_service.wait_healthy()
            if self.mobile.cgroup is not None and self.agent_service.pid is not None:
                add_process(self.mobile.cgroup, self.agent_service.pid)
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def agent(self) -> str:
        assert self.agent_service is not None, "the test bed is not started"
        return self.agent_service.address

    @property
    def cloud_port(self) -> int:
        assert self.cloud_service is not None and self.cloud_service.port is not None
        return self.cloud_service.port

    def stop(self) -> None:
        for service in (self.agent_service, self.cloud_service):
            if service is not None:
                service.stop()
        self.agent_service = self.cloud_service = None

    def __enter__(self) -> Testbed:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- profiles --------------------------------------------------------------------

    def profile(self, image: Path, repeats: int, warmup: int) -> tuple[Profile, Profile]:
        """Profile each side in its own process, with that side's threads and quota.

        The services have no Profile RPC on this branch, so a profiling process per
        side (:mod:`benchmarks.paper.profile_side`, the same ``profile_model`` as
        ``collabdnn profile``) loads the model, joins that side's cgroup, and is timed
        alone: the two sides are profiled one after the other, never at once.
        """
        procs = {
            side: self._spawn_profiler(side, how, image, repeats, warmup)
            for side, how in (("mobile", self.mobile), ("cloud", self.cloud))
        }
        try:
            for side, (proc, _) in procs.items():
                assert proc.stdout is not None
                if proc.stdout.readline().strip() != "READY":
                    proc.wait(60)
                    raise RuntimeError(
                        f"the {side} profiler did not start:\n"
                        f"{proc.stderr.read()[-3000:] if proc.stderr else ''}"
                    )
            out = []
            for side, how in (("mobile", self.mobile), ("cloud", self.cloud)):
                proc, path = procs[side]
                if how.cgroup is not None:
                    add_process(how.cgroup, proc.pid)
                _, stderr = proc.communicate("go\n", timeout=900)
                if proc.returncode != 0:
                    raise RuntimeError(f"profiling the {side} side failed:\n{stderr[-3000:]}")
                out.append(load_profile(path))
            return out[0], out[1]
        finally:
            for proc, _ in procs.values():
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()

    def served_profiles(
        self, mobile: Profile, cloud: Profile, image: bytes, requests: int
    ) -> tuple[Profile, Profile]:
        """The profiles with each unit's latency taken from served requests instead.

        Why: under a 0.25-CPU quota the agent's own gRPC threads and Python share the
        budget with its torch work, so a unit runs slower in the agent than in a lean
        profiling process (about 25-35 % here).  Mobile-only and cloud-only requests
        time every unit in the real serving processes (the agent's and the server's
        per-unit timings); sizes and codec times stay the profiler's.
        """
        out = []
        for profile, spec in ((mobile, "mobile"), (cloud, "cloud")):
            for _ in range(2):
                classify_once(self.agent, image, spec)
            runs = [classify_once(self.agent, image, spec).unit_ms for _ in range(requests)]
            out.append(with_latencies(profile, [list(t) for t in zip(*runs, strict=True)]))
        return out[0], out[1]

    def _spawn_profiler(
        self, side: str, how: SideSetup, image: Path, repeats: int, warmup: int
    ) -> tuple[subprocess.Popen[str], Path]:
        out = self.log_dir / f"{self.model}-{side}-profile.json"
        argv = [
            sys.executable,
            "-m",
            "benchmarks.paper.profile_side",
            "--side",
            side,
            "--model",
            self.model,
            "--weights",
            self.weights,
            "--device",
            how.device,
            "--threads",
            str(how.threads),
            "--repeats",
            str(repeats),
            "--warmup",
            str(warmup),
            "--images",
            str(image),
            "-o",
            str(out),
        ]
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        return proc, out


def with_latencies(profile: Profile, per_unit_ms: Sequence[Sequence[float]]) -> Profile:
    """``profile`` with each unit's latency statistics replaced by ``per_unit_ms``."""
    from collabdnn.measure.profiler import latency_stats

    units = tuple(
        replace(u, latency_ms=latency_stats(times))
        for u, times in zip(profile.units, per_unit_ms, strict=True)
    )
    return replace(profile, units=units, host={**profile.host, "latency_source": "served"})


# ---------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class RequestSample:
    """What one Classify request cost, taken from the agent's own timings (ms)."""

    latency_ms: float
    network_ms: float  # Execute calls' round trip minus server time: the link's share
    codec_ms: float  # encode + decode of every crossing, both sides
    mobile_ms: float  # compute of the mobile units
    cloud_ms: float  # compute of the cloud units
    calls: int  # cloud calls (Execute)
    bytes_up: int
    bytes_down: int
    fallback: bool
    unit_ms: tuple[float, ...] = ()  # each unit's compute, on whichever side ran it

    @classmethod
    def from_result(cls, result: ClassifyResult) -> RequestSample:
        uploads = [t for t in result.transfers if t.upload]
        return cls(
            latency_ms=result.latency_ms,
            network_ms=sum(t.transfer_ms for t in result.transfers),
            codec_ms=sum(t.encode_ms + t.decode_ms for t in result.transfers),
            mobile_ms=sum(u.compute_ms for u in result.units if u.platform == Side.MOBILE),
            cloud_ms=sum(u.compute_ms for u in result.units if u.platform == Side.CLOUD),
            calls=len(uploads),
            bytes_up=result.bytes_up,
            bytes_down=result.bytes_down,
            fallback=result.fallback,
            unit_ms=tuple(u.compute_ms for u in result.units),
        )


def run_key(spec: str, codecs: Mapping[int, str] | None = None) -> str:
    """What a measured run is keyed by: its placement ``spec``, and the codec of each
    crossing when given (``SPEC@0=crop:webp,12=zstd:3``), so that a placement measured
    with the planner's codecs is not mixed with the same placement sent otherwise."""
    if not codecs:
        return spec
    return spec + "@" + ",".join(f"{b}={c}" for b, c in sorted(codecs.items()))


def codecs_of(cost: Cost) -> dict[int, str]:
    """The codec of each crossing of a priced placement."""
    return {t.boundary: t.codec for t in cost.transfers if t.codec}


def classify_once(agent: str, image: bytes, key: str, timeout_s: float = 300.0) -> RequestSample:
    """One Classify request through the agent with the placement (and the codecs) of
    ``key`` (a spec, or :func:`run_key`'s ``SPEC@B=CODEC,...``)."""
    from collabdnn.placement import Placement
    from mobile_agent.client import classify

    spec, _, rest = key.partition("@")
    codecs = {int(b): c for b, c in (part.split("=", 1) for part in rest.split(",") if part)}
    (result,) = classify(
        agent, [image], Placement.parse(spec), timeout=timeout_s, codecs=codecs or None
    )
    if result.fallback:
        raise RuntimeError(f"placement {spec} fell back to the phone: the cloud was not used")
    return RequestSample.from_result(result)


@dataclass
class Measurements:
    """Requests measured per placement on one (model, link), shared by parts 1 and 2.

    ``ensure`` only measures what is missing, so a plan part 1 measured 20 times is not
    measured again by part 2.
    """

    agent: str
    image: bytes
    warmup: int = 1
    samples: dict[str, list[RequestSample]] = field(default_factory=dict)
    progress: Callable[[str, int], Any] | None = None

    def ensure(self, spec: str, n: int) -> list[RequestSample]:
        have = self.samples.setdefault(spec, [])
        missing = n - len(have)
        if missing <= 0:
            return have
        if not have:
            for _ in range(self.warmup):  # a new placement's first call warms its path
                classify_once(self.agent, self.image, spec)
        bar = self.progress(spec, missing) if self.progress else None
        for _ in range(missing):
            have.append(classify_once(self.agent, self.image, spec))
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        return have


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def summarise(samples: Sequence[RequestSample]) -> dict[str, Any]:
    """Latency statistics and median breakdown of a plan's requests."""
    lat = [s.latency_ms for s in samples]

    def med(key: str) -> float:
        return float(statistics.median(getattr(s, key) for s in samples))

    share = [s.network_ms / s.latency_ms for s in samples if s.latency_ms > 0]
    share_codec = [(s.network_ms + s.codec_ms) / s.latency_ms for s in samples if s.latency_ms > 0]
    return {
        "n": len(samples),
        "median_ms": float(statistics.median(lat)),
        "p95_ms": percentile(lat, 95),
        "mean_ms": float(statistics.fmean(lat)),
        "min_ms": min(lat),
        "max_ms": max(lat),
        "network_ms": med("network_ms"),
        "codec_ms": med("codec_ms"),
        "mobile_compute_ms": med("mobile_ms"),
        "cloud_compute_ms": med("cloud_ms"),
        "calls": samples[0].calls,
        "bytes_up": int(med("bytes_up")),
        "bytes_down": int(med("bytes_down")),
        "communication_share": float(statistics.median(share)) if share else 0.0,
        "communication_share_with_codec": float(statistics.median(share_codec))
        if share_codec
        else 0.0,
        "latencies_ms": [round(v, 2) for v in lat],
    }


# -------------------------------------------------------------------------- the link


def measure_loopback_rtt(rounds: int = 40) -> dict[str, float]:
    """The round trip of an empty gRPC call on this loopback (what the RTT really is).

    The kernel has no netem, so tc cannot delay packets: the RTT every shaped run sees
    is this one, and the planner is given it instead of the preset's.
    """
    from collabdnn.transport.probe import ProbeClient, serve

    server, port = serve("127.0.0.1:0")
    try:
        with ProbeClient(f"127.0.0.1:{port}") as client:
            for _ in range(5):
                client.probe(8, 8)
            walls = [client.probe(8, 8).wall_ms for _ in range(rounds)]
    finally:
        server.stop(0)
    return {"median_ms": float(statistics.median(walls)), "p95_ms": percentile(walls, 95)}


def shaped_link(network: str, rtt_ms: float) -> Link:
    """The preset's rates for ``network`` with the RTT the loopback really has."""
    preset = LINK_PRESETS[network]
    return Link(preset.up_mbps, preset.down_mbps, rtt_ms, network)


def physical_bound(inp: PlanInput, link: Link, placement: Sequence[str]) -> dict[str, float]:
    """The least latency ``placement`` could have on this hardware and link.

    Compute of each unit on its side (profiled medians) + each crossing's bytes at the
    link's rate + one RTT per cloud call.  Everything the runtime adds (encoding,
    serialisation, gRPC, Python) is overhead against it.
    """
    compute = 0.0
    air = 0.0
    calls = 0
    where = "mobile"
    for i, (unit, side) in enumerate(zip(inp.units, placement, strict=True)):
        if side != where:
            bits = 8.0 * inp.boundaries[i].bytes
            air += bits / ((link.up_mbps if side == "cloud" else link.down_mbps) * 1e3)
            calls += side == "cloud"
            where = side
        compute += unit.mobile_ms if side == "mobile" else unit.cloud_ms
    if where != "mobile":
        air += 8.0 * inp.boundaries[-1].bytes / (link.down_mbps * 1e3)
    rtt = calls * link.rtt_ms
    return {
        "compute_ms": compute,
        "airtime_ms": air,
        "rtt_ms": rtt,
        "total_ms": compute + air + rtt,
        "calls": calls,
    }


def cut_spec(n_units: int, k: int) -> str:
    """Single cut ``k``: units ``[0, k)`` on the phone, ``[k, N)`` in the cloud."""
    return spec_of((Side.MOBILE,) * k + (Side.CLOUD,) * (n_units - k))


def single_cut_of(spec: str) -> int | None:
    """``k`` when ``spec`` (one letter per unit) is a single cut (``M^k C^(N-k)``), else
    None."""
    sides = Placement.parse(spec).per_unit
    k = next((i for i, side in enumerate(sides) if side != Side.MOBILE), len(sides))
    return k if all(side == Side.CLOUD for side in sides[k:]) else None


def profile_summary(
    mobile: Profile, cloud: Profile, inp: PlanInput, raw: PlanInput | None = None
) -> dict[str, Any]:
    """The measured mobile/cloud per-unit time ratio and both profiles' conditions.

    ``inp`` is what the planner used (latencies from served requests); ``raw`` the
    separate profiling processes' figures, kept for comparison.
    """
    ratios = [u.mobile_ms / u.cloud_ms for u in inp.units if u.cloud_ms > 0]
    total_m = math.fsum(u.mobile_ms for u in inp.units)
    total_c = math.fsum(u.cloud_ms for u in inp.units)
    return {
        "units": [
            {
                "name": u.name,
                "mobile_ms": u.mobile_ms,
                "cloud_ms": u.cloud_ms,
                "ratio": u.mobile_ms / u.cloud_ms if u.cloud_ms > 0 else None,
                "bytes_after": b.bytes,
            }
            for u, b in zip(inp.units, inp.boundaries[1:], strict=True)
        ],
        "input_bytes": inp.boundaries[0].bytes,
        "mobile_total_ms": total_m,
        "cloud_total_ms": total_c,
        "ratio_total": total_m / total_c if total_c > 0 else None,
        "ratio_median_per_unit": float(statistics.median(ratios)) if ratios else None,
        "mobile_threads": mobile.threads,
        "cloud_threads": cloud.threads,
        "mobile_device": mobile.device,
        "cloud_device": cloud.device,
        "repeats": mobile.units[0].latency_ms.repeats,
        "latency_source": mobile.host.get("latency_source", "profiler"),
        "profiler": None
        if raw is None
        else {
            "mobile_total_ms": math.fsum(u.mobile_ms for u in raw.units),
            "cloud_total_ms": math.fsum(u.cloud_ms for u in raw.units),
            "units": [
                {"name": u.name, "mobile_ms": u.mobile_ms, "cloud_ms": u.cloud_ms}
                for u in raw.units
            ],
        },
    }
