"""``collabdnn bench``: the benchmark suite of the source checkout (``benchmarks/paper``).

The suite is harness, not runtime, so it is not part of the installed package: this
command finds it in the checkout the package was installed from (``pip install -e .``,
as ``make bench`` does) and says so plainly where there is none.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from types import ModuleType


def _suite() -> ModuleType:
    try:
        return importlib.import_module("benchmarks.paper.cli")
    except ModuleNotFoundError:
        root = Path(__file__).resolve().parents[2]
        if not (root / "benchmarks" / "paper").is_dir():
            raise SystemExit(
                "collabdnn bench runs from a source checkout (its benchmarks/ folder): "
                "clone the repository and run `make bench`"
            ) from None
        sys.path.insert(0, str(root))
        return importlib.import_module("benchmarks.paper.cli")


def configure(parser: argparse.ArgumentParser) -> None:
    _suite().configure(parser)


def run(args: argparse.Namespace) -> int:
    return int(_suite().run(args))
