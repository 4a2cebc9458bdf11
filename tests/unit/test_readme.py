"""The README's and the manual's promises: the two commands, a short README, links that
lead somewhere, and figures that come from results files."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from benchmarks.doc_tables import RESULTS, pages, refresh_page
from benchmarks.paper.report import DOC_BEGIN, render_doc
from tests.common import REPO as ROOT

pytestmark = pytest.mark.unit

README = ROOT / "README.md"
DOCS = ROOT / "docs"
LINKED_PAGES = [README, *sorted(DOCS.glob("*.md")), ROOT / "benchmarks" / "README.md"]

FENCE = re.compile(r"^```.*?^```[^\n]*$", re.S | re.M)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)


def _prose(text: str) -> str:
    """The text without its fenced code blocks (whose brackets are not links)."""
    return FENCE.sub("", text)


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    seen: dict[str, int] = {}
    anchors = set()
    for heading in HEADING.findall(_prose(page.read_text())):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def test_readme_shows_the_two_commands_and_ci_runs_the_test_one():
    text = README.read_text()
    assert "make demo" in text and "make test" in text
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_readme_is_at_most_200_lines():
    lines = len(README.read_text().splitlines())
    assert lines <= 200, f"README.md has {lines} lines; move detail into docs/"


def test_readme_names_the_contracts():
    text = README.read_text()
    for contract in ("50051", "50052", "50053", "--json", "COLLABDNN_", "docs/cli.md"):
        assert contract in text, contract


@pytest.mark.parametrize("page", LINKED_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_at_existing_files(page: Path):
    broken = []
    for target in LINK.findall(_prose(page.read_text())):
        if re.match(r"[a-z]+:", target):  # https:, mailto: ...
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(target)
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
            broken.append(f"{target} (no such heading)")
    assert not broken, f"{page.relative_to(ROOT)}: broken links {broken}"


def test_doc_tables_match_the_results_files():
    """Every generated table equals its results file (rerun python -m benchmarks.doc_tables)."""
    for page in pages():
        new, missing = refresh_page(page)
        name = page.relative_to(ROOT)
        assert not missing, f"{name} names results that do not exist: {missing}"
        assert new == page.read_text(), (
            f"{name}: tables differ from benchmarks/results: run python -m benchmarks.doc_tables"
        )


def test_every_result_table_is_shown_in_the_docs():
    shown = "\n".join(page.read_text() for page in pages())
    tables = sorted(p.stem for p in RESULTS.glob("*.md") if not p.stem.startswith("bench_"))
    assert tables
    assert not [t for t in tables if f"<!-- {t}-table -->" not in shown]


def test_benchmarks_page_holds_the_bench_block(monkeypatch: pytest.MonkeyPatch):
    """``collabdnn bench`` refreshes docs/benchmarks.md, and its block shows every part."""
    from benchmarks.paper.cli import _doc, build_config, configure

    page = DOCS / "benchmarks.md"
    text = page.read_text()
    assert DOC_BEGIN in text
    assert render_doc(text, page.parent, RESULTS) == text
    for part in sorted(RESULTS.glob("bench_*.md")):
        assert f"(../benchmarks/results/{part.stem}.json)" in text, part.stem

    monkeypatch.chdir(ROOT)  # the default results folder is relative to the checkout
    parser = argparse.ArgumentParser()
    configure(parser)
    args = parser.parse_args([])
    assert _doc(args, build_config(args)) == page
