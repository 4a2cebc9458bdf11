"""``collabdnn cloud``: start the cloud server."""

from __future__ import annotations

import argparse
import logging

from collabdnn.cli._service_args import add_service_args, announce

LOG_LEVEL = logging.INFO  # a service says what it does
HELP = "start the cloud server (runs any unit range it is sent)"


def configure(parser: argparse.ArgumentParser) -> None:
    add_service_args(parser, default_port=50051)
    parser.add_argument("--max-frame-mb", type=float, default=512.0,
                        help="largest decoded activation accepted (default: 512 MB)")


def run(args: argparse.Namespace) -> int:
    from cloud_server.server import CloudConfig, serve
    from collabdnn.security import config_from_args

    config = CloudConfig(
        model=args.model, weights=args.weights, device=args.device, threads=args.threads,
        host=args.host, port=args.port, max_message_mb=args.max_message_mb,
        max_frame_mb=args.max_frame_mb, workers=args.workers, grace_s=args.grace,
        security=config_from_args(args),
    )
    return serve(config, on_bound=announce)
