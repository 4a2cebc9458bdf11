"""Arguments every service command shares, and the line that announces its port.

``listening on HOST:PORT`` on stdout is a contract: :mod:`collabdnn.testbed.procs` (and anyone
starting a service with ``--port 0``) reads the bound port from it.
"""

from __future__ import annotations

import argparse
import math
import sys

from collabdnn.cli._model_args import MODEL_HELP, add_max_units_arg
from collabdnn.transport.channels import DEFAULT_MAX_MESSAGE_MB
from collabdnn.transport.security import add_security_arguments

LISTENING = "listening on"
MIN_ZSTD_LEVEL, MAX_ZSTD_LEVEL = -7, 22  # what collabdnn.codec.CodecConfig accepts


def add_service_args(parser: argparse.ArgumentParser, default_port: int) -> None:
    parser.add_argument("--model", default="alexnet", help=f"{MODEL_HELP} (default: alexnet)")
    add_max_units_arg(parser)
    parser.add_argument(
        "--weights",
        default="seed:0",
        help="seed:N, imagenet (local torch cache) or a state-dict file",
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    parser.add_argument(
        "--threads",
        type=non_negative_int,
        default=0,
        help="torch intra-op threads (default: torch's choice)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument(
        "--port",
        type=port,
        default=default_port,
        help=f"port (default: {default_port}; 0 = any free port, printed)",
    )
    add_health_port_arg(parser)
    parser.add_argument(
        "--max-message-mb",
        type=positive_float,
        default=DEFAULT_MAX_MESSAGE_MB,
        help=f"largest gRPC message (default: {DEFAULT_MAX_MESSAGE_MB} MB)",
    )
    parser.add_argument(
        "--workers", type=positive_int, default=8, help="gRPC handler threads (default: 8)"
    )
    parser.add_argument(
        "--grace",
        type=non_negative_float,
        default=5.0,
        help="seconds in-flight requests get on SIGTERM (default: 5)",
    )
    add_security_arguments(parser)


def add_health_port_arg(parser: argparse.ArgumentParser) -> None:
    """``--health-port``: every service can answer probes that cannot speak TLS."""
    parser.add_argument(
        "--health-port",
        type=port,
        default=None,
        help="also serve grpc.health.v1, and nothing else, in plaintext on this port: for "
        "probes that cannot speak TLS, such as Kubernetes' native gRPC probes (default: none)",
    )


def add_image_limit_args(parser: argparse.ArgumentParser) -> None:
    """Bounds on untrusted image bytes, for services that decode images (unit 0)."""
    from collabdnn.limits import (
        DEFAULT_MAX_ASPECT,
        DEFAULT_MAX_IMAGE_BYTES,
        DEFAULT_MAX_PIXELS,
        DEFAULT_MAX_SIDE,
    )

    default_mb = DEFAULT_MAX_IMAGE_BYTES / 2**20
    parser.add_argument(
        "--max-image-mb",
        type=positive_float,
        default=default_mb,
        help=f"largest encoded image accepted (default: {default_mb:g} MB)",
    )
    parser.add_argument(
        "--max-pixels",
        type=positive_int,
        default=DEFAULT_MAX_PIXELS,
        help="largest image accepted, width x height, checked before decoding; "
        f"also Pillow's bomb guard (default: {DEFAULT_MAX_PIXELS:,})",
    )
    parser.add_argument(
        "--max-side",
        type=positive_int,
        default=DEFAULT_MAX_SIDE,
        help="longest image side accepted, checked before decoding "
        f"(default: {DEFAULT_MAX_SIDE:,})",
    )
    parser.add_argument(
        "--max-aspect",
        type=at_least_one,
        default=DEFAULT_MAX_ASPECT,
        help="largest ratio of an image's longest to shortest side, checked before decoding "
        f"(default: {DEFAULT_MAX_ASPECT:g})",
    )


# Numeric flags are checked at parse time: a bad value is an argparse error naming the
# flag (``argument --port: must be in 0..65535, got 99999``), never a traceback or a
# silently odd service. argparse prints "invalid NAME value" for text that is no number.


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def positive_float(text: str) -> float:
    value = _finite(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
    return value


def non_negative_float(text: str) -> float:
    value = _finite(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def at_least_one(text: str) -> float:
    value = _finite(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


def fraction(text: str) -> float:
    value = _finite(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be in 0..1, got {text}")
    return value


def port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be in 0..65535 (0 = any free port), got {value}")
    return value


def zstd_level(text: str) -> int:
    """A level :class:`collabdnn.codec.CodecConfig` accepts: -7..22, 0 = no compression."""
    value = int(text)
    if not MIN_ZSTD_LEVEL <= value <= MAX_ZSTD_LEVEL:
        raise argparse.ArgumentTypeError(
            f"must be in {MIN_ZSTD_LEVEL}..{MAX_ZSTD_LEVEL} (0 = no compression), got {value}"
        )
    return value


def announce(host: str, port: int) -> None:
    """Print the machine-readable line with the bound port."""
    print(f"{LISTENING} {host}:{port}", file=sys.stdout, flush=True)
