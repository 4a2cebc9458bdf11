"""The sample photos shipped in the repository's ``samples/`` folder.

Profiles must be measured on real photos (activation sizes after compression depend on
the content), so commands that profile default to these. The folder sits beside the
package in a source checkout; ``COLLABDNN_SAMPLES`` points elsewhere (an installed
package has no ``samples/``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["IMAGE_SUFFIXES", "read_images", "sample_dir", "sample_images"]

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg"})
_ENV = "COLLABDNN_SAMPLES"


def sample_dir() -> Path:
    """Where the sample photos are: ``$COLLABDNN_SAMPLES`` or ``samples/`` beside the package."""
    override = os.environ.get(_ENV)
    if override:
        return Path(override)
    return Path(__file__).resolve().parent.parent / "samples"


def sample_images(folder: Path | None = None) -> list[Path]:
    """The sample photos, sorted by name so that every run profiles the same order.

    Raises :class:`FileNotFoundError` with a hint when there are none, rather than
    letting a profiler silently measure nothing.
    """
    folder = folder or sample_dir()
    if not folder.is_dir():
        raise FileNotFoundError(f"no sample folder at {folder}; pass image paths or set {_ENV}")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise FileNotFoundError(f"no .png/.jpg photos in {folder}")
    return paths


def read_images(paths: Iterable[str | Path]) -> list[bytes]:
    """The encoded bytes of each image, as a phone would send them (not decoded)."""
    return [Path(path).read_bytes() for path in paths]
