"""``collabdnn cloud``: start the cloud server."""

from __future__ import annotations

import argparse
import logging

from collabdnn.cli._model_args import model_name, unit_costs
from collabdnn.cli._service_args import (
    add_image_limit_args,
    add_service_args,
    announce,
    non_negative_float,
    positive_float,
    positive_int,
)
from collabdnn.cli._training_args import add_checkpoint_dir_arg
from collabdnn.cli._work_args import add_work_limit_args, work_limits_from_args

LOG_LEVEL = logging.INFO  # a service says what it does


def configure(parser: argparse.ArgumentParser) -> None:
    add_service_args(parser, default_port=50051)
    parser.add_argument(
        "--max-frame-mb",
        type=positive_float,
        default=512.0,
        help="largest decoded activation accepted (default: 512 MB)",
    )
    parser.add_argument(
        "--max-queue",
        type=positive_int,
        default=64,
        help="Execute calls admitted at once, computing (at most "
        "--workers) or waiting; more are refused RESOURCE_EXHAUSTED "
        "at once (default: 64)",
    )
    parser.add_argument(
        "--max-connection-age-s",
        type=float,
        default=20.0,
        help="close each client connection after about this long (GOAWAY; calls in "
        "flight finish), so that clients re-resolve the name and reach replicas "
        "added meanwhile; 0 = never (default: 20)",
    )
    add_image_limit_args(parser)
    add_work_limit_args(parser)
    batch = parser.add_argument_group(
        "dynamic batching (off by default; not --max-batch, which bounds one request's batch)",
        "Execute calls for the same unit range that arrive within --batch-timeout-ms run "
        "as one batch. Measured on this CPU: convolution and pooling units give the same "
        "bits at any batch size, fully connected ones do not (1e-8 to 1e-7 off), so only "
        "ranges of units measured bit-exact at start are batched unless --batch-inexact; "
        "each reply says whether it was batched and is bit-exact (docs/scheduler.md).",
    )
    batch.add_argument(
        "--batch-max",
        type=positive_int,
        default=1,
        metavar="N",
        help="rows (images) one batch holds at most; 1 = no batching (default: 1)",
    )
    batch.add_argument(
        "--batch-timeout-ms",
        type=non_negative_float,
        default=2.0,
        metavar="T",
        help="how long the first call of a batch waits for others (default: 2)",
    )
    batch.add_argument(
        "--batch-inexact",
        action="store_true",
        help="also batch ranges whose outputs are not bit-exact to batch 1 (fc units)",
    )
    add_checkpoint_dir_arg(parser)


def run(args: argparse.Namespace) -> int:
    from cloud_server.batching import BatchSettings
    from cloud_server.server import CloudConfig, serve
    from collabdnn.transport.security import config_from_args

    config = CloudConfig(
        model=model_name(args.model, args.max_units),
        unit_costs=unit_costs(args),
        weights=args.weights,
        device=args.device,
        threads=args.threads,
        host=args.host,
        port=args.port,
        health_port=args.health_port,
        max_message_mb=args.max_message_mb,
        max_frame_mb=args.max_frame_mb,
        workers=args.workers,
        grace_s=args.grace,
        max_queue=args.max_queue,
        max_image_mb=args.max_image_mb,
        max_pixels=args.max_pixels,
        max_connection_age_s=args.max_connection_age_s,
        max_side=args.max_side,
        max_aspect=args.max_aspect,
        limits=work_limits_from_args(args),
        checkpoint_dir=args.checkpoint_dir,
        security=config_from_args(args),
        batching=BatchSettings(args.batch_max, args.batch_timeout_ms, args.batch_inexact),
    )
    return serve(config, on_bound=announce)
