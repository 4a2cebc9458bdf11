"""Unit 0 on untrusted bytes: real photos decode, bad ones raise ImageError."""

from __future__ import annotations

import io
import zlib

import pytest
import torch
from PIL import Image

from collabdnn.errors import ImageError
from collabdnn.model.preprocess import ImageLimits, Preprocess


def _png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (120, 30, 200)).save(buf, format="PNG")
    return buf.getvalue()


def test_sample_photos_decode(sample_paths):
    pre = Preprocess(224, 256)
    for path in sample_paths:
        x = pre(path.read_bytes())
        assert x.shape == (1, 3, 224, 224) and x.dtype == torch.float32
    assert pre([p.read_bytes() for p in sample_paths]).shape == (len(sample_paths), 3, 224, 224)


def test_preprocessing_is_deterministic(cat_bytes):
    pre = Preprocess(227, 256)
    assert torch.equal(pre(cat_bytes), pre(cat_bytes))


def _png_claiming(side: int) -> bytes:
    png = bytearray(_png(16, 16))
    png[16:24] = side.to_bytes(4, "big") * 2  # IHDR width and height
    png[29:33] = zlib.crc32(bytes(png[12:29])).to_bytes(4, "big")  # a valid chunk CRC
    return bytes(png)


def test_png_header_claiming_huge_sizes_is_refused_before_decoding():
    # Pillow's guard, set explicitly to our default limit, fires while reading the header ...
    for side in (20000, 8000):
        with pytest.raises(ImageError, match="decompression bomb"):
            Preprocess(224, 256)(_png_claiming(side))
    # ... and a per-service limit below it is checked before any pixel is decoded.
    with pytest.raises(ImageError, match="64x64 pixels, more than the limit of 1000"):
        Preprocess(224, 256, ImageLimits(max_pixels=1000))(_png(64, 64))


@pytest.mark.parametrize(
    "data,message",
    [
        (b"", "empty image"),
        (b"hello, not an image", "cannot decode image"),
        (_png(1, 1), "at least"),
    ],
)
def test_bad_images(data, message):
    with pytest.raises(ImageError, match=message):
        Preprocess(224, 256)(data)


def test_truncated_jpeg(sample_paths):
    jpeg = next(p for p in sample_paths if p.suffix == ".jpg").read_bytes()
    with pytest.raises(ImageError, match="truncated or corrupt|cannot decode"):
        Preprocess(224, 256)(jpeg[: len(jpeg) // 2])


def test_byte_limit():
    with pytest.raises(ImageError, match="more than the limit"):
        Preprocess(224, 256, ImageLimits(max_bytes=100))(_png(64, 64))
