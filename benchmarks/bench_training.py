"""Which placements win for training vs inference on 3G, 4G and Wi-Fi (AlexNet).

Two parts, both on this one machine with one torch thread:

1. **Planned.** Inference and training profiles of AlexNet (seed:0 weights, batch 2) are
   measured here for the cloud; the phone's figures are the same measurements times
   ``PHONE_FACTOR`` (a *modelled* phone, as ``slower_profile`` makes one). For each
   network preset the planner picks the fastest placement for one inference and for
   one training step (forward + backward, the backward pass following the forward
   placement), and the least-energy one; mobile-only, cloud-only and the best single
   cut are the baselines.
2. **Measured.** Split training steps really run (both sides in this process, the link
   between them an *emulated* one: every frame waits its airtime and half the RTT in a
   token bucket, :mod:`collabdnn.measure.emulated`), for mobile-only, cloud-only and the
   training plan made for this machine (phone factor 1); each step's wall time is set
   beside the planner's prediction. Both sides run on the same CPU here.

    python -m benchmarks.bench_training [--steps 2] [--phone-factor 4]

Writes results/training.json, training.md (planned), training_measured.md and
training.png.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import RESULTS, markdown_table, write_results
from collabdnn.codec import decode, encode
from collabdnn.measure.emulated import TokenBucketShaper
from collabdnn.measure.profiler import profile_model
from collabdnn.measure.training_profiler import profile_training
from collabdnn.model.split_model import SplitModel, load_model
from collabdnn.placement import Placement, Side, spec_of
from collabdnn.planning.energy import power_model
from collabdnn.planning.link import LINK_PRESETS, Link
from collabdnn.planning.planner import Plan, plan
from collabdnn.planning.profiles import plan_input_from_profiles, slower_profile
from collabdnn.planning.training import TrainingInput, evaluate_training, plan_training
from collabdnn.planning.training_profiles import (
    TrainingProfile,
    slower_training_profile,
    training_input_from_profiles,
)
from collabdnn.training.side import SideTrainer
from collabdnn.training.spec import OptimizerConfig
from collabdnn.training.step import CloudInput, StepDriver

MODEL = "alexnet"
BATCH = 2
PHONE_FACTOR = 4.0
SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def _photos() -> list[bytes]:
    return [p.read_bytes() for p in sorted(SAMPLES.iterdir()) if p.suffix in {".png", ".jpg"}]


def _slower(profile: TrainingProfile, factor: float) -> TrainingProfile:
    return dataclasses.replace(slower_training_profile(profile, factor), side=Side.MOBILE)


def _row(kind: str, net: str, objective: str, chosen: Plan) -> dict[str, Any]:
    base = chosen.baselines
    return {
        "phase": kind,
        "network": net,
        "objective": objective,
        "placement": chosen.spec,
        "latency_ms": chosen.latency_ms,
        "energy_mj": chosen.mobile_energy_mj,
        "mobile_only_ms": base["mobile_only"].cost.latency_ms,
        "cloud_only_ms": base["cloud_only"].cost.latency_ms,
        "best_cut_ms": base["best_single_cut"].cost.latency_ms,
        "best_cut": spec_of(base["best_single_cut"].placement),
    }


def planned(model: SplitModel, photos: list[bytes], factor: float) -> tuple[list, TrainingProfile]:
    inference = profile_model(model, "cloud", photos, repeats=3, warmup=1, batch_size=BATCH)
    training = profile_training(model, Side.CLOUD, photos, batch_size=BATCH, repeats=2)
    phone = dataclasses.replace(slower_profile(inference, factor), side=Side.MOBILE)
    infer_input = plan_input_from_profiles(phone, inference)
    train_input = training_input_from_profiles(_slower(training, factor), training)
    rows = []
    for net, link in LINK_PRESETS.items():
        power = power_model(net)
        for objective in ("latency", "energy"):
            rows.append(
                _row("inference", net, objective, plan(infer_input, link, power, objective))
            )
            rows.append(
                _row("training", net, objective, plan_training(train_input, link, power, objective))
            )
    return rows, training


class EmulatedRemote:
    """The cloud's SideTrainer behind an emulated link: each frame waits its airtime
    (and half the RTT) in the token bucket before the other side sees it."""

    def __init__(self, trainer: SideTrainer, shaper: TokenBucketShaper) -> None:
        self.trainer, self.shaper = trainer, shaper

    def forward(self, step: int, start: int, end: int, payload: CloudInput) -> bytes:
        self.shaper.wait(
            len(payload) if isinstance(payload, bytes) else sum(map(len, payload)), "up"
        )
        x = list(payload) if isinstance(payload, tuple) else decode(payload)
        frame = encode(self.trainer.forward(step, start, end, x))
        self.shaper.wait(len(frame), "down")
        return frame

    def backward(self, step: int, start: int, grad: bytes) -> bytes | None:
        self.shaper.wait(len(grad), "up")
        upstream = self.trainer.backward(step, start, decode(grad))
        frame = None if upstream is None else encode(upstream)
        self.shaper.wait(0 if frame is None else len(frame), "down")
        return frame

    def commit(self, step: int) -> int:
        self.shaper.wait(0, "up")
        committed = self.trainer.commit(step)
        self.shaper.wait(0, "down")
        return committed

    def abort(self, step: int) -> int:
        return self.trainer.abort(step)


def measured(
    model: SplitModel, photos: list[bytes], training: TrainingProfile, steps: int
) -> list[dict[str, Any]]:
    """Steps of real split training on emulated links, beside the planner's prediction
    for this machine (phone factor 1: both sides are this CPU)."""
    here: TrainingInput = training_input_from_profiles(_slower(training, 1.0), training)
    rows = []
    batch = (photos[:BATCH], list(range(BATCH)))
    for net, preset in LINK_PRESETS.items():
        power = power_model(net)
        chosen = plan_training(here, preset, power, "latency").spec
        for name, spec in (("mobile-only", "mobile"), ("cloud-only", "cloud"), ("plan", chosen)):
            sides = Placement.parse(spec).resolve(model.num_units)
            predicted = evaluate_training(here, preset, power, sides).latency_ms
            times, up, down = _run(model, sides, preset, batch, steps)
            rows.append(
                {
                    "network": net,
                    "placement": name,
                    "spec": spec_of(sides),
                    "predicted_ms": predicted,
                    "measured_ms": sorted(times)[len(times) // 2],
                    "bytes_up": up,
                    "bytes_down": down,
                    "link": "emulated",
                    "phone": "same CPU",
                }
            )
    return rows


def _run(
    model: SplitModel, sides: tuple[Side, ...], link: Link, batch: Any, steps: int
) -> tuple[list[float], int, int]:
    optimizer = OptimizerConfig("sgd", 0.001)
    mobile = SideTrainer(model, Side.MOBILE, sides, optimizer)
    cloud = SideTrainer(model, Side.CLOUD, sides, optimizer)
    return _timed_steps(
        StepDriver(mobile, EmulatedRemote(cloud, TokenBucketShaper(link))), batch, steps
    )


def _timed_steps(driver: StepDriver, batch: Any, steps: int) -> tuple[list[float], int, int]:
    """One warm-up step, then ``steps`` timed ones: their times (ms) and the last one's
    bytes up and down."""
    driver.step(1, *batch)
    times, up, down = [], 0, 0
    for step in range(2, steps + 2):
        begin = time.perf_counter()
        result = driver.step(step, *batch)
        times.append((time.perf_counter() - begin) * 1e3)
        up, down = result.bytes_up, result.bytes_down
    return times, up, down


# --- part 3: real shaped links (root) ---------------------------------------------------

PORT = 50051
ROOT = Path(__file__).resolve().parent.parent


def shaped(
    model: SplitModel, training: TrainingProfile, steps: int, factor: float
) -> tuple[list[dict[str, Any]], str]:
    """Split training over real gRPC on a tc-shaped loopback in a private network
    namespace: the cloud server a subprocess there, the phone's side another, held to
    ``1/factor`` of a CPU by a cgroup quota (a phone ``factor`` times slower, as the
    planned part models it). Mobile-only, cloud-only and the training plan for that
    phone, measured beside the planner's predictions. Needs root; ([], why) elsewhere."""
    import subprocess
    import sys
    import tempfile

    from collabdnn.netem import shaping
    from collabdnn.netem.netns import NetNamespace, netns_available
    from collabdnn.netem.throttle import ThrottleError, add_process, cpu_quota

    ok, why = netns_available()
    if not ok:
        return [], why
    phone = training_input_from_profiles(_slower(training, factor), training)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    rows: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        ns = stack.enter_context(NetNamespace(prefix="collabdnn-train"))
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        try:
            quota: Path | None = stack.enter_context(cpu_quota(1.0 / factor))
        except ThrottleError as exc:
            return [], f"no CPU quota for the phone: {exc}"
        log = stack.enter_context((tmp / "cloud.log").open("w"))
        ns.popen(
            [sys.executable, "-m", "collabdnn", "cloud", "--insecure", "--model", MODEL,
             "--weights", "seed:0", "--threads", "1", "--port", str(PORT)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        for net, preset in LINK_PRESETS.items():
            result = shaping.apply(preset, "lo", cloud_port=PORT, netns=ns.name)
            # without netem the kernel adds no delay: the planner gets the loopback's RTT
            link = preset if result.delay_shaped else dataclasses.replace(preset, rtt_ms=0.1)
            power = power_model(net)
            chosen = plan_training(phone, link, power, "latency").spec
            specs = {"mobile-only": "mobile", "cloud-only": "cloud", "plan": chosen}
            proc = ns.popen(
                [sys.executable, "-m", "benchmarks.bench_training", "--child",
                 f"127.0.0.1:{PORT}", "--steps", str(steps), *specs.values()],
                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            if quota is not None:
                add_process(quota, proc.pid)  # the phone: 1/factor of a CPU
            out, err = proc.communicate(timeout=1500)
            if proc.returncode != 0:
                raise RuntimeError(f"the shaped run on {net} failed:\n{err[-3000:]}")
            for name, measured_row in zip(specs, json.loads(out), strict=True):
                sides = Placement.parse(measured_row["spec"]).resolve(model.num_units)
                rows.append(
                    {
                        "network": net,
                        "placement": name,
                        **measured_row,
                        "predicted_ms": evaluate_training(phone, link, power, sides).latency_ms,
                        "link": "tc" if result.delay_shaped else "tc, no delay",
                        "phone": f"{1 / factor:g} CPU",
                    }
                )
        shaping.clear("lo", netns=ns.name)
    return rows, ""


def child(cloud: str, specs: list[str], steps: int) -> int:
    """Inside the namespace: the phone's side of each placement against the cloud
    server, over real gRPC; prints one JSON row per placement."""
    import uuid

    from collabdnn.codec import CodecConfig
    from collabdnn.training.spec import BeginTraining, StatusRequest, TrainingSpec
    from collabdnn.transport.channels import open_channel
    from collabdnn.wire.stubs import CloudStub
    from collabdnn.wire.training_stubs import CloudTrainingStub
    from mobile_agent.training import CloudRemote, transient

    torch.set_num_threads(1)
    model = load_model(MODEL, "seed:0")
    photos = _photos()
    batch = (photos[:BATCH], list(range(BATCH)))
    optimizer = OptimizerConfig("sgd", 0.001)
    rows = []
    with open_channel(cloud) as channel:
        CloudStub(channel).info(timeout=300, wait_for_ready=True)
        stub = CloudTrainingStub(channel)
        for spec in specs:
            sides = Placement.parse(spec).resolve(model.num_units)
            session = uuid.uuid4().hex[:16]
            remote = None
            if Side.CLOUD in sides:
                plan_spec = TrainingSpec(model.name, model.weights_hash, spec_of(sides), optimizer)
                stub.begin(BeginTraining(session, plan_spec), timeout=300)
                remote = CloudRemote(stub, session, 300.0, CodecConfig())
            mobile = SideTrainer(model, Side.MOBILE, sides, optimizer)
            driver = StepDriver(mobile, remote, transient=transient)
            times, up, down = _timed_steps(driver, batch, steps)
            if remote is not None:
                stub.status(StatusRequest(session, end=True), timeout=60)
            rows.append(
                {
                    "spec": spec_of(sides),
                    "measured_ms": sorted(times)[len(times) // 2],
                    "bytes_up": up,
                    "bytes_down": down,
                }
            )
    print(json.dumps(rows))
    return 0


def _plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=False)
    nets = list(LINK_PRESETS)
    for ax, phase in zip(axes, ("inference", "training"), strict=True):
        picked = [r for r in rows if r["phase"] == phase and r["objective"] == "latency"]
        x = range(len(nets))
        for offset, key, label in (
            (-0.3, "mobile_only_ms", "mobile-only"),
            (-0.1, "cloud_only_ms", "cloud-only"),
            (0.1, "best_cut_ms", "best single cut"),
            (0.3, "latency_ms", "plan"),
        ):
            ax.bar([i + offset for i in x], [r[key] for r in picked], 0.2, label=label)
        for i, r in enumerate(picked):
            ax.annotate(
                r["placement"],
                (i + 0.3, r["latency_ms"]),
                ha="center",
                va="bottom",
                fontsize=6,
                rotation=90,
            )
        ax.set_xticks(list(x), nets)
        ax.set_yscale("log")
        ax.set_title(f"AlexNet {phase}, batch {BATCH} (predicted, ms)")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2, help="measured steps per run")
    parser.add_argument("--phone-factor", type=float, default=PHONE_FACTOR)
    parser.add_argument("--child", metavar="CLOUD", help=argparse.SUPPRESS)
    parser.add_argument("specs", nargs="*", help=argparse.SUPPRESS)
    parser.add_argument(
        "--render", action="store_true", help="redraw the tables and plot from the results"
    )
    args = parser.parse_args(argv)
    if args.render:
        _render(json.loads((RESULTS / "training.json").read_text()))
        return 0
    if args.child:
        return child(args.child, args.specs, args.steps)
    torch.set_num_threads(1)
    model = load_model(MODEL, "seed:0")
    photos = _photos()
    rows, training = planned(model, photos, args.phone_factor)
    runs = measured(model, photos, training, args.steps)
    real, skipped = shaped(model, training, args.steps, args.phone_factor)
    data = {
        "model": MODEL,
        "batch": BATCH,
        "phone_factor": args.phone_factor,
        "threads": 1,
        "planned": rows,
        "measured": runs,
        "shaped": real,
        "shaped_skipped": skipped,
        "steps": args.steps,
    }
    write_results("training", data, _planned_table(rows))
    _render(data)
    return 0


def _planned_table(rows: list[dict[str, Any]]) -> str:
    return markdown_table(
        ["network", "phase", "objective", "placement", "ms", "mJ", "mobile-only ms",
         "cloud-only ms", "best cut"],
        [
            [r["network"], r["phase"], r["objective"], r["placement"], f"{r['latency_ms']:.0f}",
             f"{r['energy_mj']:.0f}", f"{r['mobile_only_ms']:.0f}", f"{r['cloud_only_ms']:.0f}",
             r["best_cut"]]
            for r in rows
        ],
    )  # fmt: skip


def _render(data: dict[str, Any]) -> None:
    """The measured table and the plot, from the results (``--render`` redraws them)."""
    measured_table = markdown_table(
        ["network", "link", "phone", "placement", "spec", "predicted ms", "measured ms",
         "bytes up", "bytes down"],
        [
            [r["network"], r["link"], r["phone"], r["placement"], r["spec"],
             f"{r['predicted_ms']:.0f}", f"{r['measured_ms']:.0f}", f"{r['bytes_up']:,}",
             f"{r['bytes_down']:,}"]
            for r in data["measured"] + data["shaped"]
        ],
    )  # fmt: skip
    (RESULTS / "training_measured.md").write_text(measured_table + "\n")
    _plot(data["planned"], RESULTS / "training.png")
    print(_planned_table(data["planned"]))
    print(measured_table)


if __name__ == "__main__":
    raise SystemExit(main())
