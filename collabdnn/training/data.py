"""The data a run trains on: an ImageFolder (one subfolder per class), as image bytes.

Torch-free: the client reads the folder and sends encoded images, so the agent never
opens a path a client names. Classes are the subfolders in name order, numbered from
0 as torchvision's ``ImageFolder`` numbers them. Every file is opened and decoded once
with Pillow; one that cannot be (not an image, truncated, over the pixel limit, empty)
is skipped and counted with the reason. Batches are drawn in an order shuffled per
epoch by the run's seed, so a run is repeatable.
"""

from __future__ import annotations

import io
import random
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from collabdnn.errors import ImageError

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm"}
)


@dataclass(frozen=True)
class ImageFolder:
    classes: tuple[str, ...]
    images: tuple[bytes, ...]
    labels: tuple[int, ...]
    skipped: tuple[tuple[str, str], ...] = ()  # (path, why)

    def __len__(self) -> int:
        return len(self.images)


def _problem(data: bytes, max_pixels: int) -> str:
    """Why Pillow cannot decode ``data`` within ``max_pixels``; "" when it can."""
    from PIL import Image

    if not data:
        return "empty file"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                if width * height > max_pixels:
                    return f"{width}x{height} is over {max_pixels:,} pixels"
                image.load()
    except Exception as exc:  # Pillow raises many types for bad bytes
        return f"{type(exc).__name__}: {exc}"[:200]
    return ""


def load_image_folder(
    root: Path, max_image_bytes: int = 32 * 2**20, max_pixels: int = 50_000_000
) -> ImageFolder:
    """Read ``root``'s class subfolders; ImageError when there is nothing to train on."""
    if not root.is_dir():
        raise ImageError(f"{str(root)!r} is not a folder")
    classes = tuple(sorted(p.name for p in root.iterdir() if p.is_dir()))
    if not classes:
        raise ImageError(f"{str(root)!r} has no class subfolders (one per class)")
    images: list[bytes] = []
    labels: list[int] = []
    skipped: list[tuple[str, str]] = []
    for label, name in enumerate(classes):
        for path in sorted((root / name).rglob("*")):
            if not path.is_file() or path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            try:
                size = path.stat().st_size
                if size > max_image_bytes:
                    skipped.append((str(path), f"{size:,} bytes is over {max_image_bytes:,}"))
                    continue
                data = path.read_bytes()
            except OSError as exc:
                skipped.append((str(path), exc.strerror or str(exc)))
                continue
            problem = _problem(data, max_pixels)
            if problem:
                skipped.append((str(path), problem))
                continue
            images.append(data)
            labels.append(label)
    if not images:
        raise ImageError(f"{str(root)!r} holds no readable image ({len(skipped)} skipped)")
    return ImageFolder(classes, tuple(images), tuple(labels), tuple(skipped))


def batch_order(size: int, batch_size: int, steps: int, seed: int = 0) -> Iterator[list[int]]:
    """``steps`` batches of indices into ``size`` samples: each epoch a fresh shuffle
    (by ``seed`` and the epoch), batches of ``batch_size`` running across epochs."""
    if size < 1 or batch_size < 1:
        raise ValueError("size and batch_size must be at least 1")
    pool: list[int] = []
    epoch = 0
    for _ in range(steps):
        batch: list[int] = []
        while len(batch) < batch_size:
            if not pool:
                pool = list(range(size))
                random.Random(f"{seed}:{epoch}").shuffle(pool)
                epoch += 1
            batch.append(pool.pop())
        yield batch
