"""``--model`` and ``--max-units``, shared by the commands that load a model.

``--max-units N`` is the ``@N`` suffix of the model's name: ``--model densenet201
--max-units 24`` loads ``densenet201@24``, the model cut into at most 24 units (the
cheapest adjacent ones merged by FLOPs, the same on every machine; see
:mod:`collabdnn.model.merge`). The suffix is part of the name both sides compare.
"""

from __future__ import annotations

import argparse

MODEL_HELP = (
    "a registered or torchvision model name, or package.module:factory for your own "
    "('collabdnn models' lists them)"
)


def _max_units(text: str) -> int:
    value = int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(
            f"must be at least 2 (preprocessing and one unit), got {value}"
        )
    return value


def add_max_units_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-units",
        type=_max_units,
        metavar="N",
        help="merge the cheapest adjacent units (by FLOPs) until at most N are left, "
        "preprocessing included; the model's name becomes NAME@N (default: no merging)",
    )
    parser.add_argument(
        "--unit-costs",
        metavar="PROFILE",
        help="with --max-units: merge by this profile's median unit times instead of "
        "FLOPs (a profile of the unmerged model); the name becomes NAME@N~LAYOUT, and "
        "both sides need the same profile",
    )


def unit_costs(args: argparse.Namespace) -> tuple[float, ...] | None:
    """The per-unit costs ``--unit-costs`` names (preprocessing left out), or None."""
    path = getattr(args, "unit_costs", None)
    if not path:
        return None
    from collabdnn.model.registry import parse_model_name
    from collabdnn.planning.profiles import ProfileError, load_profile

    if getattr(args, "max_units", None) is None and parse_model_name(args.model).max_units is None:
        raise SystemExit("--unit-costs needs --max-units")
    try:
        profile = load_profile(path)
    except ProfileError as exc:
        raise SystemExit(f"--unit-costs {path}: {exc}") from exc
    base = parse_model_name(args.model).base
    if profile.model != base:
        raise SystemExit(f"--unit-costs {path} profiles {profile.model}, not {base}")
    return tuple(u.latency_ms.median for u in profile.units[1:])


def model_name(model: str, max_units: int | None) -> str:
    """The name to load: ``model``, with ``@N`` when ``--max-units N`` is given."""
    if max_units is None:
        return model
    from collabdnn.model.registry import parse_model_name

    parsed = parse_model_name(model)
    if parsed.max_units is not None and parsed.max_units != max_units:
        raise SystemExit(f"--model {model} contradicts --max-units {max_units}")
    return f"{parsed.base}@{max_units}"
