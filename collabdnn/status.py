"""Domain errors -> gRPC status codes, in one table.

A request that is wrong in itself (bad model name, range, tensor, frame, image,
placement) is INVALID_ARGUMENT: retrying it cannot help. A weights mismatch is
FAILED_PRECONDITION: the request is fine but the two sides hold different parameters,
so the system is not in a state to run it. A service that is still starting (the
scheduler before its first plan) is UNAVAILABLE: retry shortly. Anything else is a bug:
INTERNAL.
"""

from __future__ import annotations

import logging
from typing import NoReturn

import grpc

from collabdnn.errors import (
    CodecError,
    ImageError,
    NotReadyError,
    PlanRequestError,
    TensorMismatchError,
    UnitRangeError,
    UnknownModelError,
    WeightsError,
)
from collabdnn.placement import PlacementError

log = logging.getLogger(__name__)

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
)


def code_for(exc: BaseException) -> grpc.StatusCode:
    """The status code a domain error maps to (INTERNAL for anything unexpected)."""
    for kind, code in _CODES:
        if isinstance(exc, kind):
            return code
    return grpc.StatusCode.INTERNAL


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
