"""Decode memory benchmark: peak memory of decoding one frame, as a multiple of the output.

Decodes frames of a ReLU-like float32 activation (half zeros) with each codec setting,
by the current :func:`collabdnn.codec.decode` ("after": decompressed straight into the
tensor's buffer, un-shuffled through a 1 MiB chunk) and by the previous decoder
(up to commit a056601, "before", kept below: decompress to bytes, un-shuffle to new bytes,
copy into a bytearray for the tensor). Peak memory is measured two ways: tracemalloc's
peak (Python and numpy allocations; the frame exists before tracing starts) and the
growth of the process's resident high-water mark (``VmHWM``, reset through
``/proc/self/clear_refs`` before each decode). Writes
benchmarks/results/decode_memory.{json,md}.

    python -m benchmarks.bench_decode_memory [--mb 64 256] [--repeats 3]
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import functools
import gc
import tracemalloc
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import zstandard

from benchmarks.common import markdown_table, median, time_ms, write_results
from collabdnn.cli.output import format_table
from collabdnn.codec import (
    CODEC_RAW,
    CODEC_ZSTD_SHUFFLE,
    CodecConfig,
    CodecError,
    decode,
    encode,
    read_header,
)

CONFIGS = [CodecConfig(0), CodecConfig(1), CodecConfig(1, shuffle=True)]


def decode_before(frame: bytes, max_bytes: int = 2**40) -> torch.Tensor:
    """The decoder as it was up to commit a056601, for comparison."""
    header = read_header(frame, max_bytes)
    payload = memoryview(frame)[header.header_len :]
    if header.codec == CODEC_RAW:
        if len(payload) != header.raw_len:
            raise CodecError("truncated or padded frame")
        raw = bytes(payload)
    else:
        raw = zstandard.ZstdDecompressor().decompress(
            payload, max_output_size=header.raw_len, allow_extra_data=False
        )
        itemsize = header.dtype.itemsize
        if header.codec == CODEC_ZSTD_SHUFFLE and itemsize > 1 and raw:
            raw = np.frombuffer(raw, dtype=np.uint8).reshape(itemsize, -1).T.tobytes()
    prefix = memoryview(frame)[: header.header_len - 4]
    if zlib.crc32(raw, zlib.crc32(prefix)) != header.crc32:
        raise CodecError("corrupted frame")
    flat = torch.frombuffer(bytearray(raw), dtype=torch.uint8)
    return flat.view(header.dtype).reshape(header.shape)


def _fixed_mmap_threshold() -> None:
    """Have glibc map every buffer over 1 MiB afresh and unmap it when freed.

    Otherwise glibc raises its mmap threshold after the first big free and serves later
    buffers from memory already resident, and the high-water mark misses them.
    """
    name = ctypes.util.find_library("c")
    if name:
        ctypes.CDLL(name).mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _reset_high_water() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peaks(fn: Callable[[], torch.Tensor], out_bytes: int) -> tuple[float, float | None]:
    """(tracemalloc peak, resident high-water growth), each as a multiple of ``out_bytes``."""
    gc.collect()
    tracemalloc.start()
    try:
        result = fn()
        _, traced = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del result
    gc.collect()
    rss: float | None = None
    if _reset_high_water():
        before = _status_kb("VmRSS")
        result = fn()
        rss = (_status_kb("VmHWM") - before) * 1024 / out_bytes
        del result
        gc.collect()
    return traced / out_bytes, rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, nargs="+", default=[64, 256], help="output sizes")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    _fixed_mmap_threshold()
    rows, records = [], []
    for mb in args.mb:
        numel = mb * 2**20 // 4
        tensor = torch.relu(torch.randn(numel, generator=torch.Generator().manual_seed(0)))
        out_bytes = numel * 4
        for config in CONFIGS:
            frame = encode(tensor, config)
            name = read_header(frame).codec_name
            record: dict[str, object] = {
                "output_bytes": out_bytes,
                "frame_bytes": len(frame),
                "codec": name,
            }
            for label, fn in (("before", decode_before), ("after", decode)):
                assert torch.equal(fn(frame), tensor)
                traced, rss = peaks(functools.partial(fn, frame), out_bytes)
                ms = median(time_ms(functools.partial(fn, frame), args.repeats))
                record[label] = {"traced_peak_x": traced, "rss_peak_x": rss, "decode_ms": ms}
            records.append(record)
            before, after = record["before"], record["after"]
            assert isinstance(before, dict) and isinstance(after, dict)

            def cell(values: dict[str, float | None]) -> str:
                rss = values["rss_peak_x"]
                rss_text = "n/a" if rss is None else f"{rss:.2f}x"
                return f"{values['traced_peak_x']:.2f}x / {rss_text} / {values['decode_ms']:.0f} ms"

            rows.append([f"{mb} MiB", name, f"{len(frame):,}", cell(before), cell(after)])
        del tensor
        gc.collect()
    headers = ["output", "codec", "frame bytes", "before", "after"]
    table = (
        "Each cell: peak memory while decoding, as a multiple of the output tensor "
        "(tracemalloc / resident high-water growth), and the median decode time "
        f"(float32 ReLU-like data, one thread, median of {args.repeats}).\n\n"
        + markdown_table(headers, rows)
    )
    write_results("decode_memory", {"records": records}, table)
    print(format_table(headers, rows))


if __name__ == "__main__":
    main()
