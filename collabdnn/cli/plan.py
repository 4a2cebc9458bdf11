"""``collabdnn plan``: place a model's units from two saved profiles and a link.

Prints a table (unit, placement, compute time, the transfer after it, mobile energy;
then totals and baselines) or, with ``--json``, one JSON object with the contract keys
(``objective``, ``units``, ``placement``, ``predicted``, ``baselines``, ...).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from collabdnn.cli._power_args import add_power_arguments, power_overrides
from collabdnn.cli._service_args import non_negative_float
from collabdnn.transport.security import add_security_arguments


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", help="model name; must match the profiles' model (required without --scheduler)"
    )
    parser.add_argument(
        "--mobile-profile", metavar="FILE", help="profile JSON measured on the mobile side"
    )
    parser.add_argument(
        "--cloud-profile", metavar="FILE", help="profile JSON measured on the cloud side"
    )
    parser.add_argument(
        "--request-gap-ms",
        type=non_negative_float,
        metavar="MS",
        help="the phone is idle MS between requests on average (default: back to back); "
        "matters only for a mobile profile measured under a CPU quota: an idle phone "
        "starts a request with a whole CFS budget (collabdnn.planning.cfs)",
    )
    parser.add_argument(
        "--scheduler",
        metavar="HOST:PORT",
        help="print the live plan of a running scheduler instead (the other "
        "options are then ignored); a fleet scheduler prints every agent's plan "
        '(--json: {"agents": [...], "cloud": {...}})',
    )
    parser.add_argument(
        "--agent",
        metavar="ID",
        default="",
        help="with a fleet --scheduler: this agent's plan, in the single-agent shape",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        help="deadline of the scheduler call in seconds (default: 10)",
    )
    parser.add_argument(
        "--train-batch-size",
        type=int,
        default=0,
        metavar="B",
        help='with --scheduler: the training plan shown (--json key "training") is for '
        "steps of B images (default: the scheduler's --train-batch-size)",
    )
    parser.add_argument(
        "--train-timeout",
        type=float,
        default=120.0,
        metavar="S",
        help="deadline of the training-plan call in seconds; the scheduler's first "
        "training plan for a batch size profiles both sides (default: 120)",
    )
    add_security_arguments(parser)
    link = parser.add_argument_group("link (a --network preset, each figure overridable)")
    link.add_argument(
        "--network",
        choices=("3g", "4g", "wifi"),
        default="wifi",
        help="link preset and radio power model (default: wifi)",
    )
    link.add_argument("--up-mbps", type=float, help="uplink throughput, Mbit/s")
    link.add_argument("--down-mbps", type=float, help="downlink throughput, Mbit/s")
    link.add_argument("--rtt-ms", type=float, help="round-trip time, ms")
    obj = parser.add_argument_group("objective and constraints")
    obj.add_argument(
        "--objective",
        choices=("latency", "energy", "weighted", "deadline"),
        default="latency",
        help="what to minimise (default: latency)",
    )
    obj.add_argument(
        "--deadline-ms",
        type=float,
        help="latency bound for --objective deadline (least energy within it)",
    )
    obj.add_argument(
        "--weight",
        type=float,
        default=0.5,
        help="weighted objective: weight of latency in [0, 1] against energy, "
        "both relative to running everything on the phone (default 0.5)",
    )
    obj.add_argument(
        "--battery",
        type=float,
        metavar="F",
        help="battery fraction in [0, 1] (default: this machine's battery, "
        "or 1.0 when it has none)",
    )
    obj.add_argument(
        "--battery-threshold",
        type=float,
        default=0.2,
        metavar="T",
        help="below this battery fraction, plan for energy (default 0.2)",
    )
    obj.add_argument(
        "--cloud-load",
        type=float,
        default=1.0,
        metavar="K",
        help="cloud slowdown factor applied to cloud compute times (default 1)",
    )
    add_power_arguments(parser, "mobile power (defaults: see collabdnn.planning.energy)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    if args.scheduler:
        return _run_live(args)
    missing = [
        flag
        for flag, value in (
            ("--model", args.model),
            ("--mobile-profile", args.mobile_profile),
            ("--cloud-profile", args.cloud_profile),
        )
        if not value
    ]
    if missing:
        print(
            f"collabdnn plan: error: {', '.join(missing)} required (or --scheduler)",
            file=sys.stderr,
        )
        return 2
    return _run_offline(args)


def _run_live(args: argparse.Namespace) -> int:
    """Ask a scheduler for its current plan (the same JSON, plus plan_id and pushed)."""
    import grpc

    from collabdnn.transport.channels import open_channel
    from collabdnn.transport.security import config_from_args, describe_failure
    from collabdnn.wire.stubs import SchedulerStub

    security = config_from_args(args)
    try:
        with open_channel(args.scheduler, security_config=security) as channel:
            stub = SchedulerStub(channel)
            fleet = None if args.agent else _fleet(stub, args.timeout)
            if fleet is None:
                live = stub.get_plan(timeout=args.timeout, agent_id=args.agent)
                training, training_error = _training(stub, args)
    except grpc.RpcError as exc:
        why = describe_failure(args.scheduler, security, exc.code().name, exc.details())
        print(f"collabdnn plan: scheduler {args.scheduler}: {why}", file=sys.stderr)
        return 1
    if fleet is not None:
        print(json.dumps(fleet.to_dict(), indent=2) if args.json else render_fleet(fleet))
        return 0
    out = live.to_dict()
    if args.json:
        out["training"] = training.to_dict() if training else None
        if training_error:
            out["training_error"] = training_error
        print(json.dumps(out, indent=2))
    else:
        print(render_table(out))
        print(
            f"\nplan {out['plan_id']} from the scheduler at {args.scheduler}; "
            f"{'pushed to' if out['pushed'] else 'NOT yet taken by'} the agent"
        )
        if training is not None:
            print(
                f"training plan (batch {training.batch_size}): {training.plan.spec}, "
                f"{training.plan.latency_ms:.1f} ms and {training.plan.mobile_energy_mj:.1f} "
                "mJ per step predicted"
            )
        else:
            print(f"no training plan: {training_error}")
    return 0


def _training(stub: Any, args: argparse.Namespace) -> tuple[Any, str]:
    """The scheduler's training plan, or None and why not (a scheduler without training
    plans, or one whose profiling failed, still shows its inference plan)."""
    import grpc

    from collabdnn.services import TrainingPlanQuery

    query = TrainingPlanQuery(args.agent, max(0, args.train_batch_size))
    try:
        return stub.get_training_plan(query, timeout=args.train_timeout), ""
    except grpc.RpcError as exc:
        return None, f"{exc.code().name}: {(exc.details() or '')[:300]}"


def _fleet(stub: Any, timeout: float) -> Any:
    """The fleet (a FleetView) of a fleet scheduler; None from a single-agent one."""
    import grpc

    try:
        view = stub.get_fleet(timeout=timeout)
    except grpc.RpcError as exc:
        if exc.code() == grpc.StatusCode.UNIMPLEMENTED:  # a scheduler before fleet mode
            return None
        raise
    return view if view.fleet else None


def render_fleet(view: Any) -> str:
    """The readable form of a FleetView: one line per agent, then the cloud."""
    lines = [
        f"{'agent':<24} {'placement':<16} {'alone':<16} {'latency ms':>11} {'req/s':>7} "
        f"{'battery':>8} link"
    ]
    for a in view.agents:
        link = a.plan.plan.link
        lines.append(
            f"{a.agent_id:<24} {a.plan.plan.spec:<16} {a.alone_spec:<16} "
            f"{a.plan.plan.latency_ms:>11.1f} {a.rate_hz:>7.2f} {a.battery:>8.0%} "
            f"{link.network} {link.up_mbps:.1f}/{link.down_mbps:.1f} Mbit/s"
        )
    lines.append(
        f"\n{len(view.agents)} agents; cloud: {view.servers:g} servers ({view.replicas} "
        f"replicas), utilisation {view.utilisation:.0%} (alone {view.utilisation_alone:.0%}), "
        f"K={view.cloud_load:.2f}; capacity: {view.capacity_source}"
    )
    return "\n".join(lines)


def _run_offline(args: argparse.Namespace) -> int:
    from collabdnn.planning.energy import battery_fraction, power_model
    from collabdnn.planning.link import link_from_args
    from collabdnn.planning.planner import Constraints, plan
    from collabdnn.planning.profiles import ProfileError, load_profile, plan_input_from_profiles

    try:
        mobile = load_profile(args.mobile_profile)
        cloud = load_profile(args.cloud_profile)
        for profile in (mobile, cloud):
            if profile.model != args.model:
                raise ProfileError(
                    f"--model {args.model!r} but the {profile.side} profile is for "
                    f"{profile.model!r}"
                )
        inp = plan_input_from_profiles(mobile, cloud, args.request_gap_ms)
        link = link_from_args(args.network, args.up_mbps, args.down_mbps, args.rtt_ms)
        power = power_model(args.network, *power_overrides(args))
        # An explicit --battery wins (experiments); otherwise the machine's battery.
        battery = args.battery if args.battery is not None else battery_fraction(None)
        constraints = Constraints(
            deadline_ms=args.deadline_ms,
            battery_fraction=battery,
            battery_threshold=args.battery_threshold,
            cloud_load=args.cloud_load,
            weight=args.weight,
        )
        result = plan(inp, link, power, args.objective, constraints)
    except ValueError as exc:  # ProfileError is a ValueError
        print(f"collabdnn plan: error: {exc}", file=sys.stderr)
        return 2
    out = result.to_dict()
    out["model"] = args.model
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(render_table(out))
    return 0


def render_table(out: dict[str, Any]) -> str:
    """The readable form of a plan's dict (see :meth:`collabdnn.planning.planner.Plan.to_dict`)."""
    link = out["link"]
    lines = [
        f"Plan for {out['model']}: objective {out['objective']}"
        + (
            f" (used: {out['objective_used']})" if out["objective_used"] != out["objective"] else ""
        ),
        f"link: {link['network']}, up {link['up_mbps']:g} Mbit/s, down "
        f"{link['down_mbps']:g} Mbit/s, RTT {link['rtt_ms']:g} ms; cloud load "
        f"{out['constraints']['cloud_load']:g}",
    ]
    if out["reason"]:
        lines.append(f"note: {out['reason']}")
    lines.append("")
    lines += _unit_rows(out["breakdown"])
    pred = out["predicted"]
    lines += [
        "",
        f"placement {out['placement_spec']}: latency {pred['latency_ms']:.3f} ms, "
        f"mobile energy {pred['mobile_energy_mj']:.3f} mJ"
        + ("" if out["feasible"] else "  (misses the deadline)"),
        "",
        f"{'baseline':<20} {'placement':<{max(9, len(out['units']))}} "
        f"{'latency ms':>12} {'energy mJ':>12}",
    ]
    for name, base in out["baselines"].items():
        label = name + (f" k={base['cut']}" if "cut" in base else "")
        lines.append(
            f"{label:<20} {base['placement_spec']:<{max(9, len(out['units']))}} "
            f"{base['predicted']['latency_ms']:>12.3f} "
            f"{base['predicted']['mobile_energy_mj']:>12.3f}"
        )
    imp = out["improvement_pct"]
    lines.append(
        f"\nplan vs best single platform ({imp['vs']}): latency {_fmt_pct(imp['latency'])}, "
        f"mobile energy {_fmt_pct(imp['mobile_energy'])} better"
    )
    return "\n".join(lines)


def _unit_rows(breakdown: dict[str, Any]) -> list[str]:
    transfers = {t["boundary"]: t for t in breakdown["transfers"]}
    w = max([14, *(len(unit["name"]) for unit in breakdown["units"])])  # unit name column
    header = (
        f"{'#':>3} {'unit':<{w}} {'where':<7} {'compute ms':>11}  "
        f"{'transfer after it':<40} {'energy mJ':>10}"
    )
    rows = [header, "-" * len(header)]
    if 0 in transfers:
        t = transfers[0]
        rows.append(
            f"{'':>3} {'(input)':<{w}} {'':<7} {'':>11}  {_fmt_xfer(t):<40} {t['energy_mj']:>10.3f}"
        )
    for unit in breakdown["units"]:
        t = transfers.get(unit["index"] + 1)
        energy = unit["energy_mj"] + (t["energy_mj"] if t else 0.0)
        rows.append(
            f"{unit['index']:>3} {unit['name']:<{w}} {unit['platform']:<7} "
            f"{unit['compute_ms']:>11.3f}  {_fmt_xfer(t) if t else '':<40} {energy:>10.3f}"
        )
    return rows


def _fmt_xfer(t: dict[str, Any]) -> str:
    codec = f" {t['codec']}" if t.get("codec") else ""
    return f"{t['direction']:<4} {t['bytes']:>11,} B {t['ms']:>9.3f} ms{codec}"


def _fmt_pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}%"
