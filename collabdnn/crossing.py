"""The codecs a plan can choose for a crossing of the link, by name (torch-free).

Every crossing of a plan (a boundary moving mobile->cloud or cloud->mobile) is sent with
one codec, chosen by the planner from the profiled sizes and encode/decode times and
the link: on a fast link the cheapest to encode wins (``raw``), on a slow one the
smallest. The names are what plans, profiles and the wire carry:

* a tensor boundary: ``raw`` (no compression), ``zstd:L`` (zstd level ``L``), or
  ``zstd:L+shuffle`` (after the byte-shuffle filter); frames are self-describing
  (:mod:`collabdnn.codec`), so a receiver decodes any of them;
* the photo boundary (boundary 0, before preprocessing): ``photo`` ships the original
  encoded photo, and ``crop:png``, ``crop:webp`` or ``crop:zstd`` ship the uint8
  resized-and-cropped pixels losslessly (the phone runs the crop stage of unit 0, the
  cloud its normalisation; :mod:`collabdnn.model.image_boundary`).

:data:`TENSOR_CODECS` and :data:`PHOTO_CODECS` are the candidates the profiler measures.
"""

from __future__ import annotations

__all__ = [
    "CROP_FORMATS",
    "PHOTO",
    "PHOTO_CODECS",
    "TENSOR_CODECS",
    "check_codec",
    "crop_format",
    "is_photo_codec",
    "parse_tensor_codec",
    "tensor_codec_name",
]

PHOTO = "photo"
CROP_FORMATS = ("png", "webp", "zstd")
PHOTO_CODECS = (PHOTO, *(f"crop:{fmt}" for fmt in CROP_FORMATS))
TENSOR_CODECS = ("raw", "zstd:1", "zstd:3", "zstd:1+shuffle")
_SHUFFLE = "+shuffle"


def tensor_codec_name(level: int, shuffle: bool = False) -> str:
    """The name of zstd ``level`` (0: ``raw``) with or without the shuffle filter."""
    if level == 0:
        return "raw"
    return f"zstd:{level}{_SHUFFLE if shuffle else ''}"


def parse_tensor_codec(name: str) -> tuple[int, bool]:
    """``(zstd level, shuffle)`` of a tensor codec name; ValueError for anything else."""
    if name == "raw":
        return 0, False
    body = name.removesuffix(_SHUFFLE)
    if not body.startswith("zstd:"):
        raise ValueError(f"unknown tensor codec {name!r}: expected raw, zstd:L or zstd:L+shuffle")
    try:
        level = int(body.removeprefix("zstd:"))
    except ValueError:
        raise ValueError(f"unknown tensor codec {name!r}: the zstd level is not a number") from None
    if level == 0 or not -7 <= level <= 22:
        raise ValueError(f"tensor codec {name!r}: the zstd level must be in -7..22, not 0")
    return level, body != name


def is_photo_codec(name: str) -> bool:
    """Whether ``name`` is a codec of the photo boundary (``photo`` or ``crop:*``)."""
    return name in PHOTO_CODECS


def crop_format(name: str) -> str | None:
    """The crop format of a ``crop:*`` codec, None for ``photo``; ValueError otherwise."""
    if name == PHOTO:
        return None
    if name not in PHOTO_CODECS:
        raise ValueError(f"unknown photo codec {name!r}: expected one of {', '.join(PHOTO_CODECS)}")
    return name.removeprefix("crop:")


def check_codec(name: str, boundary: int) -> None:
    """ValueError unless ``name`` is a codec boundary ``boundary`` can be sent with."""
    if boundary == 0:
        crop_format(name)
    else:
        parse_tensor_codec(name)
