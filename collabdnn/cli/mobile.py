"""``collabdnn mobile``: start the mobile agent."""

from __future__ import annotations

import argparse
import logging

from collabdnn.cli._model_args import model_name, unit_costs
from collabdnn.cli._power_args import add_power_arguments, power_overrides
from collabdnn.cli._service_args import (
    add_image_limit_args,
    add_service_args,
    announce,
    fraction,
    non_negative_float,
    positive_float,
    positive_int,
    zstd_level,
)
from collabdnn.cli._training_args import add_checkpoint_dir_arg
from collabdnn.cli._work_args import add_work_limit_args, work_limits_from_args
from collabdnn.placement import Placement, PlacementError

LOG_LEVEL = logging.INFO  # a service says what it does


def _placement(text: str) -> str:
    try:
        Placement.parse(text)
    except PlacementError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def configure(parser: argparse.ArgumentParser) -> None:
    add_service_args(parser, default_port=50053)
    parser.add_argument(
        "--cloud",
        default="",
        metavar="HOST:PORT",
        help="the cloud server (default: none, everything runs locally)",
    )
    parser.add_argument(
        "--placement",
        type=_placement,
        default="mobile",
        metavar="SPEC",
        help="initial plan: mobile, cloud, or one letter M/C per unit "
        "(unit 0, preprocessing, included), e.g. MMMCCCCCCMMM",
    )
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=30.0,
        help="upper bound of each cloud call's deadline in seconds, and the deadline "
        "before a segment has a call budget (default: 30)",
    )
    parser.add_argument(
        "--call-budget-factor",
        type=positive_float,
        default=3.0,
        help="each cloud call's deadline is this many times what the same segment "
        "recently took, at least --call-budget-floor-ms and at most --timeout; "
        "past it the agent finishes locally (default: 3)",
    )
    parser.add_argument(
        "--call-budget-floor-ms",
        type=positive_float,
        default=250.0,
        help="smallest cloud call budget, ms (default: 250)",
    )
    parser.add_argument(
        "--health-watch-s",
        type=float,
        default=5.0,
        help="after this long without a successful cloud call, check the cloud "
        "(2 s deadline) and stop offloading if it does not answer; 0 = never (default: 5)",
    )
    parser.add_argument(
        "--zstd-level",
        type=zstd_level,
        default=1,
        help="zstd level of activations sent, -7..22 (0 = raw; default: 1)",
    )
    parser.add_argument(
        "--shuffle", action="store_true", help="byte-shuffle float activations before zstd"
    )
    parser.add_argument(
        "--max-frame-mb",
        type=positive_float,
        default=512.0,
        help="largest decoded activation accepted (default: 512 MB)",
    )
    parser.add_argument(
        "--breaker-reset-s",
        type=positive_float,
        default=2.0,
        help="after a cloud failure, run every unit locally this long, then "
        "probe the cloud once (default: 2)",
    )
    parser.add_argument(
        "--breaker-failures",
        type=positive_int,
        default=1,
        help="consecutive cloud failures that stop offloading (default: 1)",
    )
    parser.add_argument(
        "--max-concurrent",
        type=positive_int,
        default=16,
        help="Classify requests handled at once; more are refused "
        "RESOURCE_EXHAUSTED at once, not queued (default: 16)",
    )
    add_image_limit_args(parser)
    add_work_limit_args(parser)
    add_checkpoint_dir_arg(parser)
    sched = parser.add_argument_group("scheduler and link estimation")
    sched.add_argument(
        "--scheduler",
        default="",
        metavar="HOST:PORT",
        help="report to this scheduler (it pushes plans back): heartbeats to a fleet "
        "scheduler, link and battery reports to a single-agent one; the agent keeps its "
        "last plan while it is away",
    )
    sched.add_argument(
        "--agent-id",
        default="",
        metavar="ID",
        help="this agent's id in a fleet scheduler: 1-64 characters from A-Z a-z 0-9 . _ "
        ": - (default: its advertised address)",
    )
    sched.add_argument(
        "--advertise",
        default="",
        metavar="HOST:PORT",
        help="where the fleet scheduler reaches this agent to push plans (default: "
        "--host and the port bound; 127.0.0.1 for a wildcard --host)",
    )
    sched.add_argument(
        "--heartbeat-s",
        type=positive_float,
        default=2.0,
        help="seconds between heartbeats to a fleet scheduler (default: 2)",
    )
    sched.add_argument(
        "--plan-slowdown",
        type=positive_float,
        default=1.0,
        metavar="F",
        help="tell a fleet scheduler this phone is F times slower than the profile it "
        "plans from (default: 1)",
    )
    sched.add_argument(
        "--expected-rate",
        type=non_negative_float,
        default=0.0,
        metavar="HZ",
        help="requests per second to plan for until a higher rate is measured "
        "(fleet scheduler; default: 0)",
    )
    sched.add_argument(
        "--network",
        choices=("3g", "4g", "wifi"),
        default="wifi",
        help="the radio: power model and the link assumed before measuring",
    )
    sched.add_argument(
        "--battery",
        type=fraction,
        metavar="F",
        help="battery fraction to report when this machine has no battery",
    )
    sched.add_argument(
        "--report-s",
        type=positive_float,
        default=2.0,
        help="seconds between reports (a changed estimate goes at once)",
    )
    sched.add_argument(
        "--probe-idle-s",
        type=positive_float,
        default=1.0,
        help="probe the link after this long without cloud traffic while the "
        "plan uses the cloud (default: 1)",
    )
    sched.add_argument(
        "--probe-mobile-s",
        type=positive_float,
        default=10.0,
        help="... and this often while it does not (default: 10)",
    )
    sched.add_argument(
        "--report-change",
        type=non_negative_float,
        default=0.1,
        help="report at once when the estimate moved by this fraction (default: 0.1)",
    )
    sched.add_argument("--no-probe", action="store_true", help="never send probe calls")
    sched.add_argument(
        "--link-window",
        type=positive_int,
        default=8,
        help="cloud calls fitted by the link estimator (default: 8)",
    )
    sched.add_argument(
        "--link-alpha",
        type=fraction,
        default=0.5,
        help="EWMA weight of each new link fit (default: 0.5)",
    )
    add_power_arguments(parser, "mobile power, for each result's modelled energy")
    emu = parser.add_argument_group(
        "emulated link (no root/tc): delay cloud sends in-process; results say emulated"
    )
    emu.add_argument(
        "--emulate-link",
        choices=("3g", "4g", "wifi"),
        help="emulate this preset's link (figures below override it)",
    )
    emu.add_argument("--emulate-up-mbps", type=positive_float, help="emulated uplink, Mbit/s")
    emu.add_argument("--emulate-down-mbps", type=positive_float, help="emulated downlink, Mbit/s")
    emu.add_argument(
        "--emulate-rtt-ms", type=non_negative_float, help="emulated round-trip time, ms"
    )


def link_settings(args: argparse.Namespace):  # -> LinkSettings (imported lazily)
    """The agent's link settings from the command line."""
    from collabdnn.planning.energy import power_model
    from collabdnn.planning.link import link_from_args
    from mobile_agent.link_monitor import LinkSettings

    figures = (args.emulate_up_mbps, args.emulate_down_mbps, args.emulate_rtt_ms)
    emulate = None
    if args.emulate_link or any(f is not None for f in figures):
        emulate = link_from_args(args.emulate_link or args.network, *figures)
    power = power_model(args.network, *power_overrides(args))
    return LinkSettings(
        network=args.network,
        power=power,
        emulate=emulate,
        scheduler=args.scheduler,
        report_s=args.report_s,
        report_change=args.report_change,
        probe=not args.no_probe,
        probe_idle_s=args.probe_idle_s,
        probe_mobile_s=args.probe_mobile_s,
        window=args.link_window,
        alpha=args.link_alpha,
        battery=args.battery,
    )


def heartbeat_settings(args: argparse.Namespace):  # -> HeartbeatSettings | None
    """The agent's heartbeat settings (None without --scheduler)."""
    from mobile_agent.heartbeat import HeartbeatSettings

    if not args.scheduler:
        return None
    return HeartbeatSettings(
        scheduler=args.scheduler,
        agent_id=args.agent_id,
        advertise=args.advertise,
        heartbeat_s=args.heartbeat_s,
        slowdown=args.plan_slowdown,
        expected_rate_hz=args.expected_rate,
    )


def run(args: argparse.Namespace) -> int:
    from collabdnn.transport.security import config_from_args
    from mobile_agent.server import MobileConfig, serve

    config = MobileConfig(
        model=model_name(args.model, args.max_units),
        unit_costs=unit_costs(args),
        weights=args.weights,
        device=args.device,
        threads=args.threads,
        cloud=args.cloud,
        placement=args.placement,
        host=args.host,
        port=args.port,
        health_port=args.health_port,
        max_message_mb=args.max_message_mb,
        max_frame_mb=args.max_frame_mb,
        timeout_s=args.timeout,
        call_budget_factor=args.call_budget_factor,
        call_budget_floor_ms=args.call_budget_floor_ms,
        health_watch_s=args.health_watch_s,
        zstd_level=args.zstd_level,
        shuffle=args.shuffle,
        workers=args.workers,
        grace_s=args.grace,
        security=config_from_args(args),
        breaker_reset_s=args.breaker_reset_s,
        breaker_failures=args.breaker_failures,
        max_concurrent=args.max_concurrent,
        max_image_mb=args.max_image_mb,
        max_pixels=args.max_pixels,
        max_side=args.max_side,
        max_aspect=args.max_aspect,
        limits=work_limits_from_args(args),
        checkpoint_dir=args.checkpoint_dir,
        link=link_settings(args),
        heartbeat=heartbeat_settings(args),
    )
    return serve(config, on_bound=announce)
