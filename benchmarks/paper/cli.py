"""``collabdnn bench``: the paper's experiment on shaped links, and the runtime's limits.

Parts (``--parts``, default all): 1 paper (AlexNet over 3G/4G/Wi-Fi, mobile-only,
cloud-only, best single cut, the plan), 2 cuts (every single cut measured: is the pick
right?), 3 overhead (against the physical bound; a cloud hop against a raw gRPC echo
and torch.distributed.rpc), 4 throughput (requests in flight against the bottleneck
stage), 5 gpu (the cloud on CUDA, where there is one).

As root on Linux the command creates a private network namespace, re-runs itself inside
it (``nsenter --net``, which keeps the cgroup filesystem visible for the mobile's CPU
quota), shapes that namespace's loopback with tc, and deletes it at the end.  Elsewhere
the shaped parts are recorded as skipped, with the reason.  Writes
``benchmarks/results/bench_*.{json,md,png}`` and refreshes the generated block of
``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.paper.config import PARTS, BenchConfig

SHAPED_PARTS = {1, 2, 4, 5}


def _parts(text: str) -> tuple[int, ...]:
    names = {v: k for k, v in PARTS.items()}
    out = []
    for item in text.split(","):
        item = item.strip().lower()
        if item.isdigit() and int(item) in PARTS:
            out.append(int(item))
        elif item in names:
            out.append(names[item])
        elif item:
            choices = ", ".join(f"{k}/{v}" for k, v in PARTS.items())
            raise argparse.ArgumentTypeError(f"unknown part {item!r}; choose from {choices}")
    if not out:
        raise argparse.ArgumentTypeError("no part given")
    return tuple(sorted(set(out)))


def _words(text: str) -> tuple[str, ...]:
    return tuple(w.strip() for w in text.split(",") if w.strip())


def configure(parser: argparse.ArgumentParser) -> None:
    defaults = BenchConfig()
    parser.add_argument(
        "--parts",
        type=_parts,
        default=defaults.parts,
        metavar="LIST",
        help="comma-separated parts, numbers or names: "
        + ", ".join(f"{k} {v}" for k, v in PARTS.items())
        + " (default: all)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: alexnet on Wi-Fi, 2 requests per plan, tiny profiles",
    )
    parser.add_argument(
        "--requests",
        type=int,
        metavar="N",
        help=f"timed requests per part-1 plan (default: {defaults.requests}; --quick: 2)",
    )
    parser.add_argument(
        "--models",
        type=_words,
        metavar="LIST",
        help="comma-separated models (default: alexnet,alexnet-2012)",
    )
    parser.add_argument(
        "--networks",
        type=_words,
        metavar="LIST",
        help="comma-separated link presets (default: 3g,4g,wifi)",
    )
    parser.add_argument(
        "--mobile-cpus",
        type=float,
        default=defaults.mobile_cpus,
        help="CPU quota of the mobile agent (default: %(default)s)",
    )
    parser.add_argument(
        "--mobile-threads",
        type=int,
        default=defaults.mobile_threads,
        help="torch threads of the mobile side (default: %(default)s)",
    )
    parser.add_argument(
        "--cloud-threads",
        type=int,
        default=defaults.cloud_threads,
        help="torch threads of the cloud side (default: %(default)s)",
    )
    parser.add_argument("--image", type=Path, help="the request photo (default: rocket.jpg)")
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=defaults.output,
        help="results folder (default: %(default)s)",
    )
    parser.add_argument(
        "--doc",
        type=Path,
        help="page whose generated block gets the new tables (default: docs/benchmarks.md when "
        "writing to the default results folder, none otherwise; never with --quick)",
    )
    parser.add_argument(
        "--no-shape", action="store_true", help="do not shape links (the shaped parts are skipped)"
    )
    parser.add_argument("--json", action="store_true", help="print every result as JSON")
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="measure nothing: redraw the tables and plots of the JSON files in --output",
    )
    parser.add_argument("--in-netns", default="", help=argparse.SUPPRESS)


def build_config(args: argparse.Namespace) -> BenchConfig:
    overrides: dict = {
        "parts": args.parts,
        "output": args.output.resolve(),
        "shape": not args.no_shape,
        "mobile_cpus": args.mobile_cpus,
        "mobile_threads": args.mobile_threads,
        "cloud_threads": args.cloud_threads,
    }
    for key in ("requests", "models", "networks", "image"):
        value = getattr(args, key)
        if value is not None:
            overrides[key] = value.resolve() if isinstance(value, Path) else value
    if args.quick:
        return BenchConfig.quick_config(**overrides)
    return BenchConfig(**overrides)


def _check(config: BenchConfig) -> str | None:
    from collabdnn.planning.link import LINK_PRESETS

    bad = [n for n in config.networks if n not in LINK_PRESETS]
    if bad:
        return f"unknown network(s) {bad}; known: {', '.join(LINK_PRESETS)}"
    if config.requests < 1:
        return "--requests must be >= 1"
    if not config.image.is_file():
        return f"no request image at {config.image}"
    return None


def _forward(args: argparse.Namespace, config: BenchConfig, netns: str) -> list[str]:
    """This command's arguments for the copy that runs inside the namespace."""
    argv = ["-v"] * args.verbose + [
        "bench",
        "--parts",
        ",".join(map(str, config.parts)),
        "--models",
        ",".join(config.models),
        "--networks",
        ",".join(config.networks),
        "--requests",
        str(config.requests),
        "--mobile-cpus",
        str(config.mobile_cpus),
        "--mobile-threads",
        str(config.mobile_threads),
        "--cloud-threads",
        str(config.cloud_threads),
        "--image",
        str(config.image),
        "--output",
        str(config.output),
        "--in-netns",
        netns,
    ]
    doc = _doc(args, config)
    if doc is not None:
        argv += ["--doc", str(doc.resolve())]
    if args.quick:
        argv.append("--quick")
    if args.json:
        argv.append("--json")
    return argv


def _doc(args: argparse.Namespace, config: BenchConfig) -> Path | None:
    """The page to refresh: the one given, else docs/benchmarks.md for default results."""
    if config.quick:
        return None
    if args.doc is not None:
        return args.doc
    if config.output == BenchConfig().output.resolve():
        return Path(__file__).resolve().parents[2] / "docs" / "benchmarks.md"
    return None


def _say(message: str) -> None:
    from tqdm import tqdm

    tqdm.write(f"bench: {message}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    config = build_config(args)
    if args.render_only:
        return _render_only(args, config)
    problem = _check(config)
    if problem:
        print(f"collabdnn bench: {problem}", file=sys.stderr)
        return 2
    shaping_problem: str | None = None
    needs_shaping = config.shape and bool(SHAPED_PARTS & set(config.parts))
    if needs_shaping and not args.in_netns:
        from collabdnn.netem.netns import NetNamespace, netns_available

        ok, reason = netns_available()
        nsenter = shutil.which("nsenter")
        if ok and nsenter:
            from collabdnn.testbed.procs import _env

            with NetNamespace(prefix="collabdnn-bench") as ns:
                _say(f"shaping links in the private network namespace {ns.name}")
                argv = [
                    nsenter,
                    f"--net=/run/netns/{ns.name}",
                    sys.executable,
                    "-m",
                    "collabdnn",
                    *_forward(args, config, ns.name),
                ]
                return subprocess.call(argv, env=_env())
        shaping_problem = reason or "nsenter (util-linux) is not installed"
        _say(f"links will NOT be shaped: {shaping_problem}")
    elif not config.shape:
        shaping_problem = "disabled with --no-shape"
    return _run_here(args, config, shaping_problem)


def _run_here(args: argparse.Namespace, config: BenchConfig, shaping_problem: str | None) -> int:
    from benchmarks.paper import report, runner

    begin = time.perf_counter()
    results = runner.run(config, shaping_problem, say=_say)
    total = time.perf_counter() - begin
    written = report.write_all(results, config.output, total)
    doc = _doc(args, config)
    if doc is not None and report.update_doc(doc, config.output):
        written.append(doc)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for name in results:
            md = config.output / f"bench_{name}.md"
            print(f"\n## bench_{name}\n\n{md.read_text()}")
        print(f"total {total / 60:.1f} min; wrote:")
        for path in written:
            print(f"  {path}")
    return 0


def _render_only(args: argparse.Namespace, config: BenchConfig) -> int:
    from benchmarks.paper import report

    done = report.render_existing(config.output)
    if not done:
        print(f"collabdnn bench: no bench_*.json in {config.output}", file=sys.stderr)
        return 1
    doc = _doc(args, config)
    if doc is not None and report.update_doc(doc, config.output):
        print(f"updated {doc}")
    for paths in done.values():
        for path in paths:
            print(f"wrote {path}")
    return 0
