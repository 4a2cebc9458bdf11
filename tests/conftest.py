"""Shared fixtures: sample photos, models, and real services as subprocesses.

Services run on free ports on 127.0.0.1 only. The standard pair (cloud + agent,
alexnet, seed:0 weights, one torch thread each) is session-scoped: starting a service
costs seconds on a small machine, so it starts once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from collabdnn.testbed.procs import Service, start_healthy

# CI replays the same examples every run (a red CI must be reproducible); locally
# hypothesis explores new ones each time.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"
MODEL = "alexnet"
WEIGHTS = "seed:0"
COMMON = ["--model", MODEL, "--weights", WEIGHTS, "--threads", "1"]


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


def stop_cleanly(service: Service) -> None:
    """SIGTERM must end a service gracefully, with exit status 0."""
    assert service.stop() == 0, f"{service.name} did not stop cleanly:\n{service.log_tail()}"


@pytest.fixture(scope="session")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = start_healthy("cloud", COMMON, log_dir=tmp_path_factory.mktemp("cloud"))
    yield service
    stop_cleanly(service)


@pytest.fixture(scope="session")
def agent(cloud: Service, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = start_healthy(
        "mobile", [*COMMON, "--cloud", cloud.address], log_dir=tmp_path_factory.mktemp("mobile")
    )
    yield service
    stop_cleanly(service)
