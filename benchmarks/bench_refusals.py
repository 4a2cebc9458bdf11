"""Codec refusal cost: how long decoding takes to refuse hostile frames, and what it allocates.

Frames whose header claims 10 GB (raw and zstd), a zstd "bomb" (a few KB that inflate
to 64 MB) behind a header claiming 100 bytes, and the same bomb behind an honest header
but over a 1 MiB limit. Each must raise CodecError from its headers alone; the time to
refuse and the peak memory Python traced while refusing are reported. (The tests check
that each is refused before any decompression or allocation; this measures it.)
Writes benchmarks/results/refusals.{json,md}.

    python -m benchmarks.bench_refusals [--repeats 200]
"""

from __future__ import annotations

import argparse
import functools
import struct
import tracemalloc
from collections.abc import Callable

import zstandard

from benchmarks.common import markdown_table, median, time_ms, write_results
from collabdnn import codec
from collabdnn.cli.output import format_table
from collabdnn.codec import CodecError, decode

BOMB = 64 * 1024 * 1024
GIB = 1024**3


def _header(shape: tuple[int, ...], raw_len: int, codec_id: int = codec.CODEC_ZSTD) -> bytes:
    head = struct.pack("<4sBBBB", codec.MAGIC, codec.VERSION, codec_id, 5, len(shape))  # uint8
    head += b"".join(struct.pack("<Q", d) for d in shape)
    return head + struct.pack("<QI", raw_len, 0)


def cases() -> dict[str, Callable[[], object]]:
    bomb = zstandard.ZstdCompressor(level=19).compress(b"\x00" * BOMB)
    claim_raw = _header((10 * GIB,), 10 * GIB, codec.CODEC_RAW) + bytes(16)
    claim_zstd = _header((10 * GIB,), 10 * GIB) + bytes(16)
    lying = _header((100,), 100) + bomb
    over_limit = _header((BOMB,), BOMB) + bomb
    return {
        "raw frame claiming 10 GiB": lambda: decode(claim_raw),
        "zstd frame claiming 10 GiB": lambda: decode(claim_zstd),
        f"zstd bomb ({len(bomb):,} B -> 64 MiB), header claims 100 B": lambda: decode(lying),
        "zstd bomb, honest header, 1 MiB limit": lambda: decode(over_limit, max_bytes=1 << 20),
    }


def refuse(fn: Callable[[], object]) -> str:
    try:
        fn()
    except CodecError as exc:
        return str(exc)
    raise AssertionError("the frame was decoded, not refused")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    rows, records = [], []
    for name, fn in cases().items():
        message = refuse(fn)
        tracemalloc.start()
        refuse(fn)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        times = [ms * 1e3 for ms in time_ms(functools.partial(refuse, fn), args.repeats)]
        record = {"case": name, "message": message, "median_us": median(times),
                  "max_us": max(times), "peak_traced_bytes": peak}  # fmt: skip
        records.append(record)
        rows.append([name, f"{median(times):.1f}", f"{max(times):.1f}", f"{peak / 1024:.1f}"])
    headers = ["hostile frame", "median µs to refuse", "max µs", "peak traced KiB"]
    table = (
        f"Every frame raised CodecError; median and max of {args.repeats} refusals, "
        "peak memory traced by tracemalloc during one.\n\n" + markdown_table(headers, rows)
    )
    write_results("refusals", {"repeats": args.repeats, "records": records}, table)
    print(format_table(headers, rows))


if __name__ == "__main__":
    main()
