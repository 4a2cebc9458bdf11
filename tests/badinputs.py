"""Images and frames, good and hostile, made in memory for the refusal tests."""

from __future__ import annotations

import io
import struct
import zlib

import zstandard
from PIL import Image

from collabdnn.codec import _FIXED, _TAIL, _U64, CODEC_ZSTD, MAGIC, VERSION


def png(width: int, height: int, colour: tuple[int, int, int] = (30, 120, 200)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, "PNG")
    return buffer.getvalue()


def jpeg(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.effect_noise((width, height), 60).convert("RGB").save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def png_header_claiming(width: int, height: int) -> bytes:
    """A small PNG whose header claims ``width`` x ``height``, with almost no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(bytes(64)))
        + chunk(b"IEND", b"")
    )


def zstd_frame(shape: tuple[int, ...], payload: bytes, crc: int = 0) -> bytes:
    """A float32 tensor frame claiming ``shape``, whatever ``payload`` really holds."""
    raw_len = 4
    for dim in shape:
        raw_len *= dim
    header = _FIXED.pack(MAGIC, VERSION, CODEC_ZSTD, 1, len(shape))
    return header + b"".join(_U64.pack(d) for d in shape) + _TAIL.pack(raw_len, crc) + payload


def zstd_bomb(inflated: int, content_size: bool = True) -> bytes:
    """A few kilobytes of zstd that inflate to ``inflated`` zero bytes."""
    compressor = zstandard.ZstdCompressor(level=3, write_content_size=content_size)
    if content_size:
        return compressor.compress(bytes(inflated))
    chunks, block = [], bytes(1 << 20)
    stream = compressor.compressobj()
    for _ in range(inflated >> 20):
        chunks.append(stream.compress(block))
    chunks.append(stream.flush())
    return b"".join(chunks)


def zstd_bomb_lying(inflated: int, claimed: int) -> bytes:
    """zstd that inflates to ``inflated`` bytes while its own header claims ``claimed``.

    Made from a frame without a content size by setting the header's content-size flag
    (4 bytes) and inserting the lie after the window descriptor; the blocks are as
    compressed, so a decoder trusting the header would write far past its buffer.
    """
    honest = zstd_bomb(inflated, content_size=False)
    descriptor = honest[4]
    assert descriptor & 0b1110_0011 == 0, "expected no content size, window, no dictionary"
    return (
        honest[:4]
        + bytes([descriptor | (2 << 6)])
        + honest[5:6]
        + struct.pack("<I", claimed)
        + honest[6:]
    )
