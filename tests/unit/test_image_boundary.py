"""The lossless image boundary: preprocessing split after the uint8 crop, bit for bit.

For every sample photo and every crop format, cropping on one side, sending the crop
and normalising on the other equals preprocessing the photo whole (``torch.equal``),
and the crop decodes to the very bytes it was made of. The first hop of a cloud-only
plan is then at most 100 KB for every sample (PNG and WebP). A crop is bounded before
it is decoded: anything but exactly crop x crop RGB is refused.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from collabdnn.codec import CodecConfig, decode, encode
from collabdnn.crossing import CROP_FORMATS
from collabdnn.errors import ImageError
from collabdnn.model.image_boundary import CropBatch, decode_crop, encode_crop
from collabdnn.model.split_model import SplitModel

FIRST_HOP_LIMIT = 100_000


def test_split_preprocessing_is_bit_exact_for_every_sample_and_format(
    alexnet: SplitModel, sample_paths: list
) -> None:
    for path in sample_paths:
        photo = path.read_bytes()
        whole = alexnet.run(0, 1, photo)
        pixels = alexnet.preprocess.crop_pixels(photo)
        assert pixels.dtype == np.uint8 and pixels.shape == (224, 224, 3)
        for fmt in CROP_FORMATS:
            crop = alexnet.crop_images(photo, fmt)
            assert len(crop.images) == 1
            assert np.array_equal(decode_crop(crop.images[0], 224), pixels), (path.name, fmt)
            assert torch.equal(alexnet.run(0, 1, crop), whole), (path.name, fmt)
            if fmt != "zstd":
                assert len(crop.images[0]) <= FIRST_HOP_LIMIT, (path.name, fmt)


def test_split_at_the_crop_gives_the_same_logits(alexnet: SplitModel, cat_bytes: bytes) -> None:
    """The whole model, cropped on one side: the same logits, batches included."""
    n = alexnet.num_units
    whole = alexnet.run(0, n, [cat_bytes, cat_bytes])
    crops = alexnet.crop_images([cat_bytes, cat_bytes], "webp")
    split, _ = alexnet.run_timed(0, n, crops, should_stop=lambda: None)
    assert torch.equal(split, whole)


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG signature and IHDR claiming ``width`` x ``height``, then nothing."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
    )


def _image(fmt: str, size: tuple[int, int], mode: str = "RGB") -> bytes:
    """A ``fmt`` image of noise (so that cutting it short truncates its pixel data)."""
    out = io.BytesIO()
    noise = np.random.default_rng(0).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(noise, "RGB").convert(mode).save(
        out, format=fmt, **({"lossless": True} if fmt == "WEBP" else {})
    )
    return out.getvalue()


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "not a crop"),
        (b"GIF89a....", "not a crop"),
        (_png_header_only(100_000, 100_000), "png crop|not 224x224"),
        (_png_header_only(224, 224), "cannot decode png"),
        (_image("PNG", (225, 224)), "not 224x224"),
        (_image("PNG", (224, 224), "L"), "not 224x224 RGB"),
        (_image("WEBP", (224, 200)), "not 224x224"),
        (_image("WEBP", (224, 224))[:2000], "cannot decode webp"),
        (encode(torch.zeros(224, 224, 3), CodecConfig(level=1)), "bad crop frame"),
        (encode(torch.zeros(3, 224, 224, dtype=torch.uint8)), "not uint8"),
        (encode(torch.zeros(0, 224, 3, dtype=torch.uint8)), "not uint8"),
        (b"CDNF" + b"\x01" * 40, "bad crop frame"),
    ],
)
def test_hostile_crops_are_refused_before_decoding(data: bytes, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        decode_crop(data, 224)


def test_a_frame_claiming_a_huge_crop_is_refused_from_its_header() -> None:
    """The frame's claimed size is compared with 3 * crop**2 before anything is
    allocated: a claim of 1 GB costs nothing."""
    small = encode(torch.zeros(2, 2, 3, dtype=torch.uint8), CodecConfig(level=0))
    header = bytearray(small[:8])  # magic, version, codec, dtype, ndim
    header += struct.pack("<QQQ", 20_000, 20_000, 3) + struct.pack("<QI", 1_200_000_000, 0)
    with pytest.raises(ImageError, match="bad crop frame"):
        decode_crop(bytes(header), 224)


def test_unit0_refuses_a_hostile_crop_as_the_images_fault(alexnet: SplitModel) -> None:
    bad = CropBatch((_image("PNG", (225, 224)),))
    with pytest.raises(ImageError):
        alexnet.run_timed(0, 2, bad, should_stop=lambda: None)
    with pytest.raises(ImageError, match="no images"):
        alexnet.run(0, 1, CropBatch(()))


def test_encode_crop_refuses_an_unknown_format() -> None:
    with pytest.raises(ValueError, match="unknown crop format"):
        encode_crop(np.zeros((4, 4, 3), np.uint8), "jpeg")


def test_the_cloud_bounds_crops_before_decoding(alexnet: SplitModel, cat_bytes: bytes) -> None:
    """The cloud counts crops like images (at most max_batch, max_request_bytes) before
    any work, refuses a bad one as the request's fault, and runs a good one bit-exactly."""
    from cloud_server.cloud import Cloud
    from collabdnn.bounds import RequestLimits
    from collabdnn.errors import LimitError
    from collabdnn.services import ExecuteRequest, Load

    cloud = Cloud(alexnet, limits=RequestLimits(max_batch=2, max_request_bytes=300_000))
    good = alexnet.crop_images(cat_bytes, "webp").images

    def execute(crops: tuple[bytes, ...]) -> bytes:
        request = ExecuteRequest(
            alexnet.name, alexnet.weights_hash, 0, 2, CodecConfig(level=0), crops=crops
        )
        return cloud.execute(request, lambda: Load(0, 0.0, 0)).output

    out = decode(execute(good))
    assert torch.equal(out, alexnet.run(0, 2, cat_bytes))
    with pytest.raises(LimitError, match="at most 2"):
        execute(good * 3)
    with pytest.raises(LimitError, match="bytes"):
        execute((b"\x89PNG\r\n\x1a\n" + bytes(300_000),))
    with pytest.raises(ImageError, match="not 224x224"):
        execute((_image("PNG", (225, 224)),))
