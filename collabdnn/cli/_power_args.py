"""The mobile power flags, shared by ``plan``, ``scheduler`` and ``mobile``.

Every figure of :mod:`collabdnn.planning.energy`'s model can be overridden; unset flags keep the
defaults (and the radio figures of the chosen network).
"""

from __future__ import annotations

import argparse


def add_power_arguments(parser: argparse.ArgumentParser, title: str) -> None:
    power = parser.add_argument_group(title)
    power.add_argument("--busy-mw", type=float, help="power while computing, mW")
    power.add_argument("--wait-mw", type=float, help="power while waiting for the cloud, mW")
    power.add_argument("--alpha-up-mw", type=float, help="radio upload slope, mW per Mbit/s")
    power.add_argument("--alpha-down-mw", type=float, help="radio download slope, mW per Mbit/s")
    power.add_argument("--beta-mw", type=float, help="radio base power, mW")


def power_overrides(args: argparse.Namespace) -> tuple[float | None, ...]:
    """(busy, wait, alpha_up, alpha_down, beta) as given; ``None`` keeps the default."""
    return (args.busy_mw, args.wait_mw, args.alpha_up_mw, args.alpha_down_mw, args.beta_mw)
