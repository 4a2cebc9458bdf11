"""``collabdnn profile``: measure (or predict) one side's per-unit profile of a model.

Where the profile comes from is decided in one place, :func:`obtain_profile`:

* measured in this process (the default) on the given photos or the sample photos;
* predicted from measured profile files (``--predict-from``), printing the predictor's
  held-out error so the user can judge the prediction;
* asked from a running service (``--cloud ADDR`` / ``--agent ADDR``) through its gRPC
  Profile call, which runs :func:`collabdnn.measure.profiler.profile_model` there, on that
  side's hardware, with the photos and settings sent from here.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from collabdnn.cli._model_args import MODEL_HELP, add_max_units_arg, model_name, unit_costs
from collabdnn.cli.output import format_table, print_json
from collabdnn.transport.security import add_security_arguments

if TYPE_CHECKING:
    from collabdnn.planning.predictor import HoldoutPrediction
    from collabdnn.planning.profiles import Profile


@dataclass(frozen=True)
class ProfileRequest:
    """What any profile source needs: the same fields a remote Profile call carries."""

    side: str
    model: str
    weights: str = "seed:0"
    device: str = "cpu"
    repeats: int = 10
    warmup: int = 2
    batch_size: int = 1
    codec_level: int = 1
    shuffle: bool = False
    images: list[bytes] = field(default_factory=list, repr=False)
    unit_costs: tuple[float, ...] | None = None  # merge units by these (--unit-costs)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--side", choices=("mobile", "cloud"), help="which side this profiles")
    parser.add_argument(
        "--model",
        help=f"{MODEL_HELP}; with --cloud or --agent, the service's model (checked when given)",
    )
    add_max_units_arg(parser)
    remote = parser.add_mutually_exclusive_group()
    remote.add_argument(
        "--cloud", metavar="HOST:PORT", help="ask this running cloud server to profile itself"
    )
    remote.add_argument(
        "--agent", metavar="HOST:PORT", help="ask this running mobile agent to profile itself"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        help="deadline of the remote Profile call in seconds (default: 600)",
    )
    add_security_arguments(parser)
    parser.add_argument(
        "--weights", default="seed:0", help="seed:N, imagenet, or a state-dict path"
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    parser.add_argument(
        "--threads", type=int, help="torch intra-op threads (default: torch's choice)"
    )
    parser.add_argument("--repeats", type=int, default=10, help="timed runs per photo")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs per photo first")
    parser.add_argument("--batch-size", type=int, default=1, help="photos per batch")
    parser.add_argument("--codec-level", type=int, default=1, help="zstd level (0 = raw)")
    parser.add_argument("--shuffle", action="store_true", help="byte-shuffle before zstd")
    parser.add_argument(
        "--images", nargs="+", type=Path, metavar="PATH", help="photos (default: samples/)"
    )
    parser.add_argument(
        "--predict-from",
        nargs="+",
        type=Path,
        metavar="FILE",
        help="predict instead of measuring, from these measured profiles of the same side",
    )
    parser.add_argument("-o", "--output", type=Path, help="write the profile JSON here")
    parser.add_argument("--json", action="store_true", help="print the profile JSON")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from collabdnn.errors import CollabError
    from collabdnn.planning.profiles import save_profile

    try:
        profile = obtain_profile(args)
        if args.output:
            save_profile(profile, args.output)
    except (CollabError, OSError, ValueError) as exc:
        raise SystemExit(f"collabdnn profile: {exc}") from exc
    if args.json:
        print_json(profile.to_dict())
    else:
        print(render_profile(profile))
        if args.output:
            print(f"wrote {args.output}")
    return 0


def obtain_profile(args: argparse.Namespace) -> Profile:
    """The profile the arguments ask for: predicted, measured by a service, or here."""
    if args.model:
        args.model = model_name(args.model, getattr(args, "max_units", None))
    if args.cloud or args.agent:
        return _remote_profile(args)
    if not args.model:
        raise ValueError("--model is required (unless --cloud or --agent is given)")
    if args.predict_from:
        return _predicted_profile(args)
    if args.side is None:
        raise ValueError("--side mobile|cloud is required when measuring")
    return measure_locally(
        profile_request(args), threads=args.threads, progress=not args.no_progress
    )


def _remote_profile(args: argparse.Namespace) -> Profile:
    """Send a Profile call to the service named by --cloud / --agent."""
    import grpc

    from collabdnn.measure.profile_service import ProfileSettings, fetch_profile
    from collabdnn.samples import read_images, sample_images
    from collabdnn.transport.channels import open_channel
    from collabdnn.transport.security import config_from_args, describe_failure

    role, address = ("cloud", args.cloud) if args.cloud else ("mobile", args.agent)
    if args.side and args.side != role:
        raise ValueError(f"--side {args.side} contradicts {'--cloud' if args.cloud else '--agent'}")
    settings = ProfileSettings(
        repeats=args.repeats,
        warmup=args.warmup,
        batch_size=args.batch_size,
        codec_level=args.codec_level,
        shuffle=args.shuffle,
    )
    images = read_images(args.images or sample_images())
    security = config_from_args(args)
    try:
        with open_channel(address, security_config=security) as channel:
            profile = fetch_profile(channel, role, images, settings, args.timeout)
    except grpc.RpcError as exc:
        why = describe_failure(address, security, exc.code().name, exc.details())
        raise ValueError(f"the {role} at {address}: {why}") from exc
    if args.model and args.model != profile.model:
        raise ValueError(f"--model {args.model} but the {role} at {address} serves {profile.model}")
    return profile


def profile_request(args: argparse.Namespace) -> ProfileRequest:
    """The request from the arguments, with the photos already read as bytes."""
    from collabdnn.samples import read_images, sample_images

    paths = args.images or sample_images()
    return ProfileRequest(
        side=args.side,
        model=args.model,
        weights=args.weights,
        device=args.device,
        repeats=args.repeats,
        warmup=args.warmup,
        batch_size=args.batch_size,
        codec_level=args.codec_level,
        shuffle=args.shuffle,
        images=read_images(paths),
        unit_costs=unit_costs(args),
    )


def measure_locally(
    request: ProfileRequest, *, threads: int | None = None, progress: bool = True
) -> Profile:
    """Load the model here and profile it; ``threads`` sets torch's (process-wide) pool."""
    import torch

    from collabdnn.codec import CodecConfig
    from collabdnn.measure.profiler import profile_model
    from collabdnn.model.split_model import load_model

    if request.device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {request.device}: CUDA is not available here")
    if threads is not None:
        if threads < 1:
            raise ValueError(f"--threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)
    model = load_model(
        request.model, request.weights, request.device, unit_costs=request.unit_costs
    )
    return profile_model(
        model,
        request.side,
        request.images,
        repeats=request.repeats,
        warmup=request.warmup,
        batch_size=request.batch_size,
        codec=CodecConfig(request.codec_level, request.shuffle),
        progress=progress,
    )


def _predicted_profile(args: argparse.Namespace) -> Profile:
    """Fit on the given profiles, show the held-out error, predict ``--model``."""
    from collabdnn.model.split_model import load_model
    from collabdnn.planning.predictor import fit, holdout_predictions, predict_profile
    from collabdnn.planning.profiles import load_profile

    measured = [load_profile(path) for path in args.predict_from]
    predictor = fit(measured)
    by = "model" if len({p.model for p in measured}) > 1 else "unit"
    report = render_holdout(holdout_predictions(measured, by=by), by)
    print(report, file=sys.stderr if args.json else sys.stdout)
    model = load_model(args.model, args.weights, unit_costs=unit_costs(args))
    return predict_profile(model, predictor, side=args.side, batch_size=args.batch_size)


# ------------------------------------------------------------------------------- output


def render_profile(profile: Profile) -> str:
    """The per-unit table a person reads; the JSON file has the same figures in full."""
    predicted = bool(profile.host.get("predicted"))
    rows = [_unit_row(unit, predicted) for unit in profile.units]
    total = sum(unit.latency_ms.median for unit in profile.units)
    title = (
        f"{profile.model} on {profile.side} ({profile.device}, threads={profile.threads}, "
        f"batch {profile.batch_size}"
        + (", PREDICTED" if predicted else f", {profile.units[0].latency_ms.repeats} runs")
        + f"); input {profile.input_bytes:,} bytes"
    )
    table = format_table(
        ["#", "unit", "kind", "median ms", "p10-p90 ms", "encoded bytes", "enc ms", "dec ms"],
        rows,
        right=(0, 3, 4, 5, 6, 7),
    )
    return f"{title}\n{table}\ntotal {total:.2f} ms"


def _unit_row(unit: Any, predicted: bool) -> list[Any]:
    stats = unit.latency_ms
    spread = "-" if predicted else f"{stats.p10:.2f}-{stats.p90:.2f}"
    return [
        unit.index,
        unit.name,
        unit.kind,
        f"{stats.median:.3f}",
        spread,
        f"{unit.encoded_bytes:,}",
        f"{unit.encode_ms:.3f}",
        f"{unit.decode_ms:.3f}",
    ]


def render_holdout(predictions: list[HoldoutPrediction], by: str) -> str:
    """Per-kind held-out error of the predictor, so a prediction comes with its accuracy."""
    from collabdnn.planning.predictor import summarise_errors

    summary = summarise_errors(predictions)
    rows = [
        [kind, int(e["units"]), f"{e['median_ape']:.1f}", f"{e['mean_ape']:.1f}"]
        for kind, e in summary.items()
    ]
    table = format_table(["kind", "units", "median APE %", "mean APE %"], rows, right=(1, 2, 3))
    return f"predictor error, leave-one-{by}-out:\n{table}"
