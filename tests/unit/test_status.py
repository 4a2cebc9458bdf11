"""One way for every servicer to answer: the ``rpc`` decorator and the ``Ready`` guard."""

from __future__ import annotations

import grpc
import pytest

from collabdnn.errors import CodecError, NotReadyError, WeightsError
from collabdnn.wire.status import LOADING, Ready, rpc

pytestmark = pytest.mark.unit


class _Aborted(Exception):
    pass


class _Context:
    def __init__(self) -> None:
        self.code: grpc.StatusCode | None = None
        self.details = ""

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        self.code, self.details = code, details
        raise _Aborted(details)


class _Failed(grpc.RpcError):
    """What a stub raises when a call fails."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


class _Servicer:
    def __init__(self, error: BaseException | None) -> None:
        self.error = error
        self.ready: Ready[str] = Ready()
        self.peer = "cloud 127.0.0.1:1"

    @rpc("Call", downstream=lambda self: self.peer)
    def Call(self, request: str, context: grpc.ServicerContext) -> str:
        if self.error is not None:
            raise self.error
        return request + self.ready.get()


def _call(servicer: _Servicer) -> _Context:
    context = _Context()
    with pytest.raises(_Aborted):
        servicer.Call("x", context)  # type: ignore[arg-type]
    return context


@pytest.mark.parametrize(
    ("error", "code", "details"),
    [
        (CodecError("bad frame"), grpc.StatusCode.INVALID_ARGUMENT, "bad frame"),
        (WeightsError("other weights"), grpc.StatusCode.FAILED_PRECONDITION, "other weights"),
        (NotReadyError("no plan yet"), grpc.StatusCode.UNAVAILABLE, "no plan yet"),
        (
            _Failed(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded"),
            grpc.StatusCode.DEADLINE_EXCEEDED,
            "cloud 127.0.0.1:1: Deadline Exceeded",
        ),
        (  # UNKNOWN says nothing: never passed on
            _Failed(grpc.StatusCode.UNKNOWN, "Exception calling application"),
            grpc.StatusCode.INTERNAL,
            "cloud 127.0.0.1:1: Exception calling application",
        ),
    ],
)
def test_rpc_maps_domain_errors_and_failed_downstream_calls(
    error: BaseException, code: grpc.StatusCode, details: str
) -> None:
    context = _call(_Servicer(error))
    assert context.code == code and context.details == details


def test_ready_is_unavailable_until_set() -> None:
    servicer = _Servicer(None)
    context = _call(servicer)
    assert context.code == grpc.StatusCode.UNAVAILABLE and context.details == LOADING
    assert servicer.ready.value is None
    servicer.ready.set("y")
    assert servicer.Call("x", _Context()) == "xy"  # type: ignore[arg-type]


def test_other_exceptions_are_internal_never_unknown() -> None:
    context = _call(_Servicer(KeyError("bug")))
    assert context.code == grpc.StatusCode.INTERNAL
    assert context.details == "internal error: KeyError: 'bug'"
    context = _call(_Servicer(MemoryError()))  # out of memory: retry later
    assert context.code == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_an_abort_inside_the_handler_keeps_its_code() -> None:
    """A context.abort inside the handler (admission, say) is not an error of ours."""

    class Aborting(_Servicer):
        @rpc("Call")
        def Call(self, request: str, context: grpc.ServicerContext) -> str:
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "busy")
            return ""

    context = _Context()
    with pytest.raises(_Aborted):
        Aborting(None).Call("x", context)  # type: ignore[arg-type]
    assert context.code == grpc.StatusCode.RESOURCE_EXHAUSTED and context.details == "busy"


def test_every_handler_of_every_servicer_goes_through_rpc() -> None:
    from cloud_server.servicer import CloudServicer
    from collabdnn.wire.proto import cloud_pb2_grpc, mobile_pb2_grpc, scheduler_pb2_grpc
    from mobile_agent.servicer import MobileServicer
    from scheduler.servicer import SchedulerServicer

    pairs = [
        (CloudServicer, cloud_pb2_grpc.CloudServerServicer),
        (MobileServicer, mobile_pb2_grpc.MobileAgentServicer),
        (SchedulerServicer, scheduler_pb2_grpc.SchedulerServicer),
    ]
    for servicer, base in pairs:
        handlers = [n for n in vars(base) if n[0].isupper()]
        assert handlers, base
        for name in handlers:
            method = vars(servicer).get(name)
            assert method is not None, f"{servicer.__name__}.{name} is not implemented"
            assert hasattr(method, "__wrapped__"), f"{servicer.__name__}.{name} lacks @rpc"


def test_every_servicer_is_unavailable_while_loading() -> None:
    from cloud_server.servicer import CloudServicer
    from collabdnn.wire.proto import common_pb2, scheduler_pb2
    from mobile_agent.servicer import MobileServicer
    from scheduler.core import Scheduler, SchedulerSettings
    from scheduler.servicer import SchedulerServicer

    core = Scheduler(SchedulerSettings())
    calls = [
        (CloudServicer().Info, common_pb2.InfoRequest(), LOADING),
        (MobileServicer().Info, common_pb2.InfoRequest(), LOADING),
        (SchedulerServicer(core).GetPlan, scheduler_pb2.GetSchedulerPlanRequest(), "profiling"),
    ]
    try:
        for handler, request, details in calls:
            context = _Context()
            with pytest.raises(_Aborted):
                handler(request, context)  # type: ignore[arg-type]
            assert context.code == grpc.StatusCode.UNAVAILABLE and details in context.details
    finally:
        core.stop()
