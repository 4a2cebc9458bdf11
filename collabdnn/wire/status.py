"""How every servicer answers: domain errors -> gRPC status codes in one table, one
decorator that applies it (:func:`rpc`), and one readiness guard (:class:`Ready`).

A request that is wrong in itself (bad model name, range, tensor, frame, image,
placement) is INVALID_ARGUMENT: retrying it cannot help. A weights mismatch is
FAILED_PRECONDITION: the request is fine but the two sides hold different parameters,
so the system is not in a state to run it. A service that is still starting (a model
loading, the scheduler before its first plan) is UNAVAILABLE: retry shortly. A call the
handler made to another service that failed ends the request with that call's code,
its details prefixed with whom the handler called. A request over a per-request limit
is INVALID_ARGUMENT, a service at its admission limit RESOURCE_EXHAUSTED, and work
stopped at a unit boundary (:mod:`collabdnn.bounds`) CANCELLED, DEADLINE_EXCEEDED or,
once the server's grace period on SIGTERM is over, UNAVAILABLE. Anything else is a bug:
INTERNAL, never gRPC's UNKNOWN.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, Generic, NoReturn, TypeVar

import grpc

from collabdnn.errors import (
    BusyError,
    CancelledError,
    CodecError,
    CollabError,
    DeadlineError,
    ImageError,
    LimitError,
    NotReadyError,
    PlanRequestError,
    ShuttingDownError,
    TensorMismatchError,
    TrainingConfigError,
    TrainingStateError,
    UnitRangeError,
    UnknownAgentError,
    UnknownModelError,
    WeightsError,
    WrongModeError,
)
from collabdnn.placement import PlacementError
from collabdnn.planning.profiles import ProfileError

log = logging.getLogger(__name__)

_Reply = TypeVar("_Reply")
_T = TypeVar("_T")

LOADING = "the model is still loading; retry shortly"

_CODES: tuple[tuple[type[Exception], grpc.StatusCode], ...] = (
    (CodecError, grpc.StatusCode.INVALID_ARGUMENT),
    (ImageError, grpc.StatusCode.INVALID_ARGUMENT),
    (UnitRangeError, grpc.StatusCode.INVALID_ARGUMENT),
    (TensorMismatchError, grpc.StatusCode.INVALID_ARGUMENT),
    (UnknownModelError, grpc.StatusCode.INVALID_ARGUMENT),
    (PlacementError, grpc.StatusCode.INVALID_ARGUMENT),
    (WeightsError, grpc.StatusCode.FAILED_PRECONDITION),
    (TrainingConfigError, grpc.StatusCode.INVALID_ARGUMENT),
    (TrainingStateError, grpc.StatusCode.FAILED_PRECONDITION),
    (PlanRequestError, grpc.StatusCode.INVALID_ARGUMENT),
    (NotReadyError, grpc.StatusCode.UNAVAILABLE),
    (UnknownAgentError, grpc.StatusCode.NOT_FOUND),
    (WrongModeError, grpc.StatusCode.FAILED_PRECONDITION),
    (ProfileError, grpc.StatusCode.INVALID_ARGUMENT),
    # bounded work (collabdnn.bounds): a request over a per-request limit is refused
    # INVALID_ARGUMENT (the same request would be refused again); a service at its
    # admission limit says RESOURCE_EXHAUSTED (retry later); work stopped at a unit
    # boundary ends with what stopped it.
    (LimitError, grpc.StatusCode.INVALID_ARGUMENT),
    (BusyError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (CancelledError, grpc.StatusCode.CANCELLED),
    (DeadlineError, grpc.StatusCode.DEADLINE_EXCEEDED),
    (ShuttingDownError, grpc.StatusCode.UNAVAILABLE),
    # Not ours: the process ran out of memory (a request's own image is mapped to
    # ImageError where it is decoded, see SplitModel.run_timed). The service is fine
    # otherwise; the caller may retry later.
    (MemoryError, grpc.StatusCode.RESOURCE_EXHAUSTED),
)

# Status details are sent as trailing metadata, which gRPC limits (8 KB by default):
# a message quoting a huge request (a 100,000-letter placement) would fail the call.
MAX_DETAILS = 1000


def code_for(exc: BaseException) -> grpc.StatusCode:
    """The status code a domain error maps to (INTERNAL for anything unexpected)."""
    for kind, code in _CODES:
        if isinstance(exc, kind):
            return code
    return grpc.StatusCode.INTERNAL


def rpc(
    what: str, downstream: str | Callable[[Any], str] = "a downstream call"
) -> Callable[[Callable[..., _Reply]], Callable[..., _Reply]]:
    """Decorate a servicer method (``what``: its name in logs): every error it meets on
    purpose ends the RPC with a precise status, never UNKNOWN.

    * a :class:`~collabdnn.errors.CollabError` ends it with the code of the table above
      (so :class:`Ready` not yet set is UNAVAILABLE);
    * a ``grpc.RpcError`` of a call the handler made to another service ends it with
      that call's code and details, prefixed by ``downstream`` (a string, or a function
      of the servicer that says whom it called, e.g. ``"cloud HOST:PORT"``);
    * anything else is a bug (or an exhausted resource): INTERNAL (RESOURCE_EXHAUSTED
      for a MemoryError), logged with its traceback, never gRPC's UNKNOWN; unless the
      handler had already ended the RPC with ``context.abort``, whose code stands.

    The servicers stay thin: the method converts, calls the domain object and converts
    back; the mapping lives here, once.
    """

    def wrap(method: Callable[..., _Reply]) -> Callable[..., _Reply]:
        @functools.wraps(method)
        def handler(self: Any, request: Any, context: grpc.ServicerContext) -> _Reply:
            try:
                return method(self, request, context)
            except CollabError as exc:
                abort_for(context, exc, what)
            except grpc.RpcError as exc:
                whom = downstream(self) if callable(downstream) else downstream
                abort_downstream(context, exc, what, whom)
            except Exception as exc:
                if _aborted(context):
                    raise  # context.abort's own exception: the code it set stands
                abort_for(context, exc, what)

        return handler

    return wrap


class Ready(Generic[_T]):
    """What a servicer serves once loading has finished (a model, an agent, a plan).

    :meth:`get` raises :class:`~collabdnn.errors.NotReadyError` (UNAVAILABLE under
    :func:`rpc`) with ``not_ready`` as its message until :meth:`set` was called.
    """

    def __init__(self, not_ready: str = LOADING) -> None:
        self.not_ready = not_ready
        self._value: _T | None = None

    def set(self, value: _T) -> None:
        self._value = value

    @property
    def value(self) -> _T | None:
        """The value, or None while not ready."""
        return self._value

    def get(self) -> _T:
        value = self._value
        if value is None:
            raise NotReadyError(self.not_ready)
        return value


def _aborted(context: grpc.ServicerContext) -> bool:
    """Whether the handler already ended the RPC with a code (``context.abort``)."""
    code = getattr(context, "code", None)
    try:
        code = code() if callable(code) else code
    except NotImplementedError:
        return False
    return code is not None and code is not grpc.StatusCode.OK


def _clip(message: str) -> str:
    if len(message) <= MAX_DETAILS:
        return message
    return f"{message[: MAX_DETAILS - 40]}... ({len(message)} characters in all)"


def abort_for(context: grpc.ServicerContext, exc: BaseException, what: str = "") -> NoReturn:
    """End the RPC with ``exc``'s status code and message; logs it on the way out."""
    code = code_for(exc)
    message = str(exc) or type(exc).__name__
    if not isinstance(exc, CollabError):
        log.exception("%s failed unexpectedly", what or "request", exc_info=exc)
        message = f"internal error: {type(exc).__name__}: {message}"
    else:
        log.info("%s refused (%s): %s", what or "request", code.name, _clip(message))
    context.abort(code, _clip(message))
    raise AssertionError("context.abort returned")  # pragma: no cover


def abort_downstream(
    context: grpc.ServicerContext, exc: grpc.RpcError, what: str, whom: str
) -> NoReturn:
    """End the RPC after a failed call to another service: its code (UNKNOWN, which says
    nothing, becomes INTERNAL) and its details, prefixed by ``whom`` was called."""
    code = getattr(exc, "code", lambda: None)() or grpc.StatusCode.UNKNOWN
    details = getattr(exc, "details", lambda: None)() or type(exc).__name__
    if code in (grpc.StatusCode.UNKNOWN, grpc.StatusCode.OK):
        code = grpc.StatusCode.INTERNAL
    log.warning("%s: %s failed (%s): %s", what, whom, code.name, _clip(details))
    context.abort(code, _clip(f"{whom}: {details}"))
    raise AssertionError("context.abort returned")  # pragma: no cover
