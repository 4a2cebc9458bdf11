"""``collabdnn summary MODEL``: the unit table and the total parameter count."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from collabdnn.cli._model_args import MODEL_HELP, add_max_units_arg, model_name, unit_costs
from collabdnn.cli.output import format_table, print_json


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help=MODEL_HELP)
    add_max_units_arg(parser)
    parser.add_argument(
        "--weights",
        default="seed:0",
        help="seed:N, imagenet, or a state-dict path (default: seed:0)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    from collabdnn.errors import CollabError
    from collabdnn.model.split_model import load_model

    try:
        name = model_name(args.model, args.max_units)
        model = load_model(name, args.weights, unit_costs=unit_costs(args))
    except CollabError as exc:
        raise SystemExit(f"collabdnn summary: {exc}") from exc
    units = [u.to_dict() for u in model.units]
    if args.json:
        print_json(
            {
                "model": model.name,
                "preprocessing": asdict(model.spec.preprocessing),
                "weights": args.weights,
                "weights_hash": model.weights_hash,
                "units": units,
                "total_parameters": model.total_parameters,
            }
        )
        return 0
    rows = [
        [
            u.index,
            u.name,
            u.kind,
            " x ".join(map(str, u.output_shape[1:])),
            f"{u.output_bytes:,}",
            f"{u.params:,}",
            f"{u.flops:,}",
        ]
        for u in model.units
    ]
    pre = model.spec.preprocessing
    print(f"{model.name}: {model.spec.description}")
    print(
        f"input {pre.crop}x{pre.crop}: shorter side resized to {pre.resize} ({pre.interpolation}), "
        f"centre crop, mean {list(pre.mean)}, std {list(pre.std)}"
    )
    print(
        format_table(
            ["#", "unit", "kind", "output shape", "output bytes", "parameters", "MACs"],
            rows,
            right=(0, 4, 5, 6),
        )
    )
    print(
        f"total parameters: {model.total_parameters:,}   weights: {args.weights} "
        f"(hash {model.weights_hash})"
    )
    return 0
