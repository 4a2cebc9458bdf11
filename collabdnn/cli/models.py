"""``collabdnn models``: list the registry."""

from __future__ import annotations

import argparse

from collabdnn.cli.output import format_table, print_json
from collabdnn.model.registry import MODELS


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    rows = [
        {
            "model": s.name,
            "input": f"{s.crop}x{s.crop}",
            "imagenet_weights": s.torchvision_weights is not None,
            "description": s.description,
        }
        for s in MODELS.values()
    ]
    if args.json:
        print_json({"models": rows})
    else:
        print(
            format_table(
                ["model", "input", "imagenet", "description"],
                [
                    [
                        r["model"],
                        r["input"],
                        "yes" if r["imagenet_weights"] else "no",
                        r["description"],
                    ]
                    for r in rows
                ],
            )
        )
    return 0
