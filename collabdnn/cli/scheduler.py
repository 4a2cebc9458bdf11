"""``collabdnn scheduler``: profile both sides, plan, push the plan, re-plan on reports."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from collabdnn.cli._power_args import add_power_arguments, power_overrides
from collabdnn.cli._service_args import (
    add_health_port_arg,
    announce,
    fraction,
    non_negative_float,
    non_negative_int,
    port,
    positive_float,
    positive_int,
)
from collabdnn.transport.channels import DEFAULT_MAX_MESSAGE_MB
from collabdnn.transport.security import add_security_arguments

LOG_LEVEL = logging.INFO  # a service says what it does


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cloud",
        default="",
        metavar="HOST:PORT",
        help="the cloud server (profiled through its Profile call, and its load read from Info)",
    )
    parser.add_argument(
        "--mobile",
        default="",
        metavar="HOST:PORT",
        help="the one mobile agent (profiled, and sent every new plan); without it "
        "the scheduler runs in fleet mode: agents register with heartbeats",
    )
    parser.add_argument(
        "--mobile-profile",
        type=Path,
        metavar="FILE",
        help="use this saved mobile profile instead of asking the agent (fleet mode: "
        "every agent is planned from it, scaled by its --plan-slowdown; without it each "
        "agent is profiled through its Profile call when it registers)",
    )
    parser.add_argument(
        "--cloud-profile",
        type=Path,
        metavar="FILE",
        help="use this saved cloud profile instead of asking the cloud",
    )
    obj = parser.add_argument_group("objective")
    obj.add_argument(
        "--objective",
        choices=("latency", "energy", "weighted", "deadline"),
        default="latency",
        help="what to minimise (default: latency)",
    )
    obj.add_argument(
        "--deadline-ms", type=positive_float, help="latency bound (deadline objective)"
    )
    obj.add_argument(
        "--weight",
        type=fraction,
        default=0.5,
        help="weighted objective: weight of latency in [0, 1] (default 0.5)",
    )
    obj.add_argument(
        "--battery-threshold",
        type=fraction,
        default=0.2,
        help="below this reported battery fraction, plan for energy (default 0.2)",
    )
    link = parser.add_argument_group("link assumed until the agent reports its estimate")
    link.add_argument(
        "--network",
        choices=("3g", "4g", "wifi"),
        default="wifi",
        help="link preset and radio power model (default: wifi)",
    )
    link.add_argument("--up-mbps", type=positive_float, help="uplink throughput, Mbit/s")
    link.add_argument("--down-mbps", type=positive_float, help="downlink throughput, Mbit/s")
    link.add_argument("--rtt-ms", type=non_negative_float, help="round-trip time, ms")
    link.add_argument(
        "--replan-threshold",
        type=non_negative_float,
        default=0.2,
        help="re-plan when a reported figure moved by this fraction (default 0.2)",
    )
    add_power_arguments(parser, "mobile power (defaults: see collabdnn.planning.energy)")
    prof = parser.add_argument_group("remote profiling")
    prof.add_argument(
        "--images",
        nargs="+",
        type=Path,
        metavar="PATH",
        help="photos the sides profile on (default: samples/)",
    )
    prof.add_argument(
        "--profile-repeats", type=positive_int, default=5, help="timed runs per photo"
    )
    prof.add_argument(
        "--profile-warmup", type=non_negative_int, default=1, help="untimed runs per photo"
    )
    prof.add_argument(
        "--mobile-slowdown",
        type=positive_float,
        default=1.0,
        metavar="F",
        help="plan for a phone F times slower than the mobile profile measured "
        "(default 1; on one machine both sides share the CPU)",
    )
    prof.add_argument(
        "--mobile-request-gap-ms",
        type=non_negative_float,
        metavar="MS",
        help="plan for phones idle MS between requests on average (default: back to "
        "back; fleet mode: from each agent's measured request rate); matters only for an "
        "agent profiled under a CPU quota: an idle phone starts a request with a whole "
        "CFS budget (collabdnn.planning.cfs)",
    )
    prof.add_argument(
        "--train-batch-size",
        type=positive_int,
        default=4,
        metavar="B",
        help="training plans (GetTrainingPlan, plan --scheduler) are for steps of B "
        "images when the request names no batch size (default 4); both sides' "
        "training profiles are measured once per batch size, when first asked",
    )
    parser.add_argument(
        "--load-poll-s",
        type=non_negative_float,
        default=5.0,
        help="read the cloud's load this often (0 = never; default 5)",
    )
    parser.add_argument(
        "--push-check-s",
        type=positive_float,
        default=5.0,
        help="check the agent holds the current plan this often (default 5)",
    )
    fleet = parser.add_argument_group(
        "fleet mode (no --mobile): many agents, one cloud fleet (docs/scheduler.md#fleet-mode)"
    )
    fleet.add_argument(
        "--heartbeat-s",
        type=positive_float,
        default=2.0,
        help="heartbeat interval the agents are told (default: 2)",
    )
    fleet.add_argument(
        "--agent-timeout-s",
        type=positive_float,
        default=10.0,
        help="forget an agent after this long without a heartbeat (default: 10)",
    )
    fleet.add_argument(
        "--max-agents",
        type=positive_int,
        default=256,
        help="agents held at once; more are refused RESOURCE_EXHAUSTED (default: 256)",
    )
    fleet.add_argument(
        "--min-heartbeat-interval-s",
        type=non_negative_float,
        default=0.05,
        help="closer heartbeats from one agent are refused RESOURCE_EXHAUSTED (default: 0.05)",
    )
    fleet.add_argument(
        "--replicas",
        type=non_negative_int,
        default=0,
        help="cloud replicas (default 0: count those answering Capacity at "
        "--cloud-replicas, else at every address the --cloud host resolves to)",
    )
    fleet.add_argument(
        "--cloud-replicas",
        default="",
        metavar="HOST:PORT,...",
        help="the cloud replicas' own addresses, asked for their Capacity",
    )
    fleet.add_argument(
        "--cloud-capacity",
        type=non_negative_float,
        default=0.0,
        metavar="F",
        help="requests one replica serves at once at the profiled speed (default 0: "
        "its CPUs / threads from Capacity, at least 1)",
    )
    fleet.add_argument(
        "--capacity-poll-s",
        type=non_negative_float,
        default=5.0,
        help="ask the replicas for their Capacity this often (0 = never; default: 5)",
    )
    fleet.add_argument(
        "--saturation",
        type=fraction,
        default=0.8,
        help="cloud utilisation past which the plans become fleet-aware (default: 0.8)",
    )
    fleet.add_argument(
        "--max-utilisation",
        type=fraction,
        default=0.9,
        help="cloud utilisation the fleet's plans never exceed (default: 0.9)",
    )
    fleet.add_argument(
        "--independent",
        action="store_true",
        help="plan each agent as if it were alone (no fleet-aware step; for comparison)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind")
    parser.add_argument(
        "--port", type=port, default=50052, help="port (default: 50052; 0 = any free port, printed)"
    )
    add_health_port_arg(parser)
    parser.add_argument(
        "--max-message-mb",
        type=positive_float,
        default=DEFAULT_MAX_MESSAGE_MB,
        help="largest gRPC message",
    )
    parser.add_argument(
        "--workers", type=positive_int, default=4, help="gRPC handler threads (default: 4)"
    )
    parser.add_argument(
        "--grace",
        type=non_negative_float,
        default=5.0,
        help="seconds in-flight requests get on SIGTERM (default: 5)",
    )
    add_security_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from collabdnn.measure.profile_service import ProfileSettings
    from collabdnn.planning.link import link_from_args
    from collabdnn.planning.scheduling import PowerSettings
    from collabdnn.transport.security import config_from_args
    from scheduler.core import SchedulerSettings
    from scheduler.fleet import FleetSettings
    from scheduler.server import SchedulerConfig, serve

    if not (args.cloud or args.cloud_profile):
        raise SystemExit("collabdnn scheduler: give --cloud or --cloud-profile")
    if args.objective == "deadline" and args.deadline_ms is None:
        raise SystemExit("collabdnn scheduler: --objective deadline needs --deadline-ms")
    try:
        link = link_from_args(args.network, args.up_mbps, args.down_mbps, args.rtt_ms)
    except ValueError as exc:
        raise SystemExit(f"collabdnn scheduler: {exc}") from exc
    security = config_from_args(args)
    settings = SchedulerSettings(
        cloud=args.cloud, mobile=args.mobile, objective=args.objective,
        deadline_ms=args.deadline_ms, weight=args.weight,
        battery_threshold=args.battery_threshold, link=link,
        power=PowerSettings(*power_overrides(args)),
        mobile_profile=str(args.mobile_profile) if args.mobile_profile else None,
        cloud_profile=str(args.cloud_profile) if args.cloud_profile else None,
        images=tuple(str(p) for p in args.images or ()),
        profile=ProfileSettings(repeats=args.profile_repeats, warmup=args.profile_warmup),
        replan_threshold=args.replan_threshold, mobile_slowdown=args.mobile_slowdown,
        mobile_request_gap_ms=args.mobile_request_gap_ms,
        load_poll_s=args.load_poll_s, train_batch_size=args.train_batch_size,
        push_check_s=args.push_check_s, security=security,
    )  # fmt: skip
    fleet = None
    if not args.mobile:
        fleet = FleetSettings(
            heartbeat_s=args.heartbeat_s, timeout_s=args.agent_timeout_s,
            max_agents=args.max_agents, min_interval_s=args.min_heartbeat_interval_s,
            saturation=args.saturation, max_utilisation=args.max_utilisation,
            replicas=args.replicas,
            cloud_replicas=tuple(a.strip() for a in args.cloud_replicas.split(",") if a.strip()),
            per_replica=args.cloud_capacity, capacity_poll_s=args.capacity_poll_s,
            independent=args.independent,
        )  # fmt: skip
    config = SchedulerConfig(
        settings=settings,
        fleet=fleet,
        host=args.host,
        port=args.port,
        health_port=args.health_port,
        max_message_mb=args.max_message_mb,
        workers=args.workers,
        grace_s=args.grace,
        security=security,
    )
    return serve(config, on_bound=announce)
