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
zstd "bomb", is refused cheaply; so is an empty tensor whose other dimensions are
giant (its shape, zero dimensions taken as 1, must fit ``max_bytes`` too). A zstd
payload must be exactly one complete zstd frame (checked from its block headers, also
when it holds 0 bytes), a bool tensor's bytes 0 or 1. Every failure is one
:class:`CodecError`. The payload is decompressed straight into the buffer the tensor is
then built on, so a decode holds one copy of the data. :func:`encode` takes any dense
tensor, whatever its strides.

The zstd contexts are made once per thread and reused (:func:`_compressor`,
:func:`_decompressor`); each frame is still compressed and checked on its own.

The byte-shuffle filter regroups the bytes of each element by significance (all
first bytes, then all second bytes, …). For float activations this puts the
slowly-varying exponent bytes together and helps zstd; it is lossless and cheap.
"""

from __future__ import annotations

import struct
import threading
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
# The numpy type of each dtype numpy has (all but bfloat16): frames of these are
# viewed through numpy, which costs less per call than torch.
_NUMPY_DTYPES: dict[torch.dtype, np.dtype] = {
    dtype: np.dtype(torch.empty(0, dtype=dtype).numpy().dtype)
    for dtype in _DTYPES.values()
    if dtype != torch.bfloat16
}
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


# zstd contexts are reused, one set per thread (a context is not thread-safe): making
# one per frame allocates and initialises its tables again every time. Each call resets
# its context first, so a frame never depends on the frame before it.
_CONTEXTS = threading.local()


def _compressor(level: int, threads: int) -> zstandard.ZstdCompressor:
    """This thread's compressor for ``level`` and ``threads``."""
    cache: dict[tuple[int, int], zstandard.ZstdCompressor] | None = getattr(
        _CONTEXTS, "compressors", None
    )
    if cache is None:
        cache = _CONTEXTS.compressors = {}
    compressor = cache.get((level, threads))
    if compressor is None:
        compressor = cache[(level, threads)] = zstandard.ZstdCompressor(
            level=level, write_content_size=True, threads=threads
        )
    return compressor


def _decompressor() -> zstandard.ZstdDecompressor:
    """This thread's decompressor (zstd's default window limit, as before reuse)."""
    decompressor: zstandard.ZstdDecompressor | None = getattr(_CONTEXTS, "decompressor", None)
    if decompressor is None:
        decompressor = _CONTEXTS.decompressor = zstandard.ZstdDecompressor()
    return decompressor


def _shuffle(raw: np.ndarray, itemsize: int) -> bytes | memoryview:
    if itemsize == 1 or not raw.size:
        return raw.data
    return raw.reshape(-1, itemsize).T.tobytes()


def _tensor_bytes(tensor: torch.Tensor) -> np.ndarray:
    """The tensor's elements in C order, as a flat uint8 array (a view when they already are).

    Any strided tensor is accepted: transposed, sliced, expanded (stride 0), a one-element
    view whose stride is not 1, negated or conjugated lazily.
    """
    if tensor.layout != torch.strided:
        raise CodecError(f"unsupported layout {tensor.layout}: only dense tensors are encoded")
    if (
        tensor.dtype in _NUMPY_DTYPES
        and tensor.device.type == "cpu"
        and tensor.is_contiguous()
        and not tensor.is_neg()
    ):
        # The common case (a unit's output): numpy's view of the same memory, in one
        # torch call instead of eight; every torch call costs several microseconds
        # more than numpy's, and tens of them on a hop whose caches went cold.
        array = tensor.detach().numpy()
        if array.flags.c_contiguous:
            return array.reshape(-1).view(np.uint8)
    flat = tensor.detach().to("cpu").resolve_conj().resolve_neg().contiguous().reshape(-1)
    if flat.numel() == 0:
        return np.empty(0, dtype=np.uint8)
    if flat.stride(0) != 1:
        # One element: "contiguous" whatever its stride, but view() wants stride 1.
        flat = flat.as_strided((flat.numel(),), (1,))
    return flat.view(torch.uint8).numpy()


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
    payload: bytes | memoryview
    if config.level == 0:
        codec, payload = CODEC_RAW, raw.data
    else:
        shuffle = config.shuffle and tensor.is_floating_point() and itemsize > 1
        codec = CODEC_ZSTD_SHUFFLE if shuffle else CODEC_ZSTD
        data = _shuffle(raw, itemsize) if shuffle else raw.data
        payload = _compressor(config.level, config.threads).compress(data)
    fields = [_FIXED.pack(MAGIC, VERSION, codec, code, tensor.dim())]
    fields += [_U64.pack(dim) for dim in tensor.shape]
    fields.append(_U64.pack(raw.nbytes))
    prefix = b"".join(fields)
    crc = zlib.crc32(raw.data, zlib.crc32(prefix))
    return b"".join([prefix, struct.pack("<I", crc), payload])


def _bytes_view(frame: bytes | bytearray | memoryview) -> memoryview:
    try:
        view = memoryview(frame)
        return view if view.format == "B" and view.ndim == 1 else view.cast("B")
    except (TypeError, ValueError) as exc:
        raise CodecError(
            f"not a tensor frame: {type(frame).__name__} is not a byte buffer"
        ) from exc


def read_header(
    frame: bytes | bytearray | memoryview, max_bytes: int = DEFAULT_MAX_BYTES
) -> FrameHeader:
    """Parse and check a frame's header; allocates nothing proportional to the claim."""
    view = _bytes_view(frame)
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
    itemsize = dtype.itemsize
    numel = 1
    extent = itemsize  # bytes the shape would describe with its zero dimensions taken as 1
    for dim in shape:
        numel *= dim
        extent *= max(dim, 1)
    if numel * itemsize != raw_len:
        raise CodecError(
            f"inconsistent frame: shape {list(shape)} of {dtype_name(dtype)} needs "
            f"{numel * itemsize} bytes but the header claims {raw_len}"
        )
    if raw_len > max_bytes:
        raise CodecError(
            f"frame claims {raw_len} bytes decoded, more than the limit of {max_bytes} bytes"
        )
    if extent > min(max_bytes, _MAX_EXTENT):
        # An empty tensor whose other dimensions are huge: torch cannot even describe it
        # (its strides overflow), and nothing real sends one.
        raise CodecError(
            f"frame claims shape {list(shape)}: with its empty dimensions taken as 1 that is "
            f"{extent} bytes, more than the limit of {min(max_bytes, _MAX_EXTENT)} bytes"
        )
    return FrameHeader(codec, dtype, shape, raw_len, crc, header_len)


def decode(
    frame: bytes | bytearray | memoryview, max_bytes: int = DEFAULT_MAX_BYTES
) -> torch.Tensor:
    """Decode one frame into a CPU tensor, or raise :class:`CodecError`.

    The payload is decompressed straight into the buffer the tensor is built on (and
    un-shuffled from a small chunk into it), so decoding holds one copy of the data.
    """
    header = read_header(frame, max_bytes)
    payload = _bytes_view(frame)[header.header_len :]
    out = np.empty(header.raw_len, dtype=np.uint8)  # the tensor's storage, filled once
    if header.codec == CODEC_RAW:
        if len(payload) != header.raw_len:
            raise CodecError(
                f"truncated or padded frame: payload is {len(payload)} bytes, "
                f"header claims {header.raw_len}"
            )
        out[:] = np.frombuffer(payload, dtype=np.uint8)
    else:
        shuffled = header.codec == CODEC_ZSTD_SHUFFLE
        _decompress(payload, out, header.dtype.itemsize if shuffled else 1)
    prefix = _bytes_view(frame)[: header.header_len - 4]
    if zlib.crc32(out.data, zlib.crc32(prefix)) != header.crc32:
        raise CodecError("corrupted frame: CRC-32 of the header and payload does not match")
    if header.dtype == torch.bool and out.size and int(out.max()) > 1:
        raise CodecError("corrupted frame: a bool tensor holds bytes other than 0 and 1")
    if header.raw_len == 0:
        return torch.empty(header.shape, dtype=header.dtype)
    np_dtype = _NUMPY_DTYPES.get(header.dtype)
    if np_dtype is None:  # bfloat16: numpy has no such type
        return torch.from_numpy(out).view(header.dtype).reshape(header.shape)
    return torch.from_numpy(out.view(np_dtype).reshape(header.shape))


_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_MAX_EXTENT = 2**62  # no shape, empty or not, beyond what torch's int64 strides hold
_CHUNK = 1 << 20  # bytes un-shuffled at a time


def _zstd_frame_length(payload: memoryview, raw_len: int, has_checksum: bool) -> int:
    """The length of the one zstd frame ``payload`` starts with, from its block headers.

    Checks that the frame is complete (its last block and checksum are there) without
    decompressing it. A frame of ``raw_len`` bytes from :func:`encode` has about one
    block per 128 KiB; one with far more blocks (thousands of empty ones, all legal) is
    refused rather than walked.
    """
    try:
        position = zstandard.frame_header_size(payload)
    except zstandard.ZstdError as exc:
        raise CodecError(f"corrupted frame: bad zstd header ({exc})") from exc
    max_blocks = raw_len // 4096 + 64
    for _ in range(max_blocks):
        if position + 3 > len(payload):
            raise CodecError("truncated zstd payload: a block header is missing")
        block = int.from_bytes(payload[position : position + 3], "little")
        last, kind, size = block & 1, (block >> 1) & 3, block >> 3
        if kind == 3:
            raise CodecError("corrupted zstd payload: reserved block type")
        position += 3 + (1 if kind == 1 else size)  # an RLE block holds one byte
        if last:
            return position + (4 if has_checksum else 0)
    raise CodecError(f"corrupted zstd payload: more than {max_blocks} blocks for {raw_len} bytes")


def _fill(reader: zstandard.ZstdDecompressionReader, target: memoryview) -> int:
    filled = 0
    while filled < len(target):
        count = reader.readinto(target[filled:])
        if not count:
            break
        filled += count
    return filled


def _decompress(payload: memoryview, out: np.ndarray, itemsize: int) -> None:
    """Decompress one zstd frame of exactly ``out.size`` bytes into ``out``.

    ``itemsize`` > 1: the frame holds the byte-shuffled data, un-shuffled on the way in
    through a chunk of at most 1 MiB. The zstd frame header's own content size is
    checked first (the decompressor would otherwise trust it), then the frame's block
    structure: exactly one complete frame, nothing after it, also for 0 bytes.
    """
    raw_len = out.size
    if bytes(payload[:4]) != _ZSTD_MAGIC:
        raise CodecError("corrupted frame: the payload is not a zstd frame")
    try:
        params = zstandard.get_frame_parameters(payload)
    except zstandard.ZstdError as exc:
        raise CodecError(f"corrupted frame: bad zstd header ({exc})") from exc
    if params.content_size != raw_len:
        raise CodecError(
            f"inconsistent frame: zstd content size {params.content_size} "
            f"differs from the header's {raw_len} bytes"
        )
    length = _zstd_frame_length(payload, raw_len, params.has_checksum)
    if length != len(payload):
        raise CodecError(
            f"{'truncated' if length > len(payload) else 'padded'} zstd payload: "
            f"{len(payload)} bytes, the zstd frame is {length}"
        )
    try:
        reader = _decompressor().stream_reader(payload, read_across_frames=False)
        got = _fill(reader, out.data) if itemsize == 1 else _fill_unshuffled(reader, out, itemsize)
        extra = reader.read(1)
    except zstandard.ZstdError as exc:
        raise CodecError(f"corrupted or truncated zstd payload ({exc})") from exc
    if got != raw_len or extra:
        raise CodecError(
            f"zstd payload gave {'more than ' if extra else ''}{got} bytes, header claims {raw_len}"
        )


def _fill_unshuffled(
    reader: zstandard.ZstdDecompressionReader, out: np.ndarray, itemsize: int
) -> int:
    """Read byte-shuffled data (all first bytes, then all second bytes, ...) into ``out``."""
    count = out.size // itemsize
    grid = out.reshape(count, itemsize)  # a view: element i's bytes are grid[i]
    chunk = np.empty(min(_CHUNK, out.size), dtype=np.uint8)
    position = 0
    while position < out.size:
        got = _fill(reader, chunk.data[: min(chunk.size, out.size - position)])
        if not got:
            break
        data = chunk[:got]
        while data.size:
            plane, index = divmod(position, count)
            take = min(count - index, data.size)
            grid[index : index + take, plane] = data[:take]
            data = data[take:]
            position += take
    return position
