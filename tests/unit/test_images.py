"""Unit 0 done right (issue 13, item 5): every Pillow mode, EXIF orientation, bounded work.

Each Pillow mode is converted to the RGB a viewer would show (16-bit grayscale scaled,
not clipped to white; transparency composited on white); EXIF orientation is applied;
image dimensions (longest side, aspect ratio, pixels) are refused from the header, and a
large JPEG is decoded DCT-scaled. The ordinary RGB samples go through exactly as before.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from collabdnn.errors import ImageError
from collabdnn.model.preprocess import (
    BACKGROUND,
    IMAGENET_MEAN,
    IMAGENET_STD,
    ImageLimits,
    Preprocess,
    open_image,
    to_rgb,
)
from tests.badinputs import png_header_claiming

ORIENTATION = 0x0112


def encode(image: Image.Image, fmt: str = "PNG", **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def pixels(tensor: torch.Tensor) -> np.ndarray:
    """Preprocess's output back to 0..255 RGB (HWC, rounded) for readable assertions."""
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    rgb = (tensor * std + mean) * 255
    return rgb[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


def reference(data: bytes, crop: int = 224, resize: int = 256) -> torch.Tensor:
    """The pipeline before issue 13, for RGB images: convert, resize, crop, normalise."""
    image = Image.open(io.BytesIO(data)).convert("RGB")
    width, height = image.size
    scale = resize / min(width, height)
    size = (max(crop, round(width * scale)), max(crop, round(height * scale)))
    image = image.resize(size, Image.Resampling.BILINEAR)
    left, top = (size[0] - crop) // 2, (size[1] - crop) // 2
    image = image.crop((left, top, left + crop, top + crop))
    x = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1)[None]
    x = x.contiguous().to(torch.float32).div_(255.0)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (x - mean) / std


# ------------------------------------------------------------------ ordinary photos


@pytest.mark.parametrize("crop", [224, 227])
def test_the_rgb_samples_are_preprocessed_exactly_as_before(sample_paths: list[Path], crop):
    for path in sample_paths:
        data = path.read_bytes()
        assert Image.open(io.BytesIO(data)).mode == "RGB"
        assert torch.equal(Preprocess(crop, 256)(data), reference(data, crop))


def test_an_opaque_rgba_image_is_its_rgb(cat_bytes: bytes):
    rgb = Image.open(io.BytesIO(cat_bytes)).convert("RGB")
    rgba = rgb.copy()
    rgba.putalpha(255)
    pre = Preprocess(224, 256)
    assert torch.equal(pre(encode(rgba)), pre(encode(rgb)))


# ------------------------------------------------------------------ modes


def gradient16(width: int = 64, height: int = 48) -> np.ndarray:
    return np.linspace(0, 65535, width * height).reshape(height, width).astype(np.uint16)


def test_16_bit_grayscale_is_scaled_not_white():
    values = gradient16()
    data = encode(Image.fromarray(values))
    assert Image.open(io.BytesIO(data)).mode.startswith("I;16")
    rgb = np.asarray(to_rgb(Image.open(io.BytesIO(data))))
    expected = np.round(values / 257).astype(np.uint8)
    assert np.abs(rgb[..., 0].astype(int) - expected).max() <= 1
    assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()
    # Through the whole pipeline: a mid-grey 16-bit image is mid-grey, not white.
    grey = encode(Image.fromarray(np.full((64, 64), 128 * 257, dtype=np.uint16)))
    out = pixels(Preprocess(32, 32)(grey))
    assert np.abs(out.astype(int) - 128).max() <= 1


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I;16L"])
def test_every_16_bit_byte_order(mode):
    image = Image.new(mode, (16, 16), 257 * 200)
    assert to_rgb(image).getpixel((3, 3)) == (200, 200, 200)


def test_32_bit_integer_images():
    # Values beyond 8 bits: taken as 16-bit.
    assert to_rgb(Image.new("I", (8, 8), 257 * 100)).getpixel((0, 0)) == (100, 100, 100)
    # 8-bit values in an I image stay as they are.
    assert to_rgb(Image.new("I", (8, 8), 77)).getpixel((0, 0)) == (77, 77, 77)
    # Negative values are black, beyond 16 bits white.
    values = np.array([[-5, 70000]], dtype=np.int32).repeat(8, 0)
    rgb = np.asarray(to_rgb(Image.fromarray(values, "I")))
    assert rgb[0, 0].tolist() == [0, 0, 0] and rgb[0, 1].tolist() == [255, 255, 255]


def test_float_images():
    assert to_rgb(Image.new("F", (8, 8), 0.5)).getpixel((0, 0)) == (128, 128, 128)
    assert to_rgb(Image.new("F", (8, 8), 200.0)).getpixel((0, 0)) == (200, 200, 200)
    values = np.array([[np.nan, np.inf, -np.inf, 1000.0]], dtype=np.float32).repeat(4, 0)
    rgb = np.asarray(to_rgb(Image.fromarray(values, "F")))[0, :, 0]
    assert rgb.tolist() == [0, 255, 0, 255]


def test_bilevel_images():
    image = Image.new("1", (16, 8), 0)
    image.paste(1, (8, 0, 16, 8))
    rgb = to_rgb(image)
    assert rgb.getpixel((0, 0)) == (0, 0, 0) and rgb.getpixel((15, 0)) == (255, 255, 255)


def test_cmyk_jpeg():
    red = Image.new("CMYK", (64, 64), (0, 255, 255, 0))
    data = encode(red, "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    out = pixels(Preprocess(32, 32)(data))
    assert np.abs(out.astype(int) - [255, 0, 0]).max() <= 4


def test_palette_without_transparency_is_its_colours():
    image = Image.new("RGB", (32, 32), (10, 200, 30)).convert("P", palette=Image.Palette.ADAPTIVE)
    assert to_rgb(image).getpixel((5, 5)) == (10, 200, 30)


def test_palette_with_a_transparent_index_is_composited_on_white():
    image = Image.new("P", (32, 32), 0)
    image.putpalette([0, 0, 0, 250, 10, 10] + [0] * 762)
    image.paste(1, (16, 0, 32, 32))
    image.info["transparency"] = 0  # index 0 (black) is transparent
    data = encode(image)
    reopened = Image.open(io.BytesIO(data))
    assert reopened.mode == "P" and "transparency" in reopened.info
    rgb = to_rgb(reopened)
    assert rgb.getpixel((0, 0)) == BACKGROUND  # not the black stored under it
    assert rgb.getpixel((31, 0)) == (250, 10, 10)
    # GIF palettes too.
    gif = Image.open(io.BytesIO(encode(image, "GIF", transparency=0)))
    assert to_rgb(gif).getpixel((0, 0)) == BACKGROUND


def test_alpha_is_composited_on_white():
    rgba = Image.new("RGBA", (16, 16), (0, 0, 0, 0))  # transparent black
    rgba.paste((200, 0, 0, 255), (8, 0, 16, 16))
    rgb = to_rgb(Image.open(io.BytesIO(encode(rgba))))
    assert rgb.getpixel((0, 0)) == BACKGROUND and rgb.getpixel((15, 0)) == (200, 0, 0)
    half = to_rgb(Image.new("RGBA", (4, 4), (0, 0, 0, 128)))
    assert all(abs(c - 127) <= 1 for c in half.getpixel((0, 0)))
    la = to_rgb(Image.open(io.BytesIO(encode(Image.new("LA", (8, 8), (0, 0))))))
    assert la.getpixel((0, 0)) == BACKGROUND


def test_colour_keys_are_transparency_too():
    for mode, key in (("L", 7), ("RGB", (1, 2, 3))):
        image = Image.new(mode, (8, 8), key)
        image.info["transparency"] = key
        assert to_rgb(image).getpixel((0, 0)) == BACKGROUND, mode
    gray16 = Image.new("I;16", (8, 8), 1000)
    gray16.info["transparency"] = 1000
    assert to_rgb(gray16).getpixel((0, 0)) == BACKGROUND


def test_a_transparent_image_through_the_pipeline_is_white():
    data = encode(Image.new("RGBA", (300, 300), (0, 0, 0, 0)))
    assert (pixels(Preprocess(224, 256)(data)) >= 254).all()


@pytest.mark.parametrize(
    "mode,fmt",
    [
        *[("L", "PNG"), ("P", "PNG"), ("1", "PNG"), ("LA", "PNG"), ("RGBA", "PNG")],
        *[("I;16", "PNG"), ("CMYK", "TIFF"), ("F", "TIFF"), ("I", "TIFF"), ("RGBA", "TIFF")],
        *[("CMYK", "JPEG"), ("L", "JPEG"), ("RGBA", "WEBP"), ("P", "GIF"), ("RGB", "BMP")],
    ],
)
def test_every_mode_and_format_gives_an_rgb_tensor(mode, fmt):
    data = encode(Image.new(mode, (40, 30)), fmt)
    assert Image.open(io.BytesIO(data)).mode.split(";")[0] == mode.split(";")[0]
    out = Preprocess(32, 36)(data)
    assert out.shape == (1, 3, 32, 32) and torch.isfinite(out).all()


@pytest.mark.parametrize("mode", ["YCbCr", "HSV", "PA", "RGBa", "LAB", "RGBX"])
def test_modes_only_made_in_memory_convert_too(mode):
    assert to_rgb(Image.new(mode, (8, 8))).mode == "RGB"


# ------------------------------------------------------------------ orientation, frames


def two_tone(width: int = 60, height: int = 40) -> Image.Image:
    """Left half red, right half blue: orientation shows."""
    image = Image.new("RGB", (width, height), (220, 0, 0))
    image.paste((0, 0, 220), (width // 2, 0, width, height))
    return image


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(orientation):
    image = two_tone()
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    tagged = encode(image, "PNG", exif=exif)
    upright = {
        1: image,
        2: image.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
        3: image.transpose(Image.Transpose.ROTATE_180),
        4: image.transpose(Image.Transpose.FLIP_TOP_BOTTOM),
        5: image.transpose(Image.Transpose.TRANSPOSE),
        6: image.transpose(Image.Transpose.ROTATE_270),
        7: image.transpose(Image.Transpose.TRANSVERSE),
        8: image.transpose(Image.Transpose.ROTATE_90),
    }[orientation]
    pre = Preprocess(32, 36)
    assert torch.equal(pre(tagged), pre(encode(upright)))


def test_a_sideways_phone_jpeg_is_turned_upright():
    exif = Image.Exif()
    exif[ORIENTATION] = 6  # stored sideways: rotate 90 degrees clockwise to show
    data = encode(two_tone(120, 80), "JPEG", quality=95, exif=exif)
    image = open_image(data, ImageLimits(), 36)
    assert image.size == (80, 120)
    rgb = np.asarray(to_rgb(image))
    assert rgb[5, 40, 0] > 150 and rgb[115, 40, 2] > 150  # red on top, blue below


def test_an_animated_image_gives_its_first_frame():
    frames = [Image.new("RGB", (32, 32), colour) for colour in ((250, 0, 0), (0, 0, 250))]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=100)
    out = pixels(Preprocess(32, 32)(buffer.getvalue()))
    assert out[..., 0].min() > 200 and out[..., 2].max() < 50


# ------------------------------------------------------------------ dimensions


@pytest.mark.parametrize(
    "width,height,message",
    [
        (8, 45_000, "longest side"),
        (8, 5_000_000, "longest side"),  # 40 MP: passes the pixel limit exactly
        (45_000, 8, "longest side"),
        (8, 2_000, "aspect ratio of 250:1"),
        (16_000, 500, "aspect ratio"),
        (7_000, 7_000, "pixels"),
    ],
)
def test_hostile_dimensions_are_refused_from_the_header(width, height, message):
    with pytest.raises(ImageError, match=message):
        Preprocess(224, 256)(png_header_claiming(width, height))


def test_limits_are_configurable():
    strip = png_header_claiming(8, 400)  # 50:1
    with pytest.raises(ImageError, match="aspect"):
        Preprocess(224, 256)(strip)
    limits = ImageLimits(max_aspect=60)
    with pytest.raises(ImageError, match="cannot decode"):  # passes the checks; no pixels
        Preprocess(224, 256, limits)(strip)
    with pytest.raises(ImageError, match="longest side is more than the limit of 300"):
        Preprocess(224, 256, ImageLimits(max_side=300, max_aspect=60))(strip)


def test_an_image_at_the_aspect_limit_is_served():
    strip = encode(Image.new("RGB", (8, 160), (10, 20, 30)))  # 20:1, the default limit
    assert Preprocess(224, 256)(strip).shape == (1, 3, 224, 224)


def _high_water_kb() -> int | None:
    """Reset this process's resident high-water mark; None where Linux does not allow it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return None
    return _status_kb("VmRSS")


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def test_a_real_8_by_45000_png_is_refused_cheaply():
    """1.1 KB that cost +1.5 GB during resizing before the aspect and side limits."""
    data = encode(Image.new("RGB", (8, 45_000), (120, 30, 200)))
    assert len(data) < 10_000
    before = _high_water_kb()
    with pytest.raises(ImageError, match="longest side"):
        Preprocess(224, 256)(data)
    if before is not None:
        grown_mb = (_status_kb("VmHWM") - before) / 1024
        assert grown_mb < 50, f"refusing it cost {grown_mb:.0f} MB"


def test_a_large_jpeg_is_decoded_dct_scaled():
    data = encode(Image.new("RGB", (4000, 3000), (90, 140, 40)), "JPEG", quality=80)
    image = open_image(data, ImageLimits(), 256)
    # 3000 // (2 * 256) = 5: Pillow picks 1/4, the largest scale that keeps 512 rows.
    assert image.size == (1000, 750)
    before = _high_water_kb()
    out = Preprocess(224, 256)(data)
    if before is not None:
        grown_mb = (_status_kb("VmHWM") - before) / 1024
        assert grown_mb < 30, f"a 12 MP JPEG cost {grown_mb:.0f} MB"  # full decode: ~48 MB
    assert np.abs(pixels(out).astype(int) - [90, 140, 40]).max() <= 3


def test_small_jpegs_are_decoded_at_full_size(sample_paths):
    jpeg = next(p for p in sample_paths if p.suffix == ".jpg").read_bytes()
    assert open_image(jpeg, ImageLimits(), 256).size == Image.open(io.BytesIO(jpeg)).size


# ------------------------------------------------------------------ hostile bytes

SEEDS = {
    "png": encode(two_tone(24, 16)),
    "jpeg": encode(two_tone(24, 16), "JPEG"),
    "gif": encode(two_tone(24, 16).convert("P"), "GIF"),
    "png16": encode(Image.fromarray(gradient16(16, 12))),
    "rgba": encode(Image.new("RGBA", (16, 16), (1, 2, 3, 100))),
}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.sampled_from(sorted(SEEDS)),
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=6),
    cut=st.one_of(st.none(), st.integers(0, 10_000)),
)
def test_mutated_images_give_a_tensor_or_an_image_error(seed, edits, cut):
    """Whatever Pillow raises on corrupt bytes becomes ImageError (INVALID_ARGUMENT)."""
    data = bytearray(SEEDS[seed])
    for position, value in edits:
        data[position % len(data)] = value
    if cut is not None:
        data = data[: cut % (len(data) + 1)]
    try:
        out = Preprocess(32, 36)(bytes(data))
    except ImageError:
        return
    assert out.shape == (1, 3, 32, 32)
