"""``collabdnn models``: the models ``--model`` accepts.

The registered ones first (the paper's AlexNets, then the torchvision models the project
measures), then every other classifier torchvision lists. ``--units`` also cuts each
model into units and counts them: on the meta device, without weights or arithmetic,
so all of torchvision's take about a minute on a laptop.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from collabdnn.cli._model_args import add_max_units_arg
from collabdnn.cli.output import format_table, print_json


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "names",
        nargs="*",
        metavar="MODEL",
        help="only these models (also package.module:factory ones); default: every "
        "registered and torchvision model",
    )
    parser.add_argument(
        "--units", action="store_true", help="cut each model and count its units (slower)"
    )
    add_max_units_arg(parser)
    parser.add_argument("--json", action="store_true", help="print JSON")


def _row(name: str, count_units: bool, max_units: int | None) -> dict[str, Any]:
    from collabdnn.model.registry import get_spec, parse_model_name

    parsed = parse_model_name(name)
    spec = get_spec(parsed.base)
    max_units = max_units or parsed.max_units
    row: dict[str, Any] = {
        "model": spec.name,
        "input": f"{spec.crop}x{spec.crop}",
        "resize": spec.resize,
        "interpolation": spec.interpolation,
        "imagenet_weights": spec.torchvision_weights is not None,
        "origin": spec.origin,
        "description": spec.description,
    }
    if count_units:
        from collabdnn.model.split_model import skeleton_units

        row["model"], units = skeleton_units(spec, max_units)
        row["units"] = len(units)
        row["parameters"] = sum(u.params for u in units)
        row["flops"] = sum(u.flops for u in units)
    return row


def run(args: argparse.Namespace) -> int:
    from collabdnn.errors import CollabError
    from collabdnn.model.registry import model_names

    names = args.names or model_names()
    rows = []
    for index, name in enumerate(names):
        if args.units and not args.json and sys.stderr.isatty():
            print(f"\rcutting {name} ({index + 1}/{len(names)})\033[K", end="", file=sys.stderr)
        try:
            rows.append(_row(name, args.units, args.max_units))
        except (CollabError, ValueError) as exc:
            raise SystemExit(f"collabdnn models: {exc}") from exc
    if args.units and not args.json and sys.stderr.isatty():
        print("\r\033[K", end="", file=sys.stderr)
    if args.json:
        print_json({"models": rows})
        return 0
    headers = ["model", "input", "imagenet"]
    if args.units:
        headers += ["units", "MMACs"]
    headers.append("description")
    table = []
    for r in rows:
        line = [r["model"], r["input"], "yes" if r["imagenet_weights"] else "no"]
        if args.units:
            line += [r["units"], f"{r['flops'] / 1e6:,.0f}"]
        table.append([*line, r["description"]])
    right = (3, 4) if args.units else ()
    print(format_table(headers, table, right=right))
    return 0
