"""The codec against hostile frames and odd tensors (issue 13, item 7).

Every malformed frame is one CodecError, whatever its header claims (empty tensors with
giant dimensions included); ``encode`` takes any strided tensor and stays bit-exact;
empty zstd payloads and bool bytes are validated; decoding holds one copy of the data.
"""

from __future__ import annotations

import struct
import tracemalloc
import zlib

import pytest
import torch
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from collabdnn import codec
from collabdnn.codec import CodecConfig, CodecError, decode, encode

DTYPES = [
    torch.float32,
    torch.float16,
    torch.bfloat16,
    torch.float64,
    torch.int8,
    torch.uint8,
    torch.int16,
    torch.int32,
    torch.int64,
    torch.bool,
]
CONFIGS = [
    CodecConfig(level=0),
    CodecConfig(level=1),
    CodecConfig(level=3, shuffle=True),
    CodecConfig(level=-1, shuffle=True),
]
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def frame(shape, raw_len, payload, *, codec_id=codec.CODEC_ZSTD, dtype_code=5, content=None):
    """A frame with an honest CRC over ``content`` (the decoded bytes; default: none)."""
    head = struct.pack("<4sBBBB", codec.MAGIC, codec.VERSION, codec_id, dtype_code, len(shape))
    head += b"".join(struct.pack("<Q", d) for d in shape)
    head += struct.pack("<Q", raw_len)
    crc = zlib.crc32(content or b"", zlib.crc32(head))
    return head + struct.pack("<I", crc) + payload


def zstd_frame(content_size: int, blocks: bytes, descriptor: int = 0x20) -> bytes:
    """A hand-made zstd frame: single segment, a one-byte content size, then ``blocks``."""
    return ZSTD_MAGIC + bytes([descriptor, content_size]) + blocks


def block(size: int, *, last: bool, kind: int = 0) -> bytes:
    """A block header (kind 0 raw, 1 RLE, 2 compressed, 3 reserved)."""
    return (int(last) | kind << 1 | size << 3).to_bytes(3, "little")


def bits(tensor: torch.Tensor) -> bytes:
    """The tensor's bytes in C order, through a fresh copy (never a view of odd strides)."""
    copy = torch.empty(tensor.shape, dtype=tensor.dtype).copy_(tensor)
    return copy.reshape(-1).view(torch.uint8).numpy().tobytes()


# ------------------------------------------------------------------ empty, giant shapes

GIANT_EMPTY_SHAPES = [
    (0, 2**63),
    (0, 2**64 - 1),
    (2**64 - 1, 0),
    (0, 2**40, 2**40),
    (0, 2**31, 2**31, 2**31),
    (3, 0, 2**33),
    (0,) + (2**64 - 1,) * 7,
]


@pytest.mark.parametrize("shape", GIANT_EMPTY_SHAPES)
@pytest.mark.parametrize("codec_id", [codec.CODEC_RAW, codec.CODEC_ZSTD, codec.CODEC_ZSTD_SHUFFLE])
@pytest.mark.parametrize("dtype_code", [1, 5, 7])
def test_empty_tensor_with_giant_dimensions_is_a_codec_error(shape, codec_id, dtype_code):
    """Well-formed (numel 0, 0 bytes, honest CRC), but no tensor of that shape can exist."""
    payload = b"" if codec_id == codec.CODEC_RAW else zstandard.compress(b"")
    with pytest.raises(CodecError, match="shape"):
        decode(frame(shape, 0, payload, codec_id=codec_id, dtype_code=dtype_code))


@pytest.mark.parametrize("shape", [(0,), (0, 1000), (5, 0, 7), (2, 3, 0)])
@pytest.mark.parametrize("config", CONFIGS)
def test_ordinary_empty_tensors_round_trip(shape, config):
    for dtype in DTYPES:
        out = decode(encode(torch.empty(shape, dtype=dtype), config))
        assert out.shape == shape and out.dtype == dtype


_dims = st.one_of(
    st.integers(0, 4),
    st.sampled_from([0, 1, 2**31, 2**32 + 1, 2**40, 2**62, 2**63, 2**64 - 1]),
)


@settings(max_examples=400, deadline=None)
@given(
    codec_id=st.integers(0, 3),
    dtype_code=st.integers(0, 11),
    shape=st.lists(_dims, max_size=9).map(tuple),
    claim=st.one_of(st.none(), st.integers(0, 2**64 - 1)),
    content=st.binary(max_size=64),
    compress=st.booleans(),
    junk=st.binary(max_size=8),
)
def test_any_header_with_an_honest_crc_gives_a_tensor_or_a_codec_error(
    codec_id, dtype_code, shape, claim, content, compress, junk
):
    """Headers that pass the CRC check reach the allocator: only CodecError may come out."""
    itemsize = codec._DTYPES[dtype_code].itemsize if dtype_code in codec._DTYPES else 1
    numel = 1
    for dim in shape:
        numel *= dim
    raw_len = numel * itemsize if claim is None else claim
    if raw_len >= 2**64:
        raw_len = claim or 0
    payload = zstandard.compress(content) if compress else content
    data = frame(
        shape, raw_len, payload + junk, codec_id=codec_id, dtype_code=dtype_code, content=content
    )
    try:
        out = decode(data)
    except CodecError:
        return
    assert tuple(out.shape) == shape
    assert out.dtype == codec._DTYPES[dtype_code]


# ------------------------------------------------------------------ empty zstd payloads

EMPTY_OK = zstandard.ZstdCompressor(write_content_size=True).compress(b"")

BAD_EMPTY_PAYLOADS = {
    "trailing junk": EMPTY_OK + b"junk",
    "a second frame": EMPTY_OK + EMPTY_OK,
    "truncated block header": EMPTY_OK[:-1],
    "no block at all": EMPTY_OK[:-3],
    "only the magic": ZSTD_MAGIC,
    "nothing": b"",
    "a raw block of data": zstd_frame(0, block(5, last=True) + b"hello"),
    "an RLE block of data": zstd_frame(0, block(1000, last=True, kind=1) + b"\x07"),
    "no last block": zstd_frame(0, block(0, last=False)),
    "a reserved block": zstd_frame(0, block(0, last=True, kind=3)),
    "a missing checksum": zstd_frame(0, block(0, last=True), descriptor=0x24),
    "a skippable frame": b"\x50\x2a\x4d\x18" + struct.pack("<I", 0),
    "not zstd": b"\x00" * 9,
    "garbage compressed block": zstd_frame(0, block(4, last=True, kind=2) + b"\xff" * 4),
}


def test_a_valid_empty_payload_decodes():
    assert decode(frame((0,), 0, EMPTY_OK)).shape == (0,)
    # Legal, if odd: an empty raw block before the last one.
    two_blocks = zstd_frame(0, block(0, last=False) + block(0, last=True))
    assert decode(frame((0, 3), 0, two_blocks)).shape == (0, 3)


@pytest.mark.parametrize("name", sorted(BAD_EMPTY_PAYLOADS))
@pytest.mark.parametrize("codec_id", [codec.CODEC_ZSTD, codec.CODEC_ZSTD_SHUFFLE])
def test_an_empty_tensor_payload_must_decode_to_exactly_nothing(name, codec_id):
    with pytest.raises(CodecError):
        decode(frame((0,), 0, BAD_EMPTY_PAYLOADS[name], codec_id=codec_id, dtype_code=1))


def test_empty_raw_payload_must_be_empty():
    assert decode(frame((0,), 0, b"", codec_id=codec.CODEC_RAW)).shape == (0,)
    with pytest.raises(CodecError, match="padded"):
        decode(frame((0,), 0, b"\x00", codec_id=codec.CODEC_RAW))


def test_data_after_the_zstd_frame_is_refused_for_full_tensors_too():
    content = bytes(range(100))
    good = zstandard.ZstdCompressor(write_content_size=True).compress(content)
    assert decode(frame((100,), 100, good, content=content)).shape == (100,)
    for tail in (b"\x00", EMPTY_OK, good):
        with pytest.raises(CodecError):
            decode(frame((100,), 100, good + tail, content=content))


def test_thousands_of_empty_blocks_are_refused_without_walking_them():
    """Legal zstd, but a frame from encode() has about one block per 128 KiB."""
    blocks = block(0, last=False) * 100_000 + block(8, last=True) + bytes(8)
    with pytest.raises(CodecError, match="blocks"):
        decode(frame((8,), 8, zstd_frame(8, blocks), content=bytes(8)))


def test_zstd_frames_with_a_checksum_decode():
    """Other encoders may add zstd's own checksum; it is read and checked."""
    content = bytes(range(256)) * 40
    payload = zstandard.ZstdCompressor(write_checksum=True).compress(content)
    assert decode(frame((len(content),), len(content), payload, content=content)).numel() == 10240
    broken = payload[:-1] + bytes([payload[-1] ^ 1])
    with pytest.raises(CodecError):
        decode(frame((len(content),), len(content), broken, content=content))


# ------------------------------------------------------------------ bool bytes


@pytest.mark.parametrize("codec_id", [codec.CODEC_RAW, codec.CODEC_ZSTD])
@pytest.mark.parametrize("byte", [2, 7, 255])
def test_bool_frames_hold_only_zeros_and_ones(codec_id, byte):
    content = bytes([0, 1, 1, byte, 0])
    payload = content if codec_id == codec.CODEC_RAW else zstandard.compress(content)
    with pytest.raises(CodecError, match="bool"):
        decode(frame((5,), 5, payload, codec_id=codec_id, dtype_code=7, content=content))
    good = bytes([0, 1, 1, 1, 0])
    payload = good if codec_id == codec.CODEC_RAW else zstandard.compress(good)
    out = decode(frame((5,), 5, payload, codec_id=codec_id, dtype_code=7, content=good))
    assert out.tolist() == [False, True, True, True, False]


# ------------------------------------------------------------------ any strided tensor


def test_one_element_with_a_stride_other_than_one():
    for dtype in DTYPES:
        base = (torch.arange(2) + 1).to(dtype)
        view = base[::2]
        assert view.stride() == (2,) and view.numel() == 1
        for config in CONFIGS:
            out = decode(encode(view, config))
            assert bits(out) == bits(view) and out.shape == view.shape


@pytest.mark.parametrize(
    "make",
    [
        lambda: torch.zeros(2)[::2],
        lambda: torch.arange(24.0).reshape(2, 3, 4)[:, 1:2, ::3],
        lambda: torch.arange(12.0).reshape(3, 4).T,
        lambda: torch.arange(5.0)[1:2].expand(3, 4),  # stride 0
        lambda: torch.randn(4, 5)[:, 2],
        lambda: torch.randn(2, 3, 4).permute(2, 0, 1)[::2],
        lambda: torch.randn(3, 3).as_strided((2, 2), (1, 1)),  # overlapping elements
        lambda: torch.randn(4, 4, requires_grad=True) * 2,
        lambda: torch.randn(3)._neg_view(),
        lambda: torch.randn(8).as_strided((1, 1, 1), (7, 5, 3), 2),
    ],
)
def test_strided_views_are_encoded_bit_exact(make):
    tensor = make()
    for config in CONFIGS:
        out = decode(encode(tensor, config))
        assert out.shape == tensor.shape and bits(out) == bits(tensor.detach())


@settings(max_examples=200, deadline=None)
@given(
    dtype=st.sampled_from(DTYPES),
    sizes=st.lists(st.integers(0, 4), max_size=4),
    strides=st.lists(st.integers(0, 7), min_size=4, max_size=4),
    offset=st.integers(0, 5),
    config=st.sampled_from(CONFIGS),
    seed=st.integers(0, 2**16),
)
def test_any_strided_view_round_trips_bit_exact(dtype, sizes, strides, offset, config, seed):
    generator = torch.Generator().manual_seed(seed)
    base = torch.randint(0, 256, (800,), dtype=torch.uint8, generator=generator)
    if dtype == torch.bool:
        base %= 2
    base = base.view(dtype)
    view = base.as_strided(sizes, strides[: len(sizes)], offset)
    out = decode(encode(view, config))
    assert out.shape == view.shape and out.dtype == dtype
    assert bits(out) == bits(view)


def test_sparse_tensors_are_refused_as_codec_errors():
    with pytest.raises(CodecError, match="layout"):
        encode(torch.eye(3).to_sparse())


def test_frames_in_any_buffer_decode():
    tensor = torch.randn(3, 4)
    data = encode(tensor, CodecConfig(level=1))
    for buffer in (data, bytearray(data), memoryview(data), memoryview(bytearray(data))):
        assert torch.equal(decode(buffer), tensor)
    with pytest.raises(CodecError):
        decode(12345)  # type: ignore[arg-type]


# ------------------------------------------------------------------ one buffer


@pytest.mark.parametrize("config", CONFIGS)
def test_decoding_holds_one_copy_of_the_data(config):
    """Peak memory while decoding is about the output alone, not twice it.

    The buffer the tensor is built on is allocated by numpy, which tracemalloc sees; the
    frame exists before tracing starts. A loose bound: 1.25x the output.
    """
    tensor = torch.relu(torch.randn(2_000_000, generator=torch.Generator().manual_seed(0)))
    data = encode(tensor, config)
    tracemalloc.start()
    try:
        out = decode(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert torch.equal(out, tensor)
    assert peak < 1.25 * tensor.numel() * 4, f"decoding peaked at {peak / 8e6:.2f}x the output"
    out.add_(1)  # a writable tensor that owns its buffer


def test_reused_contexts_stay_bit_exact_after_failures_and_across_threads() -> None:
    """The zstd contexts are reused per thread: a frame refused half-way (a truncated,
    a corrupted payload) leaves nothing behind that changes the next decode, levels and
    the shuffle filter interleave freely, and threads do not share a context."""
    from concurrent.futures import ThreadPoolExecutor

    tensors = [torch.relu(torch.randn(2, 64, 27, 27)), torch.randint(0, 9, (3, 1000))]
    good = encode(tensors[0], CodecConfig(level=3, shuffle=True))
    truncated = good[: len(good) // 2]
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0xFF
    for bad in (truncated, bytes(flipped)):
        with pytest.raises(CodecError):
            decode(bad)
        assert torch.equal(decode(good), tensors[0])

    def round_trips(seed: int) -> bool:
        ok = True
        for config in CONFIGS * 3:
            for tensor in tensors:
                ok &= torch.equal(decode(encode(tensor, config)), tensor)
        return ok

    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(round_trips, range(8)))
    # The same bytes as a fresh context gives (the frame does not depend on the one before).
    fresh = zstandard.ZstdCompressor(level=3, write_content_size=True)
    header_len = codec.read_header(good).header_len
    shuffled = codec._shuffle(codec._tensor_bytes(tensors[0]), 4)
    assert good[header_len:] == fresh.compress(shuffled)
