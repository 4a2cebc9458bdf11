"""Regenerate the gRPC stubs in ``collabdnn/wire/proto/`` from ``protos/collabdnn/wire/proto``.

``python -m collabdnn.wire.proto_gen`` (or ``make protos``) writes them in place. The stubs
are committed so that installing the package needs no protoc; ``tests/unit/test_protos.py``
regenerates them into a temporary folder and fails on any difference, so the committed
files can never drift from the ``.proto`` sources. grpcio-tools is pinned exactly in
pyproject for the same reason: another version writes different bytes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PROTO_ROOT = REPO_ROOT / "protos"
PROTO_PACKAGE = Path("collabdnn") / "wire" / "proto"


def proto_files(proto_root: Path = PROTO_ROOT) -> list[Path]:
    """The ``.proto`` sources, relative to ``proto_root`` (sorted: stable output)."""
    return sorted(p.relative_to(proto_root) for p in (proto_root / PROTO_PACKAGE).glob("*.proto"))


def generate(out_dir: Path = REPO_ROOT, proto_root: Path = PROTO_ROOT) -> list[Path]:
    """Run protoc over every source; returns the generated files under ``out_dir``."""
    import importlib.resources

    from grpc_tools import protoc

    sources = proto_files(proto_root)
    if not sources:
        raise FileNotFoundError(f"no .proto files under {proto_root / PROTO_PACKAGE}")
    (out_dir / PROTO_PACKAGE).mkdir(parents=True, exist_ok=True)
    well_known = importlib.resources.files("grpc_tools") / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{proto_root}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *(str(s) for s in sources),
    ]
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed: {' '.join(args)}")
    return sorted(generated_files(out_dir))


def generated_files(root: Path = REPO_ROOT) -> list[Path]:
    """The generated stub files under ``root`` (pb2, pyi and grpc modules)."""
    folder = root / PROTO_PACKAGE
    return sorted(
        p for pattern in ("*_pb2.py", "*_pb2.pyi", "*_pb2_grpc.py") for p in folder.glob(pattern)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT, help="output root (default: repo)")
    args = parser.parse_args(argv)
    for path in generate(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
