"""Domain errors -> gRPC status codes, in one table.

A request that is wrong in itself (bad model name, range, tensor, frame, image,
placement) is INVALID_ARGUMENT: retrying it cannot help. A weights mismatch is
FAILED_PRECONDITION: the request is fine but the two sides hold different parameters,
so the system is not in a state to run it. A service that is still starting (the
scheduler before its first plan) is UNAVAILABLE: retry shortly. Anything else is a bug:
INTERNAL.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import grpc

from collabdnn.errors import (
    CodecError,
    CollabError,
    ImageError,
    NotReadyError,
    PlanRequestError,
    TensorMismatchError,
    UnitRangeError,
    UnknownModelError,
    WeightsError,
)
from collabdnn.placement import PlacementError
from collabdnn.planning.profiles import ProfileError

log = logging.getLogger(__name__)

_Reply = TypeVar("_Reply")

_CODES: tuple[tuple[type[Exception], grpc.StatusCode], ...] = (
    (CodecError, grpc.StatusCode.INVALID_ARGUMENT),
    (ImageError, grpc.StatusCode.INVALID_ARGUMENT),
    (UnitRangeError, grpc.StatusCode.INVALID_ARGUMENT),
    (TensorMismatchError, grpc.StatusCode.INVALID_ARGUMENT),
    (UnknownModelError, grpc.StatusCode.INVALID_ARGUMENT),
    (PlacementError, grpc.StatusCode.INVALID_ARGUMENT),
    (WeightsError, grpc.StatusCode.FAILED_PRECONDITION),
    (PlanRequestError, grpc.StatusCode.INVALID_ARGUMENT),
    (NotReadyError, grpc.StatusCode.UNAVAILABLE),
    (ProfileError, grpc.StatusCode.INVALID_ARGUMENT),
)


def code_for(exc: BaseException) -> grpc.StatusCode:
    """The status code a domain error maps to (INTERNAL for anything unexpected)."""
    for kind, code in _CODES:
        if isinstance(exc, kind):
            return code
    return grpc.StatusCode.INTERNAL


def domain_errors(
    what: str,
) -> Callable[[Callable[..., _Reply]], Callable[..., _Reply]]:
    """Decorate a servicer method: a domain error ends the RPC with its status code.

    The servicers stay thin: the method converts, calls the library and returns; the
    mapping of :class:`~collabdnn.errors.CollabError` to a code lives here, once.
    """

    def wrap(method: Callable[..., _Reply]) -> Callable[..., _Reply]:
        @functools.wraps(method)
        def handler(self: Any, request: Any, context: grpc.ServicerContext) -> _Reply:
            try:
                return method(self, request, context)
            except CollabError as exc:
                abort_for(context, exc, what)

        return handler

    return wrap


def abort_for(context: grpc.ServicerContext, exc: BaseException, what: str = "") -> NoReturn:
    """End the RPC with ``exc``'s status code and message; logs it on the way out."""
    code = code_for(exc)
    message = str(exc) or type(exc).__name__
    if code is grpc.StatusCode.INTERNAL:
        log.exception("%s failed unexpectedly", what or "request", exc_info=exc)
        message = f"internal error: {type(exc).__name__}: {message}"
    else:
        log.info("%s refused (%s): %s", what or "request", code.name, message)
    context.abort(code, message)
    raise AssertionError("context.abort returned")  # pragma: no cover
