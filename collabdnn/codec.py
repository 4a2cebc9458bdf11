"""Lossless tensor codec: tensor <-> self-describing bytes ("frames").

Activations cross the link as frames. A frame is a fixed header followed by the
payload::

    offset size  field
    0      4     magic b"CDNF"
    4      1     format version (1)
    5      1     codec: 0 raw, 1 zstd, 2 zstd after a byte-shuffle filter
    6      1     dtype code (see ``_DTYPES``)
    7      1     ndim (0..8)
    8      8*nd  shape, little-endian uint64 each
    ..     8     uncompressed payload length in bytes (must equal numel * itemsize)
    ..     4     CRC-32 of the header fields before it and the uncompressed payload
    ..     ...   payload (raw bytes, or one zstd frame)

Decoding validates the header and compares the claimed size with ``max_bytes``
*before* allocating or decompressing anything, so a frame that claims 10 GB, or a
zstd "bomb", is refused cheaply. Every failure is one :class:`CodecError`.

The byte-shuffle filter regroups the bytes of each element by significance (all
first bytes, then all second bytes, …). For float activations this puts the
slowly-varying exponent bytes together and helps zstd; it is lossless and cheap.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np
import torch
import zstandard

from collabdnn.errors import CodecError

MAGIC = b"CDNF"
VERSION = 1
MAX_NDIM = 8
DEFAULT_MAX_BYTES = 512 * 1024 * 1024  # largest decoded payload accepted by default

CODEC_RAW = 0
CODEC_ZSTD = 1
CODEC_ZSTD_SHUFFLE = 2
_CODEC_NAMES = {CODEC_RAW: "raw", CODEC_ZSTD: "zstd", CODEC_ZSTD_SHUFFLE: "zstd+shuffle"}

# dtype code -> torch dtype. Codes are part of the wire format: never renumber.
_DTYPES: dict[int, torch.dtype] = {
    1: torch.float32,
    2: torch.float16,
    3: torch.bfloat16,
    4: torch.int8,
    5: torch.uint8,
    6: torch.int64,
    7: torch.bool,
    8: torch.float64,
    9: torch.int32,
    10: torch.int16,
}
_DTYPE_CODES = {dtype: code for code, dtype in _DTYPES.items()}
_FIXED = struct.Struct("<4sBBBB")
_U64 = struct.Struct("<Q")
_TAIL = struct.Struct("<QI")


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.float32`` -> ``"float32"``: the name used in protos, JSON and messages."""
    return str(dtype).removeprefix("torch.")


@dataclass(frozen=True)
class CodecConfig:
    """How to encode: zstd ``level`` (0 = store raw), ``shuffle`` for float data."""

    level: int = 1
    shuffle: bool = False
    threads: int = 0  # zstd worker threads; 0 = compress on the calling thread

    def __post_init__(self) -> None:
        if not -7 <= self.level <= 22:
            raise ValueError(f"zstd level must be in -7..22 (0 = no compression), got {self.level}")


@dataclass(frozen=True)
class FrameHeader:
    """What a frame says about itself, read without touching the payload."""

    codec: int
    dtype: torch.dtype
    shape: tuple[int, ...]
    raw_len: int
    crc32: int
    header_len: int

    @property
    def codec_name(self) -> str:
        return _CODEC_NAMES[self.codec]


def _shuffle(raw: bytes, itemsize: int) -> bytes:
    if itemsize == 1 or not raw:
        return raw
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, itemsize).T.tobytes()


def _unshuffle(data: bytes, itemsize: int) -> bytes:
    if itemsize == 1 or not data:
        return data
    return np.frombuffer(data, dtype=np.uint8).reshape(itemsize, -1).T.tobytes()


def _tensor_bytes(tensor: torch.Tensor) -> bytes:
    flat = tensor.detach().to("cpu").contiguous().reshape(-1)
    if flat.numel() == 0:
        return b""
    return flat.view(torch.uint8).numpy().tobytes()


def encode(tensor: torch.Tensor, config: CodecConfig | None = None) -> bytes:
    """Encode ``tensor`` as one frame. Lossless: :func:`decode` gives it back bit for bit."""
    config = config or CodecConfig()
    code = _DTYPE_CODES.get(tensor.dtype)
    if code is None:
        raise CodecError(f"unsupported dtype {dtype_name(tensor.dtype)}")
    if tensor.dim() > MAX_NDIM:
        raise CodecError(f"tensor has {tensor.dim()} dimensions; at most {MAX_NDIM} are supported")
    raw = _tensor_bytes(tensor)
    itemsize = tensor.element_size()
    if config.level == 0:
        codec, payload = CODEC_RAW, raw
    else:
        shuffle = config.shuffle and tensor.is_floating_point() and itemsize > 1
        codec = CODEC_ZSTD_SHUFFLE if shuffle else CODEC_ZSTD
        data = _shuffle(raw, itemsize) if shuffle else raw
        compressor = zstandard.ZstdCompressor(
            level=config.level, write_content_size=True, threads=config.threads
        )
        payload = compressor.compress(data)
    fields = [_FIXED.pack(MAGIC, VERSION, codec, code, tensor.dim())]
    fields += [_U64.pack(dim) for dim in tensor.shape]
    fields.append(_U64.pack(len(raw)))
    prefix = b"".join(fields)
    crc = zlib.crc32(raw, zlib.crc32(prefix))
    return prefix + struct.pack("<I", crc) + payload


def read_header(frame: bytes | memoryview, max_bytes: int = DEFAULT_MAX_BYTES) -> FrameHeader:
    """Parse and check a frame's header; allocates nothing proportional to the claim."""
    view = memoryview(frame)
    if len(view) < _FIXED.size:
        raise CodecError(f"truncated frame: {len(view)} bytes is shorter than the header")
    magic, version, codec, code, ndim = _FIXED.unpack_from(view, 0)
    if magic != MAGIC:
        raise CodecError("not a tensor frame (bad magic bytes)")
    if version != VERSION:
        raise CodecError(f"unsupported frame version {version} (this build reads {VERSION})")
    if codec not in _CODEC_NAMES:
        raise CodecError(f"unknown codec id {codec}")
    dtype = _DTYPES.get(code)
    if dtype is None:
        raise CodecError(f"unknown dtype code {code}")
    if ndim > MAX_NDIM:
        raise CodecError(f"frame claims {ndim} dimensions; at most {MAX_NDIM} are supported")
    header_len = _FIXED.size + 8 * ndim + _TAIL.size
    if len(view) < header_len:
        raise CodecError(f"truncated frame: {len(view)} bytes, header needs {header_len}")
    shape = tuple(_U64.unpack_from(view, _FIXED.size + 8 * i)[0] for i in range(ndim))
    raw_len, crc = _TAIL.unpack_from(view, _FIXED.size + 8 * ndim)
    itemsize = torch.empty((), dtype=dtype).element_size()
    numel = 1
    for dim in shape:
        numel *= dim
    if numel * itemsize != raw_len:
        raise CodecError(
            f"inconsistent frame: shape {list(shape)} of {dtype_name(dtype)} needs "
            f"{numel * itemsize} bytes but the header claims {raw_len}"
        )
    if raw_len > max_bytes:
        raise CodecError(
            f"frame claims {raw_len} bytes decoded, more than the limit of {max_bytes} bytes"
        )
    return FrameHeader(codec, dtype, shape, raw_len, crc, header_len)


def decode(frame: bytes | memoryview, max_bytes: int = DEFAULT_MAX_BYTES) -> torch.Tensor:
    """Decode one frame into a CPU tensor, or raise :class:`CodecError`."""
    header = read_header(frame, max_bytes)
    payload = memoryview(frame)[header.header_len :]
    if header.codec == CODEC_RAW:
        if len(payload) != header.raw_len:
            raise CodecError(
                f"truncated or padded frame: payload is {len(payload)} bytes, "
                f"header claims {header.raw_len}"
            )
        raw = bytes(payload)
    else:
        raw = _decompress(payload, header.raw_len)
        if header.codec == CODEC_ZSTD_SHUFFLE:
            raw = _unshuffle(raw, header.dtype.itemsize)
    prefix = memoryview(frame)[: header.header_len - 4]
    if zlib.crc32(raw, zlib.crc32(prefix)) != header.crc32:
        raise CodecError("corrupted frame: CRC-32 of the header and payload does not match")
    if header.raw_len == 0:
        return torch.empty(header.shape, dtype=header.dtype)
    flat = torch.frombuffer(bytearray(raw), dtype=torch.uint8)
    return flat.view(header.dtype).reshape(header.shape)


def _decompress(payload: memoryview, raw_len: int) -> bytes:
    """Decompress one zstd frame whose content size must be exactly ``raw_len``.

    The zstd frame header's own content size is checked first: the decompressor would
    otherwise trust it and allocate whatever it claims.
    """
    try:
        params = zstandard.get_frame_parameters(payload)
    except zstandard.ZstdError as exc:
        raise CodecError(f"corrupted frame: bad zstd header ({exc})") from exc
    if params.content_size != raw_len:
        raise CodecError(
            f"inconsistent frame: zstd content size {params.content_size} "
            f"differs from the header's {raw_len} bytes"
        )
    try:
        raw = zstandard.ZstdDecompressor().decompress(
            payload, max_output_size=raw_len, allow_extra_data=False
        )
    except zstandard.ZstdError as exc:
        raise CodecError(f"corrupted or truncated zstd payload ({exc})") from exc
    if len(raw) != raw_len:
        raise CodecError(f"zstd payload gave {len(raw)} bytes, header claims {raw_len}")
    return raw
