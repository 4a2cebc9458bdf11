"""The codec of each crossing, chosen by the planner: what it picks on each link.

Profiles AlexNet on this machine as both sides (every codec option measured on the
real activations of the sample photos; the phone planned ``--slowdown`` times slower,
as the scheduler's ``--mobile-slowdown`` does), then plans for a loopback-fast link and
the 3G/4G/Wi-Fi presets three ways: choosing the codec per crossing, with the profile's
one codec everywhere (zstd level 1, the photo for boundary 0: what plans did before),
and with raw frames everywhere. Predicted latencies, from the same profiles. Writes
benchmarks/results/codec_choice.{json,md}.

    python -m benchmarks.bench_codec_choice [--repeats 5] [--slowdown 4]
"""

from __future__ import annotations

import argparse
import dataclasses

import torch

from benchmarks.common import markdown_table, write_results
from collabdnn.cli.output import format_table
from collabdnn.measure.profiler import profile_model
from collabdnn.model.split_model import load_model
from collabdnn.planning.energy import power_model
from collabdnn.planning.link import LINK_PRESETS, Link
from collabdnn.planning.planner import plan
from collabdnn.planning.profiles import (
    Boundary,
    PlanInput,
    plan_input_from_profiles,
    slower_profile,
)
from collabdnn.samples import read_images, sample_images

LINKS = {"loopback": Link(1000.0, 1000.0, 0.1, "wifi"), **LINK_PRESETS}


def only(inp: PlanInput, name: str | None) -> PlanInput:
    """``inp`` with one codec per tensor boundary: ``name``'s, or the profile's own
    (None); boundary 0 keeps only the photo."""

    def keep(index: int, boundary: Boundary) -> Boundary:
        if index == 0 or name is None:
            return dataclasses.replace(boundary, alternatives=())
        option = next(o for o in boundary.options() if o.name == name)
        return dataclasses.replace(
            boundary,
            bytes=option.bytes,
            mobile_encode_ms=option.mobile_encode_ms,
            mobile_decode_ms=option.mobile_decode_ms,
            cloud_encode_ms=option.cloud_encode_ms,
            cloud_decode_ms=option.cloud_decode_ms,
            codec=name,
            alternatives=(),
        )

    return PlanInput(inp.units, tuple(keep(i, b) for i, b in enumerate(inp.boundaries)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="alexnet")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--slowdown", type=float, default=4.0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = load_model(args.model, "seed:0")
    images = read_images(sample_images())
    mobile = profile_model(model, "mobile", images, repeats=args.repeats, progress=True)
    cloud = profile_model(model, "cloud", images, repeats=args.repeats, progress=True)
    inp = plan_input_from_profiles(slower_profile(mobile, args.slowdown), cloud)
    records, rows = [], []
    for name, link in LINKS.items():
        power = power_model(link.network)
        chosen = plan(inp, link, power)
        fixed = plan(only(inp, None), link, power)
        raw = plan(only(inp, "raw"), link, power)
        best = chosen.improvement_pct()
        codecs = chosen.codecs
        tensor = sorted({c for b, c in codecs.items() if b > 0}) or ["-"]
        record = {
            "link": name,
            "up_mbps": link.up_mbps,
            "rtt_ms": link.rtt_ms,
            "placement": chosen.spec,
            "codecs": {str(b): c for b, c in codecs.items()},
            "chosen_ms": chosen.latency_ms,
            "profile_codec_ms": fixed.latency_ms,
            "profile_codec_placement": fixed.spec,
            "raw_ms": raw.latency_ms,
            "best_single_platform": best["vs"],
            "gain_over_best_single_pct": best["latency"],
        }
        records.append(record)
        rows.append(
            [
                f"{name} ({link.up_mbps:g} Mbit/s up, RTT {link.rtt_ms:g} ms)",
                chosen.spec,
                codecs.get(0, "-"),
                ", ".join(tensor),
                f"{chosen.latency_ms:.1f}",
                f"{fixed.latency_ms:.1f} ({fixed.spec})",
                f"{raw.latency_ms:.1f}",
                f"{best['latency']:.0f}% vs {best['vs'].replace('_', ' ')}",
            ]
        )
    headers = [
        "link",
        "placement",
        "photo as",
        "tensor codecs",
        "chosen ms",
        "zstd:1 + photo ms",
        "raw ms",
        "gain over best single platform",
    ]
    table = (
        f"Predicted latency of {args.model} with the codec of each crossing chosen by the "
        f"planner, against the profile's one codec (zstd level 1, the photo as it is) and "
        f"raw frames everywhere (each planned for its own codecs; phone = this machine "
        f"{args.slowdown:g}x slower, cloud = this machine; profiles of the "
        f"{len(images)} samples, {args.repeats} repeats, on a shared 2-core VM).\n\n"
        + markdown_table(headers, rows)
    )
    write_results(
        "codec_choice",
        {"model": args.model, "slowdown": args.slowdown, "records": records},
        table,
    )
    print(format_table(headers, rows))


if __name__ == "__main__":
    main()
