"""Unit 0: image bytes -> normalised float tensor, with Pillow.

Preprocessing is a unit like any other so that a plan starting in the cloud ships the
compact encoded image rather than a float tensor ten times its size. It has two stages,
:meth:`Preprocess.crop_pixels` (bytes -> uint8 crop) and :meth:`Preprocess.normalise`
(uint8 -> float), so that a plan may also ship the lossless uint8 crop
(:mod:`collabdnn.model.image_boundary`). Both sides run
this same code, so a split run stays bit-exact whichever side runs unit 0.

Untrusted bytes are bounded before any pixel is decoded: size in bytes, then, from the
header, the shorter side (at least ``min_side``), the pixel count, the longest side and
the aspect ratio (:class:`ImageLimits`). The aspect ratio also bounds the resize: an
8x45,000 strip would otherwise be scaled to 256x1,440,000 pixels. A JPEG is decoded
DCT-scaled (Pillow's ``draft``) to no less than twice the size the resize needs, so a
large photo costs a fraction of its full decode.

Then, in this order: the first frame of an animated image; the EXIF orientation applied
(``ImageOps.exif_transpose``, as phone photos need); every Pillow mode to 8-bit RGB
(:func:`to_rgb`: 16-bit and 32-bit grayscale scaled from their range, not clipped;
CMYK, palette, bilevel converted; transparency composited on :data:`BACKGROUND`); the
shorter side resized to ``resize`` (bilinear), the centre ``crop`` cut out, normalised.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from collabdnn.errors import ImageError
from collabdnn.limits import (
    DEFAULT_MAX_ASPECT,
    DEFAULT_MAX_IMAGE_BYTES,
    DEFAULT_MAX_PIXELS,
    DEFAULT_MAX_SIDE,
    MIN_SIDE,
)
from collabdnn.model.image_boundary import CropBatch, decode_crop

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Transparent pixels are composited on white: what a viewer shows, and what photos of
# objects "on a white background" look like. Their stored colour is often black or junk.
BACKGROUND = (255, 255, 255)
DRAFT_GAP = 2  # a JPEG is DCT-scaled to no less than this many times the resized size
_EXIF_ORIENTATION = 0x0112
_HIGH_DEPTH = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I", "F"})
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})

__all__ = [
    "BACKGROUND",
    "DEFAULT_MAX_ASPECT",
    "DEFAULT_MAX_IMAGE_BYTES",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MAX_SIDE",
    "MIN_SIDE",
    "ImageLimits",
    "Preprocess",
    "composite",
    "open_image",
    "rgb_or_rgba",
    "set_pillow_pixel_limit",
    "to_rgb",
]


@dataclass(frozen=True)
class ImageLimits:
    """Bounds checked before and while decoding untrusted image bytes."""

    max_bytes: int = DEFAULT_MAX_IMAGE_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS
    min_side: int = MIN_SIDE
    max_side: int = DEFAULT_MAX_SIDE
    max_aspect: float = DEFAULT_MAX_ASPECT

    def check_size(self, width: int, height: int) -> None:
        """Refuse a ``width`` x ``height`` image (from its header) with an :class:`ImageError`."""
        short, long = sorted((width, height))
        if short < self.min_side:
            raise ImageError(
                f"image is {width}x{height}; both sides must be at least {self.min_side}"
            )
        if width * height > self.max_pixels:
            raise ImageError(
                f"image claims {width}x{height} pixels, more than the limit of "
                f"{self.max_pixels} pixels"
            )
        if long > self.max_side:
            raise ImageError(
                f"image claims {width}x{height} pixels; its longest side is more than the "
                f"limit of {self.max_side}"
            )
        if long > self.max_aspect * short:
            raise ImageError(
                f"image claims {width}x{height} pixels, an aspect ratio of {long / short:.0f}:1, "
                f"more than the limit of {self.max_aspect:g}:1"
            )


def open_image(data: bytes, limits: ImageLimits, resize: int) -> Image.Image:
    """Decode untrusted ``data``: checked from its header, DCT-scaled if a JPEG, upright.

    Returns the first frame, loaded, in its own mode (see :func:`to_rgb`), with the EXIF
    orientation applied. Raises :class:`ImageError` for anything wrong with the bytes.
    """
    if not data:
        raise ImageError("empty image: no bytes were sent")
    if len(data) > limits.max_bytes:
        raise ImageError(f"image is {len(data)} bytes, more than the limit of {limits.max_bytes}")
    width = height = 0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            limits.check_size(width, height)
            # JPEG only (a no-op for other formats): decode at 1/2, 1/4 or 1/8 scale when
            # the result still has DRAFT_GAP times the pixels the resize keeps.
            scale = DRAFT_GAP * resize / min(width, height)
            if scale < 1:
                image.draft(None, (math.ceil(width * scale), math.ceil(height * scale)))
            image.load()
            # A plugin may decode another size than its header said (icons, draft).
            if image.width * image.height > width * height:
                raise ImageError(
                    f"image decoded to {image.width}x{image.height} pixels, more than the "
                    f"{width}x{height} its header claims"
                )
            return _upright(image)
    except ImageError:
        raise
    except UnidentifiedImageError as exc:
        raise ImageError(
            f"cannot decode image: {len(data)} bytes in no format Pillow recognises"
        ) from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"cannot decode image: {exc}") from exc
    except MemoryError as exc:
        raise ImageError(f"cannot decode image: out of memory for {width}x{height}") from exc
    except Exception as exc:  # Pillow raises many kinds on corrupt input: all are bad bytes
        raise ImageError(
            f"cannot decode image (truncated or corrupt): {type(exc).__name__}: {exc}"
        ) from exc


def _upright(image: Image.Image) -> Image.Image:
    """The image turned as its EXIF orientation says (phone photos are stored sideways)."""
    try:
        orientation = image.getexif().get(_EXIF_ORIENTATION)
    except Exception:  # unreadable EXIF: orientation unknown, the pixels are still fine
        return image
    if orientation not in (2, 3, 4, 5, 6, 7, 8):
        return image  # 1 (upright) or none: exif_transpose would only copy the image
    return ImageOps.exif_transpose(image)


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode as 8-bit RGB.

    - ``RGB``: as it is. ``L``, ``P``, ``1``, ``CMYK``, ``YCbCr``, ``HSV``: Pillow's
      conversion (``1`` is black or white; CMYK without a colour profile).
    - 16-bit grayscale (``I;16`` and its byte orders): scaled to 8 bits,
      ``round(v / 257)``, not clipped at 255 (which made it white).
    - 32-bit ``I``: as 16-bit when a value exceeds 255 (clipped to 0..65535), otherwise
      as 8-bit. ``F``: as 0..1 when no value exceeds 1, otherwise as 0..255, clipped;
      NaN is 0.
    - Transparency (an alpha band, a palette's or a colour key's): composited on
      :data:`BACKGROUND`, white.
    """
    return composite(rgb_or_rgba(image))


def rgb_or_rgba(image: Image.Image) -> Image.Image:
    """The image as ``RGB``, or as ``RGBA`` when it has any transparency (see :func:`to_rgb`).

    Preprocessing resizes the ``RGBA`` image (Pillow weighs colours by their alpha) and
    composites only the small crop (:func:`composite`).
    """
    if image.mode in _HIGH_DEPTH:
        gray, alpha = _eight_bit(image)
        if alpha is None:
            return gray.convert("RGB")
        image = Image.merge("LA", (gray, alpha))
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")
        if rgba.getchannel("A").getextrema() == (255, 255):  # nothing transparent after all
            return rgba.convert("RGB")
        return rgba
    return image if image.mode == "RGB" else image.convert("RGB")


def composite(image: Image.Image) -> Image.Image:
    """An ``RGBA`` image composited on :data:`BACKGROUND`; any other image unchanged."""
    if image.mode != "RGBA":
        return image
    background = Image.new("RGB", image.size, BACKGROUND)
    background.paste(image, (0, 0), image)
    return background


def _eight_bit(image: Image.Image) -> tuple[Image.Image, Image.Image | None]:
    """A 16-bit, 32-bit or float grayscale image as ``L``, and its colour key as alpha."""
    values = np.asarray(image)
    key = image.info.get("transparency")
    alpha = None
    if isinstance(key, int | float):
        alpha = Image.fromarray(np.where(values == key, 0, 255).astype(np.uint8), "L")
    if image.mode == "F":
        values = np.nan_to_num(values.astype(np.float32), nan=0.0, posinf=255.0, neginf=0.0)
        if values.size and values.max() <= 1.0:
            values = values * 255.0
        eight = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    elif image.mode == "I" and (not values.size or values.max() <= 255):
        eight = np.clip(values, 0, 255).astype(np.uint8)
    else:  # 16 bits: I;16 of any byte order, or I holding 16-bit values
        wide = np.clip(values, 0, 65535).astype(np.uint32)
        eight = ((wide + 128) // 257).astype(np.uint8)
    return Image.fromarray(eight, "L"), alpha


_RESAMPLING = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
    "lanczos": Image.Resampling.LANCZOS,
}


class Preprocess(torch.nn.Module):
    """Decode, resize the shorter side to ``resize``, centre-crop ``crop``, normalise.

    ``mean``, ``std`` and ``interpolation`` (a Pillow filter by name) are the model's
    (``ModelSpec.preprocessing``); the defaults are ImageNet's, bilinear.
    """

    def __init__(
        self,
        crop: int,
        resize: int,
        limits: ImageLimits | None = None,
        *,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        interpolation: str = "bilinear",
    ) -> None:
        super().__init__()
        self.crop = crop
        self.resize = resize
        self.limits = limits or ImageLimits()
        self.resampling = _RESAMPLING[interpolation]
        self.register_buffer("mean", torch.tensor(tuple(mean)).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(tuple(std)).view(1, 3, 1, 1), persistent=False)
        self.mean: torch.Tensor
        self.std: torch.Tensor

    def forward(self, images: bytes | Sequence[bytes] | CropBatch) -> torch.Tensor:
        if isinstance(images, CropBatch):  # the crop stage ran on the other side
            if not images.images:
                raise ImageError("no images given")
            return self.normalise([decode_crop(data, self.crop) for data in images.images])
        batch = [images] if isinstance(images, bytes | bytearray | memoryview) else list(images)
        if not batch:
            raise ImageError("no images given")
        return self.normalise([self.crop_pixels(bytes(data)) for data in batch])

    def normalise(self, arrays: Sequence[np.ndarray]) -> torch.Tensor:
        """The second stage: uint8 crops (H x W x 3 each) -> the normalised NCHW batch.

        :meth:`forward` is ``normalise`` of :meth:`crop_pixels`, so a crop made on one
        side and normalised on the other gives the same bits (the image boundary,
        :mod:`collabdnn.model.image_boundary`).
        """
        pixels = torch.from_numpy(np.stack(arrays)).to(self.mean.device)
        # Contiguous NCHW: conv kernels round differently on channels-last input.
        x = pixels.permute(0, 3, 1, 2).contiguous().to(torch.float32).div_(255.0)
        return (x - self.mean) / self.std

    def crop_pixels(self, data: bytes) -> np.ndarray:
        """The first stage: untrusted photo bytes -> the resized, centre-cropped uint8
        pixels (``crop`` x ``crop`` x 3), bounded as the module doc says."""
        image = open_image(data, self.limits, self.resize)
        try:
            rgb = composite(self._resize_crop(rgb_or_rgba(image)))
            return np.asarray(rgb, dtype=np.uint8)
        except MemoryError as exc:
            raise ImageError(
                f"cannot decode image: out of memory for {image.width}x{image.height}"
            ) from exc
        except ValueError as exc:  # a mode Pillow cannot convert
            raise ImageError(f"cannot convert image of mode {image.mode}: {exc}") from exc

    def _resize_crop(self, image: Image.Image) -> Image.Image:
        width, height = image.size
        scale = self.resize / min(width, height)
        size = (max(self.crop, round(width * scale)), max(self.crop, round(height * scale)))
        image = image.resize(size, self.resampling)
        left = (size[0] - self.crop) // 2
        top = (size[1] - self.crop) // 2
        return image.crop((left, top, left + self.crop, top + self.crop))


def set_pillow_pixel_limit(max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """Set Pillow's global decompression-bomb guard explicitly (it errors at twice this)."""
    Image.MAX_IMAGE_PIXELS = max_pixels


set_pillow_pixel_limit()
