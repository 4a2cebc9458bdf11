"""``collabdnn mobile``: start the mobile agent."""

from __future__ import annotations

import argparse
import logging

from collabdnn.cli._service_args import (
    add_image_limit_args,
    add_service_args,
    announce,
    positive_float,
    positive_int,
)
from collabdnn.placement import Placement, PlacementError

LOG_LEVEL = logging.INFO  # a service says what it does
HELP = "start the mobile agent (runs its units, offloads the rest to the cloud)"


def _placement(text: str) -> str:
    try:
        Placement.parse(text)
    except PlacementError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def configure(parser: argparse.ArgumentParser) -> None:
    add_service_args(parser, default_port=50053)
    parser.add_argument("--cloud", default="", metavar="HOST:PORT",
                        help="the cloud server (default: none, everything runs locally)")
    parser.add_argument("--placement", type=_placement, default="mobile", metavar="SPEC",
                        help="initial plan: mobile, cloud, or one letter M/C per unit "
                             "(unit 0, preprocessing, included), e.g. MMMCCCCCCMMM")
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="deadline of each cloud call in seconds (default: 30)")
    parser.add_argument("--zstd-level", type=int, default=1,
                        help="zstd level of activations sent (0 = raw; default: 1)")
    parser.add_argument("--shuffle", action="store_true",
                        help="byte-shuffle float activations before zstd")
    parser.add_argument("--max-frame-mb", type=float, default=512.0,
                        help="largest decoded activation accepted (default: 512 MB)")
    parser.add_argument("--breaker-reset-s", type=positive_float, default=2.0,
                        help="after a cloud failure, run every unit locally this long, then "
                             "probe the cloud once (default: 2)")
    parser.add_argument("--breaker-failures", type=positive_int, default=1,
                        help="consecutive cloud failures that stop offloading (default: 1)")
    parser.add_argument("--max-concurrent", type=positive_int, default=16,
                        help="Classify requests handled at once; more are refused "
                             "RESOURCE_EXHAUSTED at once, not queued (default: 16)")
    add_image_limit_args(parser)


def run(args: argparse.Namespace) -> int:
    from collabdnn.security import config_from_args
    from mobile_agent.server import MobileConfig, serve

    config = MobileConfig(
        model=args.model, weights=args.weights, device=args.device, threads=args.threads,
        cloud=args.cloud, placement=args.placement, host=args.host, port=args.port,
        max_message_mb=args.max_message_mb, max_frame_mb=args.max_frame_mb,
        timeout_s=args.timeout, zstd_level=args.zstd_level, shuffle=args.shuffle,
        workers=args.workers, grace_s=args.grace, security=config_from_args(args),
        breaker_reset_s=args.breaker_reset_s, breaker_failures=args.breaker_failures,
        max_concurrent=args.max_concurrent, max_image_mb=args.max_image_mb,
        max_pixels=args.max_pixels,
    )
    return serve(config, on_bound=announce)
