"""``collabdnn weights fetch MODEL``: put a model's official weights in the torch cache.

The services never download anything (``--weights imagenet`` reads the local torch
cache, and a missing file is a clear error); this command is the one place that does,
where there is network. It downloads torchvision's default checkpoint of the model to
where ``--weights imagenet`` looks for it (``$TORCH_HOME/hub/checkpoints``), checks the
SHA-256 prefix torchvision puts in the file name, and writes it atomically. Without
network it fails at once with one line and exit status 1, never a traceback; the demo
then runs with seeded weights and says that its labels mean nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path

_HASH = re.compile(r"-([a-f0-9]*)\.")  # torch.hub's rule: name-<sha256 prefix>.ext
_CHUNK = 1 << 20


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    fetch = sub.add_parser(
        "fetch",
        help="download the model's official ImageNet weights into the torch cache",
        description="Download MODEL's official (torchvision default) ImageNet weights "
        "into the local torch cache, where --weights imagenet and the demo find them.",
    )
    fetch.add_argument("model", metavar="MODEL", help="a registered or torchvision model name")
    fetch.add_argument(
        "--weights-url",
        default=None,
        metavar="URL",
        help="download from URL instead of torchvision's (a mirror); default: torchvision's",
    )
    fetch.add_argument(
        "--timeout", type=float, default=20.0, help="seconds to wait for the server (default 20)"
    )


def run(args: argparse.Namespace) -> int:
    from collabdnn.errors import CollabError
    from collabdnn.model.registry import get_spec, parse_model_name
    from collabdnn.model.weights import imagenet_weights_path

    try:
        spec = get_spec(parse_model_name(args.model).base)
        target = imagenet_weights_path(spec)
        url = args.weights_url or _default_url(spec.torchvision_weights or "")
    except CollabError as exc:
        return _fail(str(exc))
    if target.is_file():
        print(f"{args.model}: already in the torch cache: {target}")
        return 0
    try:
        size = _download(url, target, args.timeout)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        return _fail(f"cannot download {url}: {reason} (no network here? the demo and "
                     "--weights seed:0 work without these weights)")  # fmt: skip
    print(f"{args.model}: {size:,} bytes saved to {target}")
    return 0


def _default_url(name: str) -> str:
    import torchvision

    return str(torchvision.models.get_model_weights(name).DEFAULT.url)


def _download(url: str, target: Path, timeout: float) -> int:
    """Stream ``url`` to ``target`` (atomically), checking the file name's hash prefix."""
    match = _HASH.search(target.name)
    prefix = match.group(1) if match else ""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    digest = hashlib.sha256()
    size = 0
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, partial.open("wb") as out:
            while chunk := response.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
        if prefix and not digest.hexdigest().startswith(prefix):
            raise ValueError(f"the download's SHA-256 does not start with {prefix}: corrupted")
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return size


def _fail(message: str) -> int:
    print(f"collabdnn weights fetch: error: {message}", file=sys.stderr)
    return 1
