"""First-hop bytes: each sample photo against its lossless uint8 crop in every format.

A cloud-only plan's first hop is boundary 0. It ships either the photo or, with a
``crop:*`` codec, the resized and centre-cropped uint8 pixels (the phone runs the crop
stage of preprocessing), losslessly as PNG, WebP or a zstd frame. For every sample
photo this measures each form's bytes, the phone's crop time and each format's encode
and decode time (interleaved rounds, so that contention hits every format alike), and
checks that the crop decodes to the very bytes it was made of and that normalising it
equals preprocessing the photo (``torch.equal``). Writes
benchmarks/results/first_hop.{json,md}.

    python -m benchmarks.bench_first_hop [--model alexnet] [--repeats 20]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from benchmarks.common import markdown_table, median, write_results
from collabdnn.cli.output import format_table
from collabdnn.crossing import CROP_FORMATS
from collabdnn.model.image_boundary import CropBatch, decode_crop, encode_crop
from collabdnn.model.split_model import load_model
from collabdnn.samples import sample_images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="alexnet")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = load_model(args.model, "seed:0")
    crop = model.preprocess.crop
    records, rows = [], []
    for path in sample_images():
        photo = path.read_bytes()
        pixels = model.preprocess.crop_pixels(photo)
        whole = model.run(0, 1, photo)
        timing: dict[str, list[float]] = {"crop": []}
        sizes = {}
        for fmt in CROP_FORMATS:
            data = encode_crop(pixels, fmt)
            assert np.array_equal(decode_crop(data, crop), pixels)
            assert torch.equal(model.run(0, 1, CropBatch((data,))), whole)
            sizes[fmt] = len(data)
            timing[f"{fmt}_encode"], timing[f"{fmt}_decode"] = [], []
        for _ in range(args.repeats):  # interleaved: each round times every step once
            begin = time.perf_counter()
            model.preprocess.crop_pixels(photo)
            timing["crop"].append((time.perf_counter() - begin) * 1e3)
            for fmt in CROP_FORMATS:
                begin = time.perf_counter()
                data = encode_crop(pixels, fmt)
                middle = time.perf_counter()
                decode_crop(data, crop)
                end = time.perf_counter()
                timing[f"{fmt}_encode"].append((middle - begin) * 1e3)
                timing[f"{fmt}_decode"].append((end - middle) * 1e3)
        ms = {name: median(values) for name, values in timing.items()}
        records.append(
            {
                "image": path.name,
                "photo_bytes": len(photo),
                "crop_raw_bytes": int(pixels.nbytes),
                "crop_bytes": sizes,
                "ms": ms,
                "bit_exact": True,
            }
        )
        rows.append(
            [
                path.name,
                f"{len(photo):,}",
                f"{pixels.nbytes:,}",
                *(
                    f"{sizes[fmt]:,} ({len(photo) / sizes[fmt]:.1f}x) / "
                    f"{ms[f'{fmt}_encode']:.1f} / {ms[f'{fmt}_decode']:.1f}"
                    for fmt in CROP_FORMATS
                ),
                f"{ms['crop']:.1f}",
            ]
        )
    headers = [
        "sample",
        "photo B",
        "uint8 crop B",
        *(f"crop:{fmt}" for fmt in CROP_FORMATS),
        "crop stage ms",
    ]
    table = (
        f"Each crop cell: bytes (photo / crop) / encode ms / decode ms; the crop stage is "
        f"decode + resize + crop of the photo ({args.model}, {crop}x{crop}, one thread, "
        f"median of {args.repeats} interleaved rounds on a shared 2-core VM). Every crop "
        "decodes to the same bytes and normalises to the same tensor as the photo "
        "(`torch.equal`).\n\n" + markdown_table(headers, rows)
    )
    write_results("first_hop", {"model": args.model, "records": records}, table)
    print(format_table(headers, rows))


if __name__ == "__main__":
    main()
