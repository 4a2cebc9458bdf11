"""``collabdnn demo``: the whole system on the sample photos, end to end.

Starts a cloud server, a mobile agent and the scheduler as subprocesses on free ports,
waits until the scheduler has profiled both sides and pushed its plan to the agent,
shows the plan (per-unit placement, baselines, predicted latency and energy), then
classifies the photos under the scheduler's plan, its baselines and several fixed
placements (mobile only, cloud only, mobile->cloud->mobile, cloud->mobile->cloud->
mobile), prints predicted against measured latency, and stops every service, also on
Ctrl-C or SIGTERM.

By default it shows why splitting pays: the phone is a weaker device (a cgroup CPU
quota of ``--mobile-cpus`` cores where one can be set, otherwise the planner's
``--mobile-slowdown``, and the output says which), on a preset link (``--link 4g``). It
prints the predicted mobile-only, cloud-only and chosen latency and what makes the
difference (the bytes each sends, the codec of each crossing, who computes what).

``--link 3g|4g|wifi`` runs on a shaped link: as root with network namespaces, the whole
demo re-runs inside a private namespace whose loopback tc shapes to the preset (nothing
outside is touched); elsewhere the agent's in-process emulated shaper
(``--emulate-link``) delays its cloud calls instead, and results say "emulated".
``--link loopback`` leaves the link as it is.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path
from types import FrameType

from collabdnn.cli._service_args import non_negative_float, positive_float

LOG_LEVEL = logging.INFO
DEFAULT_LINK = "4g"
DEFAULT_MOBILE_CPUS = 0.15  # a phone about 6x slower than one core of this machine
DEFAULT_SLOWDOWN = 4.0

log = logging.getLogger(__name__)


def default_weights(model: str) -> str:
    """``imagenet`` when its checkpoint is in the local torch cache, else ``seed:0``."""
    from collabdnn.errors import UnknownModelError, WeightsError
    from collabdnn.model.registry import get_spec, parse_model_name
    from collabdnn.model.weights import imagenet_weights_path

    try:
        spec = get_spec(parse_model_name(model).base)
        return "imagenet" if imagenet_weights_path(spec).is_file() else "seed:0"
    except (UnknownModelError, WeightsError):
        return "seed:0"


def demo_placements(num_units: int) -> dict[str, str]:
    """Named placements for a model of ``num_units`` units, unit 0 included."""
    from collabdnn.placement import Side, spec_of

    q = max(1, num_units // 4)
    mcm = spec_of((Side.MOBILE,) * q + (Side.CLOUD,) * (num_units - 2 * q) + (Side.MOBILE,) * q)
    cmcm = spec_of([(Side.CLOUD, Side.MOBILE)[(i * 4 // num_units) % 2] for i in range(num_units)])
    return {
        "mobile only": "mobile",
        "cloud only": "cloud",
        "mobile->cloud->mobile": mcm,
        "cloud->mobile->cloud->mobile": cmcm,
    }


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="alexnet", help="model name (default: alexnet)")
    parser.add_argument(
        "--weights", default=None, help="default: imagenet if in the local torch cache, else seed:0"
    )
    parser.add_argument(
        "--images",
        nargs="+",
        type=Path,
        metavar="IMAGE",
        help="photos to classify (default: the samples/ folder)",
    )
    parser.add_argument(
        "--placement",
        action="append",
        default=[],
        metavar="SPEC",
        help="extra placement to run (repeatable)",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads per service")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument(
        "--link",
        choices=("3g", "4g", "wifi", "loopback"),
        default=DEFAULT_LINK,
        help=f"shape the link to this preset (tc in a private namespace as root, else the "
        f"agent's emulated shaper; default {DEFAULT_LINK}); loopback: not shaped. On a "
        "shaped link one photo by default",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="classifications per photo and placement for the measured latency (default: 2)",
    )
    parser.add_argument(
        "--mobile-cpus",
        type=non_negative_float,
        default=None,
        metavar="F",
        help=f"make the agent a weaker device: a cgroup CPU quota of F cores (root; default "
        f"{DEFAULT_MOBILE_CPUS:g} where a quota can be set, 0 = off). On a throttled agent "
        "the link estimate also absorbs the agent's own slow sending",
    )
    parser.add_argument(
        "--mobile-slowdown",
        type=positive_float,
        default=None,
        metavar="F",
        help=f"where no CPU quota is set, plan for a phone F times slower than the agent "
        f"measured (the scheduler's --mobile-slowdown; default {DEFAULT_SLOWDOWN:g}, 1 = off)",
    )
    parser.add_argument("--inside-netns", action="store_true", help=argparse.SUPPRESS)


def _raise_interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    if args.link == "loopback":
        args.link = None
    if args.link and not args.inside_netns:
        from collabdnn.netem.netns import netns_available

        available, reason = netns_available()
        if available:
            return _rerun_in_namespace(args)
        log.warning(
            "--link %s: cannot shape a real link (%s); using the agent's EMULATED "
            "link shaper instead",
            args.link,
            reason,
        )
    from collabdnn.samples import sample_images

    try:
        images = args.images or sample_images()
    except FileNotFoundError as exc:  # an installed package has no samples/
        print(f"demo: no images: pass --images ({exc})", file=sys.stderr)
        return 2
    if args.link and not args.images:  # a slow link: one photo, the smallest, stays quick
        images = sorted(images, key=lambda p: p.stat().st_size)[:1]
    weights = args.weights or default_weights(args.model)
    meaningful = weights != "seed:0" and not weights.startswith("seed:")
    if not meaningful and not args.json:
        print(
            f"NOTE: weights {weights!r} are random (no ImageNet checkpoint in the local torch "
            "cache), so the labels below are NOT meaningful; the split execution is. "
            f"Fetch the official weights once, where there is network: "
            f"collabdnn weights fetch {args.model}\n"
        )
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)  # clean up on SIGTERM too
    try:
        return _run(args, images, weights, meaningful)
    except KeyboardInterrupt:
        print("demo: interrupted; services stopped", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


CLOUD_PORT_IN_NETNS = 50051


def _rerun_in_namespace(args: argparse.Namespace) -> int:
    """Shape a private namespace's loopback to the preset and run this demo inside."""
    import os

    from collabdnn.netem import shaping
    from collabdnn.netem.netns import NetNamespace
    from collabdnn.planning.link import LINK_PRESETS

    argv = [sys.executable, "-m", "collabdnn", *sys.argv[1:]] if sys.argv[1:] else []
    if "demo" not in argv:
        argv = [sys.executable, "-m", "collabdnn", "demo", "--link", args.link]
    argv.append("--inside-netns")
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    with NetNamespace(prefix="collabdnn-demo") as ns:
        result = shaping.apply(
            LINK_PRESETS[args.link], cloud_port=CLOUD_PORT_IN_NETNS, netns=ns.name
        )
        log.info(
            "demo inside namespace %s, loopback shaped to %s%s",
            ns.name,
            LINK_PRESETS[args.link],
            "" if result.delay_shaped else " (RTT NOT shaped: no netem in this kernel)",
        )
        code = _run_in(ns.name, argv, env)
        if code is None:
            code = ns.run(argv, timeout=900, env=env, capture_output=False).returncode
        return code


def _run_in(netns: str, argv: list[str], env: dict[str, str]) -> int | None:
    """Run ``argv`` in network namespace ``netns`` with ``nsenter``, which (unlike ``ip
    netns exec``) leaves ``/sys`` mounted as it is, cgroups included, so that the agent
    can still be given a CPU quota there; None where nsenter cannot be used."""
    import shutil
    import subprocess

    handle = Path("/run/netns") / netns
    nsenter = shutil.which("nsenter")
    if nsenter is None or not handle.exists():
        return None
    return subprocess.run(
        [nsenter, f"--net={handle}", *argv], env=env, timeout=900, check=False
    ).returncode


def _stack_args(args: argparse.Namespace, images: list[Path]) -> dict:
    """Per-service arguments: the link (real or emulated) and the profiling photos."""
    network = args.link or "wifi"
    agent = ["--network", network]
    scheduler = ["--network", network, "--images", *map(str, images), "--profile-repeats", "3"]
    cloud_port = None
    if args.link and args.inside_netns:
        cloud_port = CLOUD_PORT_IN_NETNS  # tc tells up from down by this port
    elif args.link:
        agent += ["--emulate-link", args.link]
    cpus, slowdown, _ = weaker_phone(args)
    if slowdown != 1.0:
        scheduler += ["--mobile-slowdown", f"{slowdown:g}"]
    return {
        "agent_args": agent,
        "scheduler_args": scheduler,
        "cloud_port": cloud_port,
        "mobile_cpus": cpus or None,
    }


def weaker_phone(args: argparse.Namespace) -> tuple[float, float, str]:
    """(CPU quota in cores, planner slowdown, what that means): a cgroup quota where
    one can be set (a genuinely slower agent: measured times show it), otherwise the
    planner's slowdown (the agent runs at full speed; only the plan assumes a slower
    phone). ``--mobile-cpus`` and ``--mobile-slowdown`` override either."""
    from collabdnn.netem.throttle import quota_available

    available, why_not = quota_available()
    cpus = args.mobile_cpus
    if cpus is None:
        cpus = DEFAULT_MOBILE_CPUS if available else 0.0
    slowdown = args.mobile_slowdown
    if slowdown is None:
        slowdown = 1.0 if cpus and available else DEFAULT_SLOWDOWN
    if cpus and available:
        note = f"phone: the agent limited to {cpus:g} CPU by a cgroup quota"
    elif cpus:
        note = f"phone: NOT throttled ({why_not})"
    else:
        note = "phone: the agent runs at full speed"
    if slowdown != 1.0:
        reason = f", no CPU quota here: {why_not}" if not available else ""
        note += (f"; the planner assumes a phone {slowdown:g}x slower than measured "
                 f"(--mobile-slowdown{reason}), measured times do not")  # fmt: skip
    return cpus, slowdown, note


def _link_note(args: argparse.Namespace) -> str:
    if not args.link:
        return "link: loopback, not shaped"
    if args.inside_netns:
        return f"link: {args.link} preset, shaped with tc in a private network namespace"
    return f"link: {args.link} preset, EMULATED in the agent (no root/tc here)"


def _run(args: argparse.Namespace, images: list[Path], weights: str, meaningful: bool) -> int:
    from collabdnn.placement import Placement
    from collabdnn.testbed.stack import Stack
    from mobile_agent.client import classify

    common = ["--model", args.model, "--weights", weights, "--threads", str(args.threads)]
    data = [p.read_bytes() for p in images]
    stack = Stack(common, **_stack_args(args, images))
    with stack:
        assert stack.agent is not None
        stack.wait_agent_plan(lambda spec, plan: plan.source == "scheduler", timeout=60)
        plan = _plan_for_measured_link(stack)
        num_units = len(plan["units"])
        compared = {"scheduler plan": plan["placement_spec"]}
        compared.update(
            {
                "baseline " + name.replace("_", " "): base["placement_spec"]
                for name, base in plan["baselines"].items()
            }
        )
        placements = demo_placements(num_units)
        placements.update({spec: spec for spec in args.placement})
        runs = []
        for title, spec in {**compared, **placements}.items():
            # The scheduler's plan runs as the agent holds it, with its codec per
            # crossing; each baseline with its own codecs (cloud-only: the photo); the
            # fixed placements with the agent's default codec.
            placement = None if title == "scheduler plan" else Placement.parse(spec)
            codecs = _codecs(_entry(plan, title)) if title in compared else None
            classify(stack.agent.address, data[:1], placement, codecs=codecs)  # warm-up
            results = []
            for _ in range(max(1, args.rounds)):
                results += classify(stack.agent.address, data, placement, codecs=codecs)
            runs.append((title, spec, results))
        mobile = f"mobile agent: {args.threads} thread(s), {stack.mobile_throttle}; "
        mobile += weaker_phone(args)[2]
    return _report(args, images, weights, meaningful, plan, compared, runs, mobile)


def _plan_for_measured_link(stack, wait_s: float = 10.0) -> dict:  # stack: Stack
    """The scheduler's plan once the agent has reported its measured link.

    The scheduler starts from the preset link; the agent probes the real one at once and
    reports it. A report that moves the link less than the re-plan threshold changes no
    plan, so the demo asks for one re-plan after the report, to show predictions for
    the link as measured.
    """
    import time

    from collabdnn.services import ReplanRequest
    from collabdnn.transport.channels import open_channel
    from collabdnn.wire.stubs import AgentStub, SchedulerStub

    deadline = time.monotonic() + wait_s
    with open_channel(stack.agent.address) as channel:
        agent = AgentStub(channel)
        while time.monotonic() < deadline:
            link = agent.info(timeout=5).link
            if link is not None and link.observations:
                break
            time.sleep(0.2)
    time.sleep(min(2.5, max(0.0, deadline - time.monotonic())))  # its report period
    with open_channel(stack.scheduler_address) as channel:
        live = SchedulerStub(channel).replan(
            ReplanRequest(reason="demo: the link as the agent measured it"), timeout=30
        )
    stack.wait_agent_plan(lambda spec, plan: plan.plan_id == live.plan_id, timeout=30)
    return live.to_dict()


def why(plan: dict) -> dict:
    """Why the plan beats (or is) each single platform, from the plan's own figures:
    predicted latency, who computes how long, what crosses the link with which codec."""
    rows = {}
    for name, entry in (
        ("mobile only", plan["baselines"]["mobile_only"]),
        ("cloud only", plan["baselines"]["cloud_only"]),
        ("this plan", plan),
    ):
        units = entry["breakdown"]["units"]
        transfers = entry["breakdown"]["transfers"]
        rows[name] = {
            "spec": entry["placement_spec"],
            "latency_ms": entry["predicted"]["latency_ms"],
            "phone_ms": sum(u["compute_ms"] for u in units if u["platform"] == "mobile"),
            "cloud_ms": sum(u["compute_ms"] for u in units if u["platform"] == "cloud"),
            "link_ms": sum(t["ms"] for t in transfers),
            "crossings": [
                f"{t['direction']} {t['bytes']:,} B after {t['after_unit']} ({t['codec'] or '-'})"
                for t in transfers
            ],
        }
    ours = rows["this plan"]["latency_ms"]
    singles = sorted(("mobile only", "cloud only"), key=lambda n: rows[n]["latency_ms"])
    best = rows[singles[0]]["latency_ms"]
    first = (plan["breakdown"]["transfers"] or [{}])[0]
    if ours >= best * (1 - 1e-9):
        hint = "a slower link" if singles[0] == "cloud only" else "a faster link or a weaker phone"
        verdict = (
            f"the plan is no faster than {singles[0]}: on this link and phone splitting "
            f"does not pay (try {hint})"
        )
    else:
        verdict = (
            f"{100 * (best - ours) / best:.0f}% less latency than {singles[0]}, the better "
            f"single platform ({best:.1f} -> {ours:.1f} ms), and "
            f"{100 * (1 - ours / rows[singles[1]]['latency_ms']):.0f}% less than {singles[1]}"
        )
        if str(first.get("codec", "")).startswith("crop:"):
            photo = plan["baselines"]["cloud_only"]["breakdown"]["transfers"][0]["bytes"]
            verdict += (
                f": the phone resizes and crops the photo and sends the crop losslessly "
                f"as {first['codec'].removeprefix('crop:')} ({first['bytes']:,} B instead "
                f"of the photo's {photo:,} B), bit for bit what the cloud would have made"
            )
        elif rows["this plan"]["phone_ms"] and rows["this plan"]["cloud_ms"]:
            verdict += ": the phone runs the units whose output is small, the cloud the rest"
    return {"rows": rows, "verdict": verdict}


def _print_why(reasons: dict) -> None:
    print("\n=== why this plan (predicted) ===")
    print(f"  {'':<12} {'placement':<14} {'latency ms':>10} {'phone ms':>9} {'cloud ms':>9} "
          f"{'link ms':>8}  crossings")  # fmt: skip
    for name, row in reasons["rows"].items():
        print(
            f"  {name:<12} {row['spec']:<14} {row['latency_ms']:>10.1f} {row['phone_ms']:>9.1f} "
            f"{row['cloud_ms']:>9.1f} {row['link_ms']:>8.1f}  {'; '.join(row['crossings']) or '-'}"
        )
    print(f"  => {reasons['verdict']}")


def _entry(plan: dict, title: str) -> dict:
    """The plan (``scheduler plan``) or the baseline a comparison row is titled after."""
    if title == "scheduler plan":
        return plan
    return plan["baselines"][title.removeprefix("baseline ").replace(" ", "_")]


def _codecs(entry: dict) -> dict[int, str]:
    """The codec of each crossing of a plan or baseline, from its breakdown."""
    return {t["boundary"]: t["codec"] for t in entry["breakdown"]["transfers"] if t["codec"]}


def _comparison(plan: dict, compared: dict[str, str], runs: list) -> list[dict]:
    import statistics

    rows = []
    for title, spec, results in runs:
        if title not in compared:
            continue
        predicted = _entry(plan, title)["predicted"]
        rows.append(
            {
                "name": title,
                "spec": spec,
                "predicted_ms": predicted.get("latency_ms"),
                "measured_ms": statistics.median(r.latency_ms for r in results),
                "predicted_mj": predicted.get("mobile_energy_mj"),
                "modelled_mj": statistics.median(r.mobile_energy_mj or 0.0 for r in results),
                "emulated_link": any(r.emulated_link for r in results),
            }
        )
    return rows


def _report(
    args: argparse.Namespace,
    images: list[Path],
    weights: str,
    meaningful: bool,
    plan: dict,
    compared: dict[str, str],
    runs: list,
    mobile: str,
) -> int:
    from collabdnn.cli.classify import format_result, result_json
    from collabdnn.cli.plan import render_table

    names = [p.name for p in images]
    rows = _comparison(plan, compared, runs)
    fixed = [(t, s, rs) for t, s, rs in runs if t not in compared]
    if args.json:
        print(
            json.dumps(
                {
                    "model": args.model,
                    "weights": weights,
                    "labels_meaningful": meaningful,
                    "link": _link_note(args),
                    "mobile": mobile,
                    "scheduler_plan": plan,
                    "why": why(plan),
                    "comparison": rows,
                    "runs": [
                        {
                            "name": title,
                            "spec": spec,
                            "results": [
                                result_json(n, r)
                                for n, r in zip(names * args.rounds, rs, strict=False)
                            ],
                        }
                        for title, spec, rs in fixed
                    ],
                },
                indent=2,
            )
        )
        return 0
    print(
        f"model {args.model}, weights {weights}, {len(plan['units'])} units "
        f"(unit 0 = preprocessing); {_link_note(args)}; {mobile}"
    )
    print(f"\n=== the scheduler's plan {plan['plan_id']} ===")
    print(render_table(plan))
    _print_why(why(plan))
    print(
        "\n=== predicted vs measured end-to-end latency (median over "
        f"{len(images)} photo(s) x {args.rounds}) ==="
    )
    print(
        f"  {'plan':<26} {'placement':<14} {'predicted ms':>12} {'measured ms':>12} "
        f"{'error':>7} {'pred. mJ':>9} {'modelled mJ':>11}"
    )
    for row in rows:
        pred, meas = row["predicted_ms"], row["measured_ms"]
        err = f"{100 * (meas - pred) / pred:+.0f}%" if pred else "-"
        print(
            f"  {row['name']:<26} {row['spec']:<14} {pred or 0:>12.1f} {meas:>12.1f} "
            f"{err:>7} {row['predicted_mj'] or 0:>9.1f} {row['modelled_mj']:>11.1f}"
            + ("  (emulated link)" if row["emulated_link"] else "")
        )
    print(
        "  (energy is modelled from measured times with the power model; see "
        "collabdnn.planning.energy)"
    )
    for title, spec, results in fixed:
        print(f"\n=== {title} ({spec}) ===")
        print(_summary(names, results[: len(names)]))
        print(f"\nper-unit timings, {names[0]}:")
        print(format_result(names[0], results[0], per_unit=True))
    return 0


def _summary(names: list[str], results: list) -> str:
    rows = [
        f"  {'image':<16} {'top-1':<28} {'prob':>7} {'latency ms':>10} "
        f"{'up B':>10} {'down B':>10} {'energy mJ':>10}"
    ]
    for name, r in zip(names, results, strict=True):
        top = r.top[0]
        rows.append(
            f"  {name:<16} {top.label[:28]:<28} {top.probability:7.2%} "
            f"{r.latency_ms:10.1f} {r.bytes_up:>10,} {r.bytes_down:>10,} "
            f"{r.mobile_energy_mj or 0:>10.1f}" + ("  emulated link" if r.emulated_link else "")
        )
    return "\n".join(rows)
