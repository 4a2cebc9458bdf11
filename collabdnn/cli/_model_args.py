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


def model_name(model: str, max_units: int | None) -> str:
    """The name to load: ``model``, with ``@N`` when ``--max-units N`` is given."""
    if max_units is None:
        return model
    from collabdnn.model.registry import parse_model_name

    parsed = parse_model_name(model)
    if parsed.max_units is not None and parsed.max_units != max_units:
        raise SystemExit(f"--model {model} contradicts --max-units {max_units}")
    return f"{parsed.base}@{max_units}"
