"""Shared fixtures: sample photos and models loaded once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"


@pytest.fixture(scope="session")
def sample_paths() -> list[Path]:
    paths = sorted(p for p in SAMPLES.iterdir() if p.suffix in {".png", ".jpg"})
    assert paths, f"no sample photos in {SAMPLES}"
    return paths


@pytest.fixture(scope="session")
def cat_bytes() -> bytes:
    return (SAMPLES / "chelsea.png").read_bytes()


@pytest.fixture(scope="session")
def alexnet():
    from collabdnn.split_model import load_model

    return load_model("alexnet", "seed:0")
