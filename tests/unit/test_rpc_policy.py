"""Channel-wide policy: every stub call has a deadline, idempotent calls are retried,
and admission refuses beyond its bound."""

from __future__ import annotations

import ast
import json

import grpc
import pytest

from collabdnn.transport.admission import Admission, max_concurrent_rpcs, pool_threads
from collabdnn.transport.channels import HEALTH_SERVICE, IDEMPOTENT, retry_service_config
from collabdnn.wire.proto import cloud_pb2, mobile_pb2, training_pb2
from tests.common import REPO

SOURCES = ["collabdnn", "cloud_server", "mobile_agent", "benchmarks"]


def _rpc_names() -> set[str]:
    names = {"Check", "Watch"}
    for module in (cloud_pb2, mobile_pb2, training_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            names |= {method.name for method in service.methods}
    return names


def test_every_stub_call_has_a_deadline() -> None:
    rpcs = _rpc_names()
    missing = []
    for folder in SOURCES:
        for path in (REPO / folder).rglob("*.py"):
            if "proto" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr in rpcs
                    and not any(k.arg == "timeout" for k in node.keywords)
                ):
                    missing.append(f"{path.relative_to(REPO)}:{node.lineno} {node.func.attr}")
    assert not missing, f"stub calls without timeout=: {missing}"


def test_idempotent_calls_name_real_methods_and_are_retried() -> None:
    services = {
        s.full_name: {m.name for m in s.methods}
        for module in (cloud_pb2, mobile_pb2)
        for s in module.DESCRIPTOR.services_by_name.values()
    }
    services[HEALTH_SERVICE] = {"Check", "Watch"}
    for service, methods in IDEMPOTENT.items():
        assert set(methods) <= services[service], service
    assert {"Execute", "Classify", "SetPlan"}.isdisjoint(
        m for methods in IDEMPOTENT.values() for m in methods
    )
    config = json.loads(retry_service_config(IDEMPOTENT))
    (policy,) = config["methodConfig"]
    assert policy["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE"]
    assert {"service": "collabdnn.proto.MobileAgent", "method": "GetPlan"} in policy["name"]


class _Aborted(Exception):
    pass


class _Context:
    def __init__(self) -> None:
        self.code: grpc.StatusCode | None = None

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        self.code = code
        raise _Aborted(details)


def test_admission_refuses_beyond_its_limit_and_frees_slots() -> None:
    admission = Admission(2)
    context = _Context()
    with admission.admit(context, "a"), admission.admit(context, "b"):  # type: ignore[arg-type]
        assert admission.admitted == 2
    assert admission.admitted == 0
    assert admission.try_enter() and admission.try_enter() and not admission.try_enter()
    with pytest.raises(_Aborted, match="already admitted"), admission.admit(context, "c"):  # type: ignore[arg-type]
        pass
    assert context.code == grpc.StatusCode.RESOURCE_EXHAUSTED and admission.refused == 2
    admission.leave()
    admission.leave()
    assert admission.admitted == 0
    assert Admission(4, 2).concurrency == 2 and Admission(1, 8).concurrency == 1
    assert pool_threads(64, 8) > 64 and max_concurrent_rpcs(64, 8) > pool_threads(64, 8)
    with pytest.raises(ValueError):
        Admission(0)


@pytest.mark.parametrize("command", ["cloud", "mobile"])
def test_services_bind_loopback_by_default_and_limits_come_from_the_environment(
    command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from collabdnn.cli import _build_parser

    for name in ("COLLABDNN_HOST", "COLLABDNN_MAX_QUEUE", "COLLABDNN_MAX_CONCURRENT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLLABDNN_MAX_PIXELS", "1000000")
    args = _build_parser(command).parse_args([command])
    assert args.host == "127.0.0.1" and args.max_pixels == 1_000_000
    limit = "max_queue" if command == "cloud" else "max_concurrent"
    assert getattr(args, limit) >= 1
    with pytest.raises(SystemExit):
        _build_parser(command).parse_args([command, f"--{limit.replace('_', '-')}", "0"])
