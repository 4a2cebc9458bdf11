"""Profile one side in its own process, timing only after the caller says "go".

Why not ``collabdnn profile`` itself: the mobile side's profile must run under the same
cgroup CPU quota as the mobile agent, but loading torch and the model under a quarter
of a CPU takes far longer than profiling does.  This process loads everything, prints
``READY``, waits for a line on stdin (the caller moves it into the cgroup meanwhile),
then calls the same :func:`collabdnn.measure.profiler.profile_model` as ``collabdnn profile``
and writes the profile JSON.

    python -m benchmarks.paper.profile_side --side mobile --model alexnet --threads 1 \\
        --images photo.jpg -o mobile.json
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.paper.profile_side")
    parser.add_argument("--side", choices=("mobile", "cloud"), required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--weights", default="seed:0")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--images", nargs="+", type=Path, required=True)
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args(argv)

    import torch

    from collabdnn.codec import CodecConfig
    from collabdnn.measure.profiler import profile_model
    from collabdnn.model.split_model import load_model
    from collabdnn.planning.profiles import save_profile
    from collabdnn.samples import read_images

    torch.set_num_threads(args.threads)
    model = load_model(args.model, args.weights, args.device)
    images = read_images(args.images)
    print("READY", flush=True)
    if not sys.stdin.readline():
        return 1  # the caller went away
    profile = profile_model(model, args.side, images, repeats=args.repeats,
                            warmup=args.warmup, codec=CodecConfig())  # fmt: skip
    save_profile(profile, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
