"""Latency-predictor benchmark: how well do per-kind regressions predict unseen units?

Profiles alexnet, resnet18 and mobilenet_v2 (weights seed:0) on this machine with one
torch thread on the sample photos, then predicts every unit with a predictor fitted
without it: leave-one-model-out (the honest case: planning a model never run here)
and leave-one-unit-out, for both row weightings. Writes
benchmarks/results/predictor.{json,md}. About 25 s on two cores.

    python -m benchmarks.bench_predictor [--repeats 10]
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import Any

import torch
from tqdm import tqdm

from benchmarks.common import write_results
from collabdnn.measure.profiler import profile_model
from collabdnn.model.split_model import load_model
from collabdnn.planning.predictor import WEIGHTINGS, holdout_predictions, summarise_errors
from collabdnn.planning.profiles import Profile
from collabdnn.samples import read_images, sample_images

MODELS = ("alexnet", "resnet18", "mobilenet_v2")


def measure(models: tuple[str, ...], repeats: int, warmup: int) -> list[Profile]:
    images = read_images(sample_images())
    profiles = []
    for name in tqdm(models, desc="models", unit="model"):
        model = load_model(name, "seed:0")
        profiles.append(profile_model(model, "mobile", images, repeats=repeats, warmup=warmup))
    return profiles


def evaluate(profiles: list[Profile]) -> dict[str, Any]:
    """Held-out error for every (leave-out, weighting), with the per-unit predictions."""
    results: dict[str, Any] = {}
    for by in ("model", "unit"):
        for weighting in WEIGHTINGS:
            predictions = holdout_predictions(profiles, by=by, weighting=weighting)
            results[f"{by}/{weighting}"] = {
                "by": by,
                "weighting": weighting,
                "errors": summarise_errors(predictions),
                "predictions": [asdict(p) for p in predictions],
            }
    return results


def table(results: dict[str, Any], profiles: list[Profile]) -> str:
    """Median / mean APE per kind, one column per (leave-out, weighting)."""
    keys = list(results)
    kinds = list(results[keys[0]]["errors"])
    lines = [
        "Median / mean absolute percentage error of held-out units "
        f"({', '.join(p.model for p in profiles)}; mobile side, cpu, one thread, "
        f"median of {profiles[0].units[0].latency_ms.repeats} runs per unit).",
        "",
        "| kind | units | " + " | ".join(f"leave-one-{k.replace('/', ', ')}" for k in keys) + " |",
        "|---|---" + "|---" * len(keys) + "|",
    ]
    for kind in kinds:
        first = results[keys[0]]["errors"][kind]
        cells = [
            f"{e['median_ape']:.0f} / {e['mean_ape']:.0f} %"
            for e in (results[k]["errors"][kind] for k in keys)
        ]
        lines.append(f"| {kind} | {first['units']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    profiles = measure(MODELS, args.repeats, args.warmup)
    results = evaluate(profiles)
    md = table(results, profiles)
    path = write_results(
        "predictor",
        {
            "models": list(MODELS),
            "repeats": args.repeats,
            "warmup": args.warmup,
            "images": profiles[0].host["images"],
            "holdout": results,
            "profiles": [p.to_dict() for p in profiles],
        },
        md,
    )
    print(md)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
