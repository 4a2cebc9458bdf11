"""The flag both services take for split training (docs/training.md)."""

from __future__ import annotations

import argparse


def add_checkpoint_dir_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint-dir",
        default="",
        metavar="DIR",
        help="where training runs write this side's checkpoints (default: none; "
        "a run that asks for a checkpoint is then refused)",
    )
