"""Copy each benchmark's markdown table into README.md, between its markers.

A block ``<!-- NAME-table -->`` ... ``<!-- /NAME-table -->`` in the README is replaced by
``benchmarks/results/NAME.md``, so every figure the README quotes comes from a results
file and rerunning the benchmarks regenerates it (``make bench`` runs this last).

    python -m benchmarks.readme_tables [--check]
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
BLOCK = re.compile(r"(<!-- ([\w.-]+)-table -->\n).*?(<!-- /\2-table -->)", re.S)


def refresh(text: str) -> tuple[str, list[str]]:
    """The README with every known table replaced; and the names of missing results."""
    missing: list[str] = []

    def replace(match: re.Match[str]) -> str:
        source = RESULTS / f"{match.group(2)}.md"
        if not source.is_file():
            missing.append(match.group(2))
            return match.group(0)
        return f"{match.group(1)}{source.read_text().strip()}\n{match.group(3)}"

    return BLOCK.sub(replace, text), missing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 1 if the README is not up to date with the results",
    )
    args = parser.parse_args()
    readme = ROOT / "README.md"
    text = readme.read_text()
    new, missing = refresh(text)
    for name in missing:
        print(f"no results for {name}-table (run its benchmark)", file=sys.stderr)
    if args.check:
        return 0 if new == text else 1
    readme.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
