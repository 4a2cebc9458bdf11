"""Codec benchmark: compression ratio and throughput of every AlexNet unit's output.

Runs torchvision AlexNet on a sample photo, then encodes and decodes each unit's output
with zstd levels 1 and 3, with and without the byte-shuffle filter. Throughput is over
the raw (uncompressed) bytes. Writes benchmarks/results/codec.{json,md}.

    python -m benchmarks.bench_codec [--weights seed:0] [--repeats 20]
"""

from __future__ import annotations

import argparse
import functools
from pathlib import Path

import torch
from tqdm import tqdm

from benchmarks.common import markdown_table, median, time_ms, write_results
from collabdnn.cli.output import format_table
from collabdnn.codec import CodecConfig, decode, encode
from collabdnn.model.split_model import load_model

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "chelsea.png"
CONFIGS = [
    CodecConfig(1),
    CodecConfig(1, shuffle=True),
    CodecConfig(3),
    CodecConfig(3, shuffle=True),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="alexnet")
    parser.add_argument("--weights", default="seed:0")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = load_model(args.model, args.weights)
    x: object = SAMPLE.read_bytes()
    outputs = []
    for unit in model.units:
        x = model.run(unit.index, unit.index + 1, x)
        outputs.append((unit, x))
    rows, records = [], []
    for unit, tensor in tqdm(outputs, desc="codec", unit="unit"):
        raw = unit.output_bytes
        cells = [unit.name, f"{raw:,}"]
        for config in CONFIGS:
            frame = encode(tensor, config)
            assert torch.equal(decode(frame), tensor)
            enc = median(time_ms(functools.partial(encode, tensor, config), args.repeats))
            dec = median(time_ms(functools.partial(decode, frame), args.repeats))
            record = {
                "unit": unit.name,
                "raw_bytes": raw,
                "level": config.level,
                "shuffle": config.shuffle,
                "frame_bytes": len(frame),
                "ratio": raw / len(frame),
                "encode_mb_s": raw / enc / 1e3,
                "decode_mb_s": raw / dec / 1e3,
                "encode_ms": enc,
                "decode_ms": dec,
            }
            records.append(record)
            cells.append(
                f"{record['ratio']:.2f} / {record['encode_mb_s']:.0f} / {record['decode_mb_s']:.0f}"
            )
        rows.append(cells)
    headers = ["unit", "raw bytes"] + [
        f"zstd-{c.level}{'+shuffle' if c.shuffle else ''}" for c in CONFIGS
    ]
    table = (
        f"Each cell: compression ratio / encode MB/s / decode MB/s ({args.model}, "
        f"weights {args.weights}, one thread, median of {args.repeats}).\n\n"
        + markdown_table(headers, rows)
    )
    write_results(
        "codec", {"model": args.model, "weights": args.weights, "records": records}, table
    )
    print(format_table(headers, rows))


if __name__ == "__main__":
    main()
