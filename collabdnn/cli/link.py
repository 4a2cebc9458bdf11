"""``collabdnn link set|clear|show``: shape the link between mobile and cloud with tc.

Meant to run as root inside a private network namespace (``ip netns exec NAME
collabdnn link set ...``) or in a container with NET_ADMIN; see docs/link.md.
"""

from __future__ import annotations

import argparse
import sys

from collabdnn.cli.output import print_json

# The cloud server's default port.
DEFAULT_CLOUD_PORT = 50051


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p_set = sub.add_parser("set", help="shape an interface to a preset or given figures")
    p_set.add_argument(
        "--network",
        choices=["3g", "4g", "wifi"],
        default=None,
        help="preset (sources in collabdnn/planning/link.py); figures given below override it",
    )
    p_set.add_argument("--up-mbps", type=float, default=None, help="uplink, Mbit/s")
    p_set.add_argument("--down-mbps", type=float, default=None, help="downlink, Mbit/s")
    p_set.add_argument("--rtt-ms", type=float, default=None, help="round-trip time, ms")
    p_set.add_argument(
        "--cloud-port",
        type=int,
        default=DEFAULT_CLOUD_PORT,
        help="the cloud server's port: traffic to it is uplink, from it downlink, the rest "
        f"is not shaped (default {DEFAULT_CLOUD_PORT}); 0 shapes all traffic on the "
        "interface, which on lo needs equal rates",
    )
    p_set.add_argument(
        "--require-delay",
        action="store_true",
        help="fail instead of shaping rates only when the kernel has no netem",
    )
    p_set.add_argument("--json", action="store_true", help="print what was applied as JSON")
    p_clear = sub.add_parser("clear", help="remove the shaping from an interface")
    p_show = sub.add_parser("show", help="show the shaping on an interface")
    p_show.add_argument("--json", action="store_true", help="print JSON (figures read back)")
    for p in (p_set, p_clear, p_show):
        p.add_argument(
            "--interface",
            default="lo",
            help="interface (default: lo, for a private namespace; in a container the one "
            "that reaches the cloud, e.g. eth0: only its egress, the uplink, is shaped)",
        )


def run(args: argparse.Namespace) -> int:
    from collabdnn.netem.shaping import ShapingError, apply, clear, show, status
    from collabdnn.planning.link import link_from_args

    try:
        if args.action == "set":
            given = (args.up_mbps, args.down_mbps, args.rtt_ms)
            if args.network is None and None in given:
                print(
                    "collabdnn link set: give --network, or all of --up-mbps, --down-mbps "
                    "and --rtt-ms",
                    file=sys.stderr,
                )
                return 2
            link = link_from_args(args.network, *given)
            result = apply(
                link,
                interface=args.interface,
                cloud_port=args.cloud_port or None,
                require_delay=args.require_delay,
            )
            if args.json:
                print_json(result.to_dict())
            else:
                rtt = f"{link.rtt_ms:g} ms" if result.delay_shaped else "NOT shaped (no netem)"
                down = (
                    f"{link.down_mbps:g} Mbit/s"
                    if result.downlink_shaped
                    else "NOT shaped (egress only)"
                )
                port = f", cloud port {args.cloud_port}" if args.cloud_port else ""
                print(f"{args.interface}: up {link.up_mbps:g} Mbit/s, down {down}, RTT {rtt}{port}")
        elif args.action == "clear":
            clear(args.interface)
            print(f"{args.interface}: shaping removed")
        elif args.json:
            print_json(status(args.interface).to_dict())
        else:
            print(show(args.interface), end="")
    except (ShapingError, ValueError) as exc:
        print(f"collabdnn link {args.action}: {exc}", file=sys.stderr)
        return 1
    return 0
