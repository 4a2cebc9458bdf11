"""``collabdnn train``: train the agent's model on an ImageFolder, split with the cloud.

A thin client (no torch): it reads the folder (skipping and counting unreadable
images), starts a run on the agent, sends one batch per step and prints each step's
loss, time and bytes up/down; a progress bar goes to stderr. ``--json`` prints
``{"steps": [{"step", "loss", "ms", "bytes_up", "bytes_down"}], "weights_hash": ...}``
and more keys (docs/cli.md#train).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

from collabdnn.cli._service_args import (
    fraction,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
)
from collabdnn.placement import Placement
from collabdnn.training.spec import Resume
from collabdnn.transport.security import (
    add_security_arguments,
    config_from_args,
    describe_failure,
)

DEFAULT_AGENT = "127.0.0.1:50053"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--agent",
        default=DEFAULT_AGENT,
        metavar="HOST:PORT",
        help=f"the mobile agent (default: {DEFAULT_AGENT})",
    )
    parser.add_argument(
        "--data",
        required=True,
        type=Path,
        metavar="DIR",
        help="an ImageFolder: one subfolder per class, classes numbered in name order",
    )
    parser.add_argument("--steps", type=positive_int, default=10, help="steps (default: 10)")
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=8,
        help="images per step, at most the services' --max-batch (default: 8)",
    )
    parser.add_argument(
        "--lr", type=positive_float, default=0.01, help="learning rate (default: 0.01)"
    )
    parser.add_argument(
        "--optimizer", choices=("sgd", "adam"), default="sgd", help="(default: sgd)"
    )
    parser.add_argument(
        "--momentum", type=fraction, default=0.9, help="SGD momentum (default: 0.9)"
    )
    parser.add_argument(
        "--weight-decay",
        type=non_negative_float,
        default=5e-4,
        help="L2 weight decay (default: 5e-4)",
    )
    parser.add_argument(
        "--placement",
        metavar="SPEC",
        help="mobile, cloud, or one letter M/C per unit (default: the agent's training "
        "plan for --batch-size, else its current plan)",
    )
    parser.add_argument(
        "--seed",
        type=non_negative_int,
        default=0,
        help="seeds the batch order and dropout (default: 0)",
    )
    parser.add_argument(
        "--checkpoint",
        action="store_true",
        help="at the end, each side writes its checkpoint into its --checkpoint-dir and "
        "the agent the global one when it can read the cloud's",
    )
    parser.add_argument(
        "--checkpoint-every",
        type=non_negative_int,
        default=0,
        metavar="K",
        help="both sides checkpoint every K steps, the global checkpoint too (default: 0, never)",
    )
    parser.add_argument(
        "--resume",
        metavar="SESSION:STEP",
        help="resume run SESSION from both sides' checkpoints at STEP (its placement, "
        "optimizer state and step; the batch order goes on from there)",
    )
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=300.0,
        help="deadline of each call to the agent in seconds (default: 300)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of lines")
    add_security_arguments(parser)


def _resume(text: str) -> Resume:
    """``SESSION:STEP``; ValueError otherwise."""
    session, _, step = text.rpartition(":")
    if not session or not step.isdigit():
        raise ValueError(f"--resume takes SESSION:STEP, got {text!r}")
    return Resume(session, int(step))


def run(args: argparse.Namespace) -> int:
    import grpc
    from tqdm import tqdm

    from collabdnn.errors import CollabError
    from collabdnn.training.data import batch_order, load_image_folder
    from collabdnn.training.spec import OptimizerConfig, StartTraining, StepResult, TrainingRun
    from mobile_agent.train_client import train

    try:
        placement = str(Placement.parse(args.placement)) if args.placement else ""
        resume = _resume(args.resume) if args.resume else None
        optimizer = OptimizerConfig(
            args.optimizer, args.lr, momentum=args.momentum, weight_decay=args.weight_decay
        )
        data = load_image_folder(args.data)
    except (CollabError, ValueError) as exc:
        print(f"train: {exc}", file=sys.stderr)
        return 2
    if data.skipped:
        print(f"train: skipped {len(data.skipped)} unreadable images:", file=sys.stderr)
        for path, why in data.skipped[:5]:
            print(f"  {path}: {why}", file=sys.stderr)
    done = resume.step if resume else 0  # a resumed run goes on with the batch order
    order = itertools.islice(
        batch_order(len(data), args.batch_size, done + args.steps, args.seed), done, None
    )
    batches = (
        ([data.images[i] for i in batch], [data.labels[i] for i in batch]) for batch in order
    )
    bar = tqdm(total=args.steps, unit="step", file=sys.stderr, disable=None)

    def started(run: TrainingRun) -> None:
        print(
            f"training {run.model} (weights {run.weights_hash}) with placement "
            f"{run.placement} from {run.placement_source} ({run.plan_source or 'agent'}'s "
            f"plan): {len(data)} images in "
            f"{len(data.classes)} classes",
            file=sys.stderr,
        )
        if run.labels and len(data.classes) > len(run.labels):
            print(
                f"train: {len(data.classes)} classes but the model has {len(run.labels)} outputs",
                file=sys.stderr,
            )

    def stepped(result: StepResult) -> None:
        bar.update(1)
        bar.set_postfix(loss=f"{result.loss:.4f}")
        if not args.json:
            bar.write(
                f"step {result.step}: loss {result.loss:.6f}  {result.ms:.1f} ms  "
                f"up {result.bytes_up:,} B  down {result.bytes_down:,} B",
                file=sys.stdout,
            )

    security = config_from_args(args)
    start = StartTraining(placement, optimizer, args.seed, args.batch_size, resume)
    try:
        run, steps, final = train(
            args.agent,
            batches,
            start,
            timeout=args.timeout,
            checkpoint=args.checkpoint,
            checkpoint_every=args.checkpoint_every,
            security_config=security,
            on_start=started,
            on_step=stepped,
        )
    except grpc.RpcError as exc:
        bar.close()
        why = describe_failure(args.agent, security, exc.code().name, exc.details())
        print(f"train: {why}", file=sys.stderr)
        return 1
    bar.close()
    if args.json:
        print(
            json.dumps(
                {
                    "steps": [s.to_json() for s in steps],
                    "session": run.session_id,
                    "weights_hash": final.weights_hash,
                    "model": run.model,
                    "start_weights_hash": run.weights_hash,
                    "placement": run.placement,
                    "placement_source": run.placement_source,
                    "plan_source": run.plan_source,
                    "images": len(data),
                    "classes": list(data.classes),
                    "skipped": len(data.skipped),
                    "bytes_up": sum(s.bytes_up for s in steps),
                    "bytes_down": sum(s.bytes_down for s in steps),
                    "checkpoints": {
                        "mobile": final.mobile.checkpoint,
                        "cloud": final.cloud.checkpoint if final.cloud else "",
                        "global": final.global_checkpoint,
                    },
                },
                indent=2,
            )
        )
        return 0
    print(f"weights hash after {final.step} steps: {final.weights_hash}")
    if final.global_checkpoint:
        print(f"global checkpoint (--weights): {final.global_checkpoint}")
    return 0
