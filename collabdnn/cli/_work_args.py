"""Flags bounding the work of one request (``collabdnn.bounds``), for the services that
compute: the cloud server and the mobile agent. Each also reads ``COLLABDNN_<FLAG>``."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from collabdnn.bounds import (
    DEFAULT_MAX_BATCH,
    DEFAULT_MAX_IMAGES_PER_REQUEST,
    DEFAULT_MAX_REQUEST_BYTES,
)
from collabdnn.cli._service_args import positive_float, positive_int

if TYPE_CHECKING:
    from collabdnn.bounds import RequestLimits

DEFAULT_MAX_REQUEST_MB = DEFAULT_MAX_REQUEST_BYTES / 2**20


def add_work_limit_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "work per request (refused INVALID_ARGUMENT before any work when exceeded)"
    )
    group.add_argument(
        "--max-images-per-request",
        type=positive_int,
        default=DEFAULT_MAX_IMAGES_PER_REQUEST,
        metavar="N",
        help="images in one Classify or Profile request "
        f"(default: {DEFAULT_MAX_IMAGES_PER_REQUEST})",
    )
    group.add_argument(
        "--max-request-mb",
        type=positive_float,
        default=DEFAULT_MAX_REQUEST_MB,
        metavar="MB",
        help="encoded image bytes in one request, all images together "
        f"(default: {DEFAULT_MAX_REQUEST_MB:g} MB)",
    )
    group.add_argument(
        "--max-batch",
        type=positive_int,
        default=DEFAULT_MAX_BATCH,
        metavar="N",
        help="batch of one Execute (a tensor's first dimension, or images at unit 0) "
        f"and of one Profile call (default: {DEFAULT_MAX_BATCH})",
    )


def work_limits_from_args(args: argparse.Namespace) -> RequestLimits:
    from collabdnn.bounds import RequestLimits

    return RequestLimits(
        max_images=args.max_images_per_request,
        max_request_bytes=int(args.max_request_mb * 2**20),
        max_batch=args.max_batch,
    )
