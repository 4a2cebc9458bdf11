"""The tensor codec: lossless round trips, and every bad frame is one CodecError."""

from __future__ import annotations

import contextlib
import struct
import tracemalloc
import zlib

import pytest
import torch
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from collabdnn import codec
from collabdnn.codec import CodecConfig, CodecError, decode, encode, read_header

DTYPES = [
    torch.float32,
    torch.float16,
    torch.bfloat16,
    torch.int8,
    torch.uint8,
    torch.int64,
    torch.bool,
]
CONFIGS = [
    CodecConfig(level=0),
    CodecConfig(level=1),
    CodecConfig(level=3, shuffle=True),
    CodecConfig(level=-1, shuffle=True),
]


def _random_tensor(draw_bytes: bytes, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    numel = 1
    for dim in shape:
        numel *= dim
    itemsize = torch.empty((), dtype=dtype).element_size()
    data = (draw_bytes * (numel * itemsize // max(len(draw_bytes), 1) + 1))[: numel * itemsize]
    if numel == 0:
        return torch.empty(shape, dtype=dtype)
    raw = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    if dtype == torch.bool:
        raw = raw % 2
    return raw.view(dtype).reshape(shape).clone()


shapes = st.lists(st.integers(0, 6), min_size=0, max_size=4).map(tuple)


@settings(max_examples=200, deadline=None)
@given(
    data=st.binary(min_size=1, max_size=64),
    shape=shapes,
    dtype=st.sampled_from(DTYPES),
    config=st.sampled_from(CONFIGS),
)
def test_round_trip_is_bit_exact(data, shape, dtype, config):
    """Arbitrary bit patterns, NaN payloads and signed zeros included, come back unchanged."""
    tensor = _random_tensor(data, shape, dtype)
    out = decode(encode(tensor, config))
    assert out.dtype == tensor.dtype
    assert out.shape == tensor.shape
    # torch.equal treats NaN != NaN; compare the bits.
    if tensor.numel():
        assert torch.equal(out.reshape(-1).view(torch.uint8), tensor.reshape(-1).view(torch.uint8))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(), (0,), (2, 0, 3), (1, 64, 55, 55)])
def test_every_dtype_and_shape(dtype, shape):
    tensor = (torch.randn(shape) * 50).to(dtype)
    for config in CONFIGS:
        out = decode(encode(tensor, config))
        assert torch.equal(out, tensor)
        assert out.shape == tensor.shape and out.dtype == tensor.dtype


def test_non_contiguous_and_activation_data():
    tensor = torch.relu(torch.randn(1, 64, 55, 55)).transpose(2, 3)
    assert not tensor.is_contiguous()
    frame = encode(tensor, CodecConfig(level=1))
    assert torch.equal(decode(frame), tensor)
    assert len(frame) < tensor.numel() * 4  # ReLU zeros compress


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_garbage_raises_only_codec_error(garbage):
    with contextlib.suppress(CodecError):
        decode(garbage)


@settings(max_examples=300, deadline=None)
@given(position=st.integers(0, 10_000), value=st.integers(0, 255), config=st.sampled_from(CONFIGS))
def test_flipped_byte_raises_only_codec_error_or_decodes_equal(position, value, config):
    tensor = torch.randn(4, 8)
    frame = bytearray(encode(tensor, config))
    position %= len(frame)
    frame[position] = value
    try:
        out = decode(bytes(frame))
    except CodecError:
        return
    assert torch.equal(out, tensor)  # only a no-op change can decode


@pytest.mark.parametrize("config", [CodecConfig(level=0), CodecConfig(level=1)])
def test_every_header_byte_change_is_refused(config):
    """Exhaustive over the header: e.g. float32 -> int32 keeps the size but not the meaning."""
    tensor = torch.randn(4, 8)
    frame = encode(tensor, config)
    header_len = read_header(frame).header_len
    for position in range(header_len):
        for value in range(256):
            if value == frame[position]:
                continue
            changed = bytearray(frame)
            changed[position] = value
            with pytest.raises(CodecError):
                decode(bytes(changed))


@pytest.mark.parametrize("config", CONFIGS)
def test_every_truncation_is_refused(config):
    frame = encode(torch.randn(3, 5), config)
    for cut in range(len(frame)):
        with pytest.raises(CodecError):
            decode(frame[:cut])


def test_corrupted_payload_is_refused():
    frame = bytearray(encode(torch.randn(100), CodecConfig(level=0)))
    frame[-1] ^= 0xFF
    with pytest.raises(CodecError, match="CRC-32"):
        decode(bytes(frame))


def _header(shape, raw_len, codec_id=codec.CODEC_ZSTD, dtype_code=5, crc=0):
    head = struct.pack("<4sBBBB", codec.MAGIC, codec.VERSION, codec_id, dtype_code, len(shape))
    head += b"".join(struct.pack("<Q", d) for d in shape)
    return head + struct.pack("<QI", raw_len, crc)


@pytest.mark.parametrize("codec_id", [codec.CODEC_RAW, codec.CODEC_ZSTD])
def test_frame_claiming_10_gb_is_refused_before_allocating(codec_id, monkeypatch):
    """Refused from the header alone: no decompression, no buffer, no tensor."""
    claim = 10 * 1024**3
    frame = _header((claim,), claim, codec_id=codec_id) + b"\x00" * 16

    def must_not_run(*args, **kwargs):
        raise AssertionError("a refused frame reached decompression or allocation")

    monkeypatch.setattr(codec, "_decompress", must_not_run)
    monkeypatch.setattr(codec.torch, "frombuffer", must_not_run)
    tracemalloc.start()
    try:
        with pytest.raises(CodecError, match="more than the limit"):
            decode(frame)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024, f"refusing the frame allocated {peak} bytes"


def test_zstd_bomb_is_refused():
    """A tiny zstd payload that inflates to 1 GiB, behind a header that claims 100 bytes."""
    bomb = zstandard.ZstdCompressor(level=19).compress(b"\x00" * (64 * 1024 * 1024))
    assert len(bomb) < 10_000
    with pytest.raises(CodecError, match="zstd content size"):
        decode(_header((100,), 100) + bomb)
    # Honest header and honest zstd frame, but beyond the configured limit.
    with pytest.raises(CodecError, match="more than the limit"):
        decode(_header((64 * 1024 * 1024,), 64 * 1024 * 1024) + bomb, max_bytes=1024 * 1024)


def test_zstd_without_content_size_is_refused():
    raw = b"\x01" * 100
    payload = zstandard.ZstdCompressor(write_content_size=False).compress(raw)
    with pytest.raises(CodecError):
        decode(_header((100,), 100, crc=zlib.crc32(raw)) + payload)


def test_inconsistent_headers():
    with pytest.raises(CodecError, match="inconsistent frame"):
        decode(_header((10,), 11, codec_id=codec.CODEC_RAW) + b"\x00" * 11)
    with pytest.raises(CodecError, match="unknown dtype code"):
        decode(_header((1,), 1, dtype_code=99) + b"\x00")
    with pytest.raises(CodecError, match="unknown codec"):
        decode(_header((1,), 1, codec_id=9) + b"\x00")
    with pytest.raises(CodecError, match="bad magic"):
        decode(b"XXXX" + bytes(20))
    with pytest.raises(CodecError, match="dimensions"):
        decode(_header((1,) * 9, 1))
    with pytest.raises(CodecError, match="padded"):
        decode(encode(torch.ones(3), CodecConfig(level=0)) + b"\x00")


def test_header_reports_codec_and_shape():
    header = read_header(
        encode(torch.zeros(2, 3, dtype=torch.float16), CodecConfig(3, shuffle=True))
    )
    assert header.shape == (2, 3)
    assert header.dtype == torch.float16
    assert header.codec_name == "zstd+shuffle"
    assert header.raw_len == 12


def test_bad_config_and_dtype():
    with pytest.raises(ValueError, match="zstd level"):
        CodecConfig(level=40)
    with pytest.raises(CodecError, match="unsupported dtype"):
        encode(torch.zeros(2, dtype=torch.complex64))
