"""``collabdnn demo``: the whole system on the sample photos, end to end.

Starts a cloud server and a mobile agent as subprocesses on free ports, waits until
both are healthy, classifies the photos under several placements (mobile only, cloud
only, mobile->cloud->mobile, cloud->mobile->cloud->mobile), prints what happened, and
stops both services, also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path
from types import FrameType

LOG_LEVEL = logging.INFO
HELP = "run the end-to-end demo on the sample photos"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}

log = logging.getLogger(__name__)


def default_images() -> list[Path]:
    """The sample photos in ``samples/`` beside the package (a checkout or sdist)."""
    folder = Path(__file__).resolve().parents[2] / "samples"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def default_weights(model: str) -> str:
    """``imagenet`` when its checkpoint is in the local torch cache, else ``seed:0``."""
    from collabdnn.errors import WeightsError
    from collabdnn.models.registry import get_spec
    from collabdnn.weights import imagenet_weights_path

    try:
        return "imagenet" if imagenet_weights_path(get_spec(model)).is_file() else "seed:0"
    except WeightsError:
        return "seed:0"


def demo_placements(num_units: int) -> dict[str, str]:
    """Named placements for a model of ``num_units`` units, unit 0 included."""
    q = max(1, num_units // 4)
    mcm = "M" * q + "C" * (num_units - 2 * q) + "M" * q
    cmcm = "".join("CM"[(i * 4 // num_units) % 2] for i in range(num_units))
    return {"mobile only": "mobile", "cloud only": "cloud",
            "mobile->cloud->mobile": mcm, "cloud->mobile->cloud->mobile": cmcm}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="alexnet", help="model name (default: alexnet)")
    parser.add_argument("--weights", default=None,
                        help="default: imagenet if in the local torch cache, else seed:0")
    parser.add_argument("--images", nargs="+", type=Path, metavar="IMAGE",
                        help="photos to classify (default: the samples/ folder)")
    parser.add_argument("--placement", action="append", default=[], metavar="SPEC",
                        help="extra placement to run (repeatable)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per service")
    parser.add_argument("--json", action="store_true", help="print one JSON document")


def _raise_interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    images = args.images or default_images()
    if not images:
        print("demo: no images: pass --images or run from a checkout with samples/",
              file=sys.stderr)
        return 2
    weights = args.weights or default_weights(args.model)
    meaningful = weights != "seed:0" and not weights.startswith("seed:")
    if not meaningful and not args.json:
        print(f"NOTE: weights {weights!r} are random (no ImageNet checkpoint in the local torch "
              "cache), so the labels below are NOT meaningful; the split execution is.\n")
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)  # clean up on SIGTERM too
    try:
        return _run(args, images, weights, meaningful)
    except KeyboardInterrupt:
        print("demo: interrupted; services stopped", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(args: argparse.Namespace, images: list[Path], weights: str, meaningful: bool) -> int:
    from collabdnn.cli.classify import classify, format_result, result_json
    from collabdnn.placement import Placement
    from collabdnn.procs import Service

    common = ["--model", args.model, "--weights", weights, "--threads", str(args.threads)]
    data = [p.read_bytes() for p in images]
    cloud = Service("cloud", common)
    mobile: Service | None = None
    try:
        cloud.start().wait_healthy()
        mobile = Service("mobile", [*common, "--cloud", cloud.address])
        mobile.start().wait_healthy()
        num_units = _num_units(mobile.address)
        placements = demo_placements(num_units)
        placements.update({spec: spec for spec in args.placement})
        runs = []
        for title, spec in placements.items():
            results = classify(mobile.address, data, Placement.parse(spec))
            runs.append((title, spec, results))
    finally:
        for service in (mobile, cloud):
            if service is not None:
                service.stop()
    names = [p.name for p in images]
    if args.json:
        print(json.dumps({
            "model": args.model, "weights": weights, "labels_meaningful": meaningful,
            "runs": [{"name": title, "spec": spec,
                      "results": [result_json(n, r) for n, r in zip(names, rs, strict=True)]}
                     for title, spec, rs in runs],
        }, indent=2))
        return 0
    print(f"model {args.model}, weights {weights}, {num_units} units (unit 0 = preprocessing)")
    for title, spec, results in runs:
        print(f"\n=== {title} ({spec}) ===")
        print(_summary(names, results))
        print(f"\nper-unit timings, {names[0]}:")
        print(format_result(names[0], results[0], per_unit=True))
    return 0


def _num_units(agent: str) -> int:
    from collabdnn.proto import common_pb2, mobile_pb2_grpc
    from collabdnn.rpc import open_channel

    with open_channel(agent) as channel:
        info = mobile_pb2_grpc.MobileAgentStub(channel).Info(common_pb2.InfoRequest(), timeout=10)
    return len(info.info.units)


def _summary(names: list[str], results: list) -> str:
    rows = [f"  {'image':<16} {'top-1':<28} {'prob':>7} {'latency ms':>10} "
            f"{'up B':>10} {'down B':>10}"]
    for name, r in zip(names, results, strict=True):
        top = r.top[0]
        rows.append(f"  {name:<16} {top.label[:28]:<28} {top.probability:7.2%} "
                    f"{r.latency_ms:10.1f} {r.bytes_up:>10,} {r.bytes_down:>10,}")
    return "\n".join(rows)
