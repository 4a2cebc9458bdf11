"""The lossless image boundary inside unit 0: the uint8 crop, encoded for the link.

Preprocessing (:class:`~collabdnn.model.preprocess.Preprocess`) has two stages: the
*crop* (decode the photo, resize, centre-crop: uint8 pixels) and the *normalisation*
(to float, minus the mean, over the std). Normalising the uint8 crop is exactly what
preprocessing the photo does, so a plan can ship the crop instead of the photo and stay
bit-exact: 150,528 bytes of pixels at 224x224, 45-140 KB losslessly compressed, where
the photo itself is often several hundred KB.

Why a second form of boundary 0 rather than a new unit: a unit boundary is where a plan
may put a different side, and every placement spec, profile, merged layout and unit
count in the system counts units; a new unit would renumber them all for every model.
The crop is instead another *codec* of boundary 0 (:mod:`collabdnn.crossing`): the phone
runs the crop stage before sending it, the cloud runs the normalisation after decoding
it, and the planner prices the choice like any codec (the phone's crop time counts as
encoding, the cloud's as saved). Nothing else changes: unit 0 is still preprocessing.

Formats: ``png`` (zlib, level 1), ``webp`` (lossless WebP, fastest method) and ``zstd``
(a :mod:`collabdnn.codec` frame of the HxWx3 uint8 array). Decoding is self-describing
(the bytes say which) and bounded before any pixel is decoded: the header must claim
exactly the model's ``crop`` x ``crop`` RGB (or uint8 [crop, crop, 3]), so a crop never
costs more than the pixels it holds.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from collabdnn.codec import CodecConfig, decode, encode, read_header
from collabdnn.crossing import CROP_FORMATS
from collabdnn.errors import CodecError, ImageError

__all__ = ["CROP_FORMATS", "CropBatch", "decode_crop", "encode_crop"]

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_FRAME_MAGIC = b"CDNF"
PNG_LEVEL = 1  # zlib level: 6 (Pillow's default) is a few % smaller and 3-5x slower
WEBP_METHOD = 0  # lossless WebP's fastest method


@dataclass(frozen=True)
class CropBatch:
    """Encoded uint8 crops, one per image: the input of unit 0 in place of photos."""

    images: tuple[bytes, ...]


def encode_crop(pixels: np.ndarray, fmt: str) -> bytes:
    """``pixels`` (H x W x 3 uint8) losslessly as ``fmt`` (``png``, ``webp`` or ``zstd``)."""
    if fmt == "zstd":
        return encode(
            torch.from_numpy(np.require(pixels, requirements=["C", "W"])), CodecConfig(level=1)
        )
    image = Image.fromarray(pixels, "RGB")
    out = io.BytesIO()
    if fmt == "png":
        image.save(out, format="PNG", compress_level=PNG_LEVEL)
    elif fmt == "webp":
        image.save(out, format="WEBP", lossless=True, method=WEBP_METHOD, quality=0, exact=True)
    else:
        raise ValueError(f"unknown crop format {fmt!r}: expected one of {', '.join(CROP_FORMATS)}")
    return out.getvalue()


def crop_format_of(data: bytes) -> str:
    """Which format ``data`` is in, from its first bytes; ImageError for none."""
    if data.startswith(_FRAME_MAGIC):
        return "zstd"
    if data.startswith(_PNG_MAGIC):
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    raise ImageError(f"not a crop: {len(data)} bytes in none of {', '.join(CROP_FORMATS)}")


def decode_crop(data: bytes, crop: int) -> np.ndarray:
    """A ``crop`` x ``crop`` x 3 uint8 array from any crop format, or ImageError.

    The size is checked from the header before anything is decoded: exactly
    ``crop`` x ``crop`` RGB pixels (``3 * crop**2`` bytes), nothing else is accepted.
    """
    fmt = crop_format_of(data)
    want = (crop, crop, 3)
    if fmt == "zstd":
        try:
            header = read_header(data, max_bytes=3 * crop * crop)
            if header.dtype != torch.uint8 or header.shape != want:
                raise ImageError(
                    f"crop frame holds {header.dtype} {list(header.shape)}, not uint8 {list(want)}"
                )
            return decode(data, max_bytes=3 * crop * crop).numpy()
        except CodecError as exc:
            raise ImageError(f"bad crop frame: {exc}") from exc
    try:
        image = Image.open(io.BytesIO(data), formats=["PNG" if fmt == "png" else "WEBP"])
        if image.size != (crop, crop) or image.mode != "RGB":
            raise ImageError(
                f"crop is {image.size[0]}x{image.size[1]} {image.mode}, not {crop}x{crop} RGB"
            )
        image.load()
        pixels = np.asarray(image, dtype=np.uint8)
    except ImageError:
        raise
    except Exception as exc:  # Pillow raises many kinds on corrupt input
        raise ImageError(f"cannot decode {fmt} crop: {type(exc).__name__}: {exc}") from exc
    if pixels.shape != want:  # a plugin that decoded another size than its header said
        raise ImageError(f"crop decoded to {list(pixels.shape)}, not {list(want)}")
    return pixels
