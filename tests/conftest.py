"""Shared fixtures (sample photos, a model) and the folder-to-marker rule.

Every test lives in one of three folders, and the folder is its marker:

- ``tests/unit/``: in process only (in-process gRPC servers on port 0 are fine); ``make test-fast``
  runs them, less those marked ``slow``;
- ``tests/integration/``: real services as subprocesses on 127.0.0.1 (fixtures in its conftest);
- ``tests/system/``: the whole stack, shaped links, namespaces, cgroups, Compose;
- ``tests/docker/``: the image and the Compose stack on a real Docker engine
  (``make compose-test``); skipped, with the reason, where no engine answers.

Tests marked ``root`` are skipped, with the reason, when not run as root.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

from tests.common import SAMPLES

# CI replays the same examples every run (a red CI must be reproducible); locally
# hypothesis explores new ones each time.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

TESTS = Path(__file__).resolve().parent
KINDS = ("unit", "integration", "system", "docker")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    not_root = os.geteuid() != 0
    no_engine: list[str | None] = []  # asked once, and only when a docker test is collected
    for item in items:
        try:
            folder = item.path.resolve().relative_to(TESTS).parts[0]
        except ValueError:  # collected from elsewhere (a path given on the command line)
            continue
        if folder not in KINDS:
            raise pytest.UsageError(
                f"{item.path}: tests live in tests/unit, tests/integration, tests/system "
                "or tests/docker"
            )
        item.add_marker(getattr(pytest.mark, folder))
        if folder == "docker":
            if not no_engine:
                from tests.docker.engine import why_no_engine

                no_engine.append(why_no_engine())
            if no_engine[0]:
                item.add_marker(pytest.mark.skip(reason=no_engine[0]))
        if not_root and item.get_closest_marker("root"):
            item.add_marker(pytest.mark.skip(reason="needs root (namespaces, tc or cgroups)"))


@pytest.fixture(scope="session")
def sample_paths() -> list[Path]:
    paths = sorted(p for p in SAMPLES.iterdir() if p.suffix in {".png", ".jpg"})
    assert paths, f"no sample photos in {SAMPLES}"
    return paths


@pytest.fixture(scope="session")
def cat_bytes() -> bytes:
    return (SAMPLES / "chelsea.png").read_bytes()


@pytest.fixture(scope="session")
def chelsea(cat_bytes: bytes) -> bytes:
    return cat_bytes


@pytest.fixture(scope="session")
def alexnet():
    from collabdnn.model.split_model import load_model

    return load_model("alexnet", "seed:0")
