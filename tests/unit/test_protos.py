"""The committed stubs are exactly what the pinned grpcio-tools makes of the sources."""

from __future__ import annotations

from pathlib import Path

from collabdnn.wire import proto_gen


def test_committed_stubs_match_regenerated(tmp_path: Path) -> None:
    fresh = proto_gen.generate(tmp_path)
    committed = proto_gen.generated_files()
    assert [p.name for p in fresh] == [p.name for p in committed], (
        "stub files differ from the .proto sources; run `make protos` and commit"
    )
    pairs = zip(fresh, committed, strict=True)
    stale = [c.name for f, c in pairs if f.read_bytes() != c.read_bytes()]
    assert not stale, f"stale stubs {stale}: run `make protos` and commit"


def test_stubs_import_as_package_modules() -> None:
    from collabdnn.wire.proto import cloud_pb2, cloud_pb2_grpc, mobile_pb2_grpc

    assert cloud_pb2.DESCRIPTOR.package == "collabdnn.proto"
    assert hasattr(cloud_pb2_grpc, "CloudServerStub")
    assert hasattr(mobile_pb2_grpc, "MobileAgentServicer")
