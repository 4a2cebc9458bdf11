"""``collabdnn classify``: a thin gRPC client of the mobile agent (no torch).

It only reads image files, sends them, and prints what comes back, so it starts fast.
``--json`` prints a list with one object per image with the keys documented in docs/cli.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from collabdnn.cli._service_args import positive_float
from collabdnn.placement import Placement, PlacementError, spec_of
from collabdnn.results import ClassifyResult
from collabdnn.transport.security import (
    add_security_arguments,
    config_from_args,
    describe_failure,
)
from mobile_agent.client import classify

DEFAULT_AGENT = "127.0.0.1:50053"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", metavar="IMAGE", type=Path, help="image files")
    parser.add_argument(
        "--agent",
        default=DEFAULT_AGENT,
        metavar="HOST:PORT",
        help=f"the mobile agent (default: {DEFAULT_AGENT})",
    )
    parser.add_argument(
        "--placement",
        metavar="SPEC",
        help="placement for these requests: mobile, cloud, or one letter M/C "
        "per unit (default: the agent's current plan)",
    )
    parser.add_argument("--top-k", type=int, default=5, help="classes per image (default: 5)")
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=60.0,
        help="deadline per image in seconds (default: 60)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    add_security_arguments(parser)


def result_json(name: str, result: ClassifyResult) -> dict:
    return {"image": name, **result.to_json()}


def format_result(name: str, result: ClassifyResult, per_unit: bool = True) -> str:
    """A readable block: top classes, totals, and (optionally) the per-unit table."""
    lines = [
        f"{name}: placement {spec_of(result.placement)}"
        f"{'  (FALLBACK: ran locally)' if result.fallback else ''}",
        f"  latency {result.latency_ms:.1f} ms, up {result.bytes_up:,} B, "
        f"down {result.bytes_down:,} B",
    ]
    for rank, p in enumerate(result.top, 1):
        lines.append(f"  {rank}. {p.probability:7.2%}  {p.label}")
    if per_unit:
        lines.append(format_units(result))
    return "\n".join(lines)


def format_units(result: ClassifyResult) -> str:
    header = (
        f"  {'unit':>4} {'name':<12} {'side':<6} {'compute':>9} {'encode':>8} "
        f"{'transfer':>9} {'decode':>8} {'bytes':>10}"
    )
    rows = [header]
    image_up = [t for t in result.transfers if t.after_unit < 0]
    for t in image_up:
        rows.append(
            f"  {'':>4} {'(image)':<12} {'':<6} {'':>9} {t.encode_ms:8.2f} "
            f"{t.transfer_ms:9.2f} {t.decode_ms:8.2f} {t.bytes:>10,}"
        )
    for u in result.units:
        crossing = bool(u.bytes)
        rows.append(
            f"  {u.index:>4} {u.name:<12} {u.platform:<6} {u.compute_ms:9.2f} "
            + (
                f"{u.encode_ms:8.2f} {u.transfer_ms:9.2f} {u.decode_ms:8.2f} {u.bytes:>10,}"
                if crossing
                else f"{'':>8} {'':>9} {'':>8} {'':>10}"
            )
        )
    rows.append(
        "  (times in ms; transfer = network time of each cloud call, both directions, "
        "shown on its upload)"
    )
    return "\n".join(rows)


def run(args: argparse.Namespace) -> int:
    import grpc

    try:
        placement = Placement.parse(args.placement) if args.placement else None
    except PlacementError as exc:
        print(f"classify: {exc}", file=sys.stderr)
        return 2
    try:
        data = [path.read_bytes() for path in args.images]
    except OSError as exc:
        print(f"classify: cannot read {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    security = config_from_args(args)
    try:
        results = classify(
            args.agent,
            data,
            placement,
            timeout=args.timeout,
            top_k=args.top_k,
            security_config=security,
        )
    except grpc.RpcError as exc:
        why = describe_failure(args.agent, security, exc.code().name, exc.details())
        print(f"classify: {why}", file=sys.stderr)
        return 1
    names = [str(path) for path in args.images]
    if args.json:
        print(
            json.dumps([result_json(n, r) for n, r in zip(names, results, strict=True)], indent=2)
        )
    else:
        print("\n\n".join(format_result(n, r) for n, r in zip(names, results, strict=True)))
    return 0
