"""Copy each benchmark's markdown table into the documentation pages, between markers.

A block ``<!-- NAME-table -->`` ... ``<!-- /NAME-table -->`` in README.md or any
``docs/*.md`` page is replaced by ``benchmarks/results/NAME.md``, and the generated
block of ``docs/benchmarks.md`` (``collabdnn bench``'s tables, between the ``bench:begin``
and ``bench:end`` markers) is rebuilt from ``benchmarks/results/bench_*.md``. So every
figure the pages quote comes from a results file, and rerunning the benchmarks
regenerates it (``make bench`` runs this last; ``tests/unit/test_readme.py`` fails when a
page and its results file disagree).

    python -m benchmarks.doc_tables [--check]
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from benchmarks.paper.report import render_doc

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
BLOCK = re.compile(r"(<!-- ([\w.-]+)-table -->\n).*?(<!-- /\2-table -->)", re.S)


def pages() -> list[Path]:
    """The pages that may hold generated tables: README.md and docs/*.md."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def refresh(text: str) -> tuple[str, list[str]]:
    """``text`` with every known table replaced; and the names of missing results."""
    missing: list[str] = []

    def replace(match: re.Match[str]) -> str:
        source = RESULTS / f"{match.group(2)}.md"
        if not source.is_file():
            missing.append(match.group(2))
            return match.group(0)
        return f"{match.group(1)}{source.read_text().strip()}\n{match.group(3)}"

    return BLOCK.sub(replace, text), missing


def refresh_page(page: Path) -> tuple[str, list[str]]:
    """The page's text with its tables and its ``collabdnn bench`` block regenerated."""
    text, missing = refresh(page.read_text())
    bench = render_doc(text, page.parent, RESULTS)
    return (text if bench is None else bench), missing


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 1 if a page is not up to date with the results",
    )
    args = parser.parse_args()
    stale = []
    for page in pages():
        new, missing = refresh_page(page)
        for name in missing:
            print(f"{page.name}: no results for {name}-table (run its benchmark)", file=sys.stderr)
        if new != page.read_text():
            stale.append(page)
            if not args.check:
                page.write_text(new)
    for page in stale:
        print(f"{'out of date' if args.check else 'updated'}: {page.relative_to(ROOT)}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
