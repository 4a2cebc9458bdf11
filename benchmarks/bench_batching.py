"""Dynamic batching: per-image time and bit-exactness by unit range and batch size.

AlexNet (seed:0 weights, one torch thread) on the sample photos' real activations:
for each unit range the cloud could be asked for, and batch sizes 1, 2, 4 and 8, the
median time per image over interleaved rounds (every size once per round, so that
contention from other work on the machine hits them alike), the throughput gain per
image against batch 1, and whether every row of the batched output is bit for bit the
batch-1 output (``torch.equal``) and, if not, the largest difference. This is what
``collabdnn cloud --batch-max`` decides from (cloud_server.batching). Writes
benchmarks/results/batching.{json,md}.

    python -m benchmarks.bench_batching [--rounds 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

from benchmarks.common import markdown_table, median, write_results

RANGES = {"conv1..pool3 [1, 9)": (1, 9), "fc1..fc3 [9, 12)": (9, 12), "all [1, 12)": (1, 12)}
SIZES = (1, 2, 4, 8)


def main() -> int:
    import torch

    from collabdnn.model.split_model import load_model
    from collabdnn.samples import read_images, sample_images

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model("alexnet", "seed:0")
    images = read_images(sample_images())
    singles = [model.run(0, 1, [image]) for image in images]
    rows, records = [], []
    for label, (start, end) in RANGES.items():
        inputs = [model.run(1, start, x) if start > 1 else x for x in singles]
        alone = [model.run(start, end, x) for x in inputs]
        times: dict[int, list[float]] = {b: [] for b in SIZES}
        exact: dict[int, tuple[bool, float]] = {}
        batches = {b: torch.cat([inputs[i % len(inputs)] for i in range(b)]) for b in SIZES}
        for b in SIZES:
            out = model.run(start, end, batches[b])  # warm-up, and the exactness check
            diffs = [(out[i : i + 1] - alone[i % len(alone)]).abs().max().item() for i in range(b)]
            same = all(torch.equal(out[i : i + 1], alone[i % len(alone)]) for i in range(b))
            exact[b] = (same, max(diffs))
        for _ in range(args.rounds):
            for b in SIZES:
                tick = time.perf_counter()
                model.run(start, end, batches[b])
                times[b].append((time.perf_counter() - tick) * 1e3 / b)
        base = median(times[1])
        for b in SIZES:
            per = median(times[b])
            same, diff = exact[b]
            records.append(
                dict(range=[start, end], label=label, batch=b, ms_per_image=times[b],
                     median_ms_per_image=per, gain=base / per, bit_exact=same, max_abs_diff=diff)
            )  # fmt: skip
            rows.append([label, str(b), f"{per:.2f}", f"{base / per:.2f}x",
                         "yes" if same else f"no ({diff:.1e})"])  # fmt: skip
    headers = ["unit range", "batch", "ms per image", "throughput per image vs batch 1",
               "bit-exact to batch 1"]  # fmt: skip
    table = (
        f"AlexNet, seed:0, {args.threads} torch thread(s), median of {args.rounds} interleaved "
        "rounds on a 2-core machine shared with other work (ratios matter, not absolute "
        "times).\n\n" + markdown_table(headers, rows)
    )
    write_results("batching", {"threads": args.threads, "rounds": args.rounds,
                               "records": records}, table)  # fmt: skip
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
