"""The README's promises: its two commands, and figures that come from results files."""

from __future__ import annotations

from benchmarks.readme_tables import refresh
from tests.common import REPO as ROOT


def test_readme_tables_match_the_results_files():
    """Every generated table equals benchmarks/results/NAME.md (rerun readme_tables)."""
    text = (ROOT / "README.md").read_text()
    new, missing = refresh(text)
    assert not missing, f"README names results that do not exist: {missing}"
    assert new == text, "README tables differ from benchmarks/results: run readme_tables"


def test_readme_shows_the_two_commands_and_ci_runs_the_test_one():
    text = (ROOT / "README.md").read_text()
    assert "make demo" in text and "make test" in text
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_readme_images_exist():
    import re

    text = (ROOT / "README.md").read_text()
    for target in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text):
        assert (ROOT / target).is_file(), target
