"""Unit 0: image bytes -> normalised float tensor, with Pillow.

Preprocessing is a unit like any other so that a plan starting in the cloud ships the
compact encoded image rather than a float tensor ten times its size. Both sides run
this same code, so a split run stays bit-exact whichever side runs unit 0.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from collabdnn.errors import ImageError
from collabdnn.limits import DEFAULT_MAX_IMAGE_BYTES, DEFAULT_MAX_PIXELS, MIN_SIDE

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

__all__ = [
    "DEFAULT_MAX_IMAGE_BYTES",
    "DEFAULT_MAX_PIXELS",
    "MIN_SIDE",
    "ImageLimits",
    "Preprocess",
    "set_pillow_pixel_limit",
]


@dataclass(frozen=True)
class ImageLimits:
    """Bounds checked before and while decoding untrusted image bytes."""

    max_bytes: int = DEFAULT_MAX_IMAGE_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS
    min_side: int = MIN_SIDE


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

    def forward(self, images: bytes | Sequence[bytes]) -> torch.Tensor:
        batch = [images] if isinstance(images, bytes | bytearray | memoryview) else list(images)
        if not batch:
            raise ImageError("no images given")
        arrays = [self._decode(bytes(data)) for data in batch]
        pixels = torch.from_numpy(np.stack(arrays)).to(self.mean.device)
        # Contiguous NCHW: conv kernels round differently on channels-last input.
        x = pixels.permute(0, 3, 1, 2).contiguous().to(torch.float32).div_(255.0)
        return (x - self.mean) / self.std

    def _decode(self, data: bytes) -> np.ndarray:
        limits = self.limits
        if not data:
            raise ImageError("empty image: no bytes were sent")
        if len(data) > limits.max_bytes:
            raise ImageError(
                f"image is {len(data)} bytes, more than the limit of {limits.max_bytes}"
            )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                image = Image.open(io.BytesIO(data))
                width, height = image.size
                if width * height > limits.max_pixels:
                    raise ImageError(
                        f"image claims {width}x{height} pixels, more than the limit of "
                        f"{limits.max_pixels} pixels"
                    )
                if min(width, height) < limits.min_side:
                    raise ImageError(
                        f"image is {width}x{height}; both sides must be at least {limits.min_side}"
                    )
                rgb = self._resize_crop(image.convert("RGB"))
                return np.asarray(rgb, dtype=np.uint8)
        except ImageError:
            raise
        except UnidentifiedImageError as exc:
            raise ImageError(
                f"cannot decode image: {len(data)} bytes in no format Pillow recognises"
            ) from exc
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageError(f"cannot decode image: {exc}") from exc
        except (OSError, ValueError, SyntaxError) as exc:
            raise ImageError(f"cannot decode image (truncated or corrupt): {exc}") from exc

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
