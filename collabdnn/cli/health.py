"""``collabdnn health``: exit 0 only when a service reports SERVING (no torch).

Made for container healthchecks: one short call with a deadline, the status on stdout.
"""

from __future__ import annotations

import argparse
import sys

from collabdnn.cli._service_args import positive_float
from collabdnn.transport.security import add_security_arguments, config_from_args


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("address", metavar="HOST:PORT", help="the service to check")
    parser.add_argument(
        "--service", default="", help="service name to ask about (default: the whole server)"
    )
    parser.add_argument(
        "--timeout", type=positive_float, default=5.0, help="deadline in seconds (default: 5)"
    )
    add_security_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from collabdnn.transport.channels import health_status

    status, why = health_status(args.address, args.service, args.timeout, config_from_args(args))
    print(status)
    if why:
        print(f"health: {args.address}: {why}", file=sys.stderr)
    return 0 if status == "SERVING" else 1
