"""Helpers shared by the benchmark scripts: timing, results files, machine facts."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.paper.report import machine
from benchmarks.paper.report import md_table as markdown_table

RESULTS = Path(__file__).resolve().parent / "results"

__all__ = ["RESULTS", "machine", "markdown_table", "median", "time_ms", "write_results"]


def time_ms(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> list[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        begin = time.perf_counter()
        fn()
        times.append((time.perf_counter() - begin) * 1e3)
    return times


def median(values: list[float]) -> float:
    return statistics.median(values)


def write_results(name: str, data: dict[str, Any], table: str) -> Path:
    """Write ``results/NAME.json`` and ``results/NAME.md`` (the table docs/benchmarks.md shows)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    data = {
        "benchmark": name,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        **data,
    }
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(table + "\n")
    return RESULTS / f"{name}.json"
