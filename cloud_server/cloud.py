"""The cloud's work, free of gRPC: run any unit range for a caller with the same weights.

:class:`Cloud` holds the loaded model. :meth:`Cloud.execute` checks that the caller holds
the same model and weights (mixing parameters gives silent garbage), checks the range
and its input, runs the units and encodes the output; it raises domain errors
(:mod:`collabdnn.errors`), which the servicer maps to status codes.

The work of one call is bounded before it starts (:mod:`collabdnn.bounds`): a tensor
must have exactly the shape its first unit takes, with a batch of at most
``limits.max_batch``, which is read from the frame's header before its payload is
decoded; images at unit 0 are at most ``max_batch`` and ``max_request_bytes``, and so are
uint8 crops (a plan's ``crop:*`` photo codec), each also checked from its header to be
exactly the model's crop x crop RGB before it is decoded. Work
stops at the next unit boundary once ``should_stop`` says so (the caller left).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from cloud_server.batching import Batcher
from collabdnn.bounds import RequestLimits, StopCheck
from collabdnn.codec import DEFAULT_MAX_BYTES, decode, dtype_name, encode, read_header
from collabdnn.errors import (
    ImageError,
    TensorMismatchError,
    UnitRangeError,
    UnknownModelError,
    WeightsError,
)
from collabdnn.measure.profile_service import ProfileQuery, handle_profile
from collabdnn.model.image_boundary import CropBatch
from collabdnn.model.registry import known_model
from collabdnn.model.split_model import SplitModel
from collabdnn.placement import Side
from collabdnn.planning.profiles import Profile
from collabdnn.services import BatchInfo, ExecuteReply, ExecuteRequest, Load, ServiceInfo, UnitTime

log = logging.getLogger(__name__)


class Cloud:
    """One loaded model, served to callers that hold the same weights."""

    def __init__(
        self,
        model: SplitModel,
        max_frame_bytes: int = DEFAULT_MAX_BYTES,
        limits: RequestLimits | None = None,
        batcher: Batcher | None = None,
    ) -> None:
        self.model = model
        self.max_frame_bytes = max_frame_bytes
        self.limits = limits or RequestLimits()
        self.batcher = batcher  # dynamic batching (cloud_server.batching); None = off

    def check_caller(self, name: str, weights_hash: str) -> None:
        """Same model, same parameters, or refuse: mixing weights gives silent garbage."""
        model = self.model
        if name != model.name:
            # Refused before anything is imported: a custom package.module:factory name
            # is resolved only for the model this server was started with.
            if not known_model(name):
                raise UnknownModelError(
                    f"unknown model {name!r}: this server serves model {model.name!r} only"
                )
            raise UnknownModelError(f"this server serves model {model.name!r}, not {name!r}")
        if weights_hash != model.weights_hash:
            raise WeightsError(
                f"caller's weights hash {weights_hash or '(none)'!r} differs from this server's "
                f"{model.weights_hash!r} ({model.name}, weights {model.weights!r}); "
                "both sides must hold the same weights"
            )

    def check(self, request: ExecuteRequest) -> None:
        """Everything that can be known wrong about a request before any work: the
        caller's model and weights, the range, and the size of its input (for a tensor,
        from the frame's header: its dtype and shape, the batch at most ``max_batch``)."""
        self.check_caller(request.model, request.weights_hash)
        start, end = request.start, request.end
        self.model.check_range(start, end)
        if start >= end:
            raise UnitRangeError(f"unit range [{start}, {end}) is empty")
        if start == 0:
            images = request.images if request.crops is None else request.crops
            if images is None:
                raise TensorMismatchError("unit 0 (preprocess) takes encoded images, not a tensor")
            if not images:
                raise ImageError("no images given")
            # Crops are bounded again from their headers, before any pixel is decoded
            # (exactly crop x crop RGB: collabdnn.model.image_boundary.decode_crop).
            self.limits.check_images(images, "Execute", self.limits.max_batch)
            return
        if request.tensor is None:
            raise TensorMismatchError(
                f"unit {start} takes the output tensor of unit {start - 1}, not images"
            )
        header = read_header(request.tensor, self.max_frame_bytes)
        self.model.check_tensor(start, dtype_name(header.dtype), header.shape)
        self.limits.check_batch(header.shape[0], f"the tensor for unit {start}")

    def execute(
        self,
        request: ExecuteRequest,
        load: Callable[[], Load],
        begin: float | None = None,
        should_stop: StopCheck | None = None,
    ) -> ExecuteReply:
        """:meth:`check` the request, then :meth:`run` it."""
        begin = time.perf_counter() if begin is None else begin
        self.check(request)
        return self.run(request, load, begin, should_stop)

    def run(
        self,
        request: ExecuteRequest,
        load: Callable[[], Load],
        begin: float | None = None,
        should_stop: StopCheck | None = None,
    ) -> ExecuteReply:
        """Run units ``[start, end)`` of a request that passed :meth:`check` (the
        servicer checks before admission, and checking again cost 0.03 ms of every hop);
        ``begin`` (perf_counter) is when the request arrived, ``load()`` the load to
        report with the reply; ``should_stop()`` is called at each unit boundary (see
        :mod:`collabdnn.bounds`)."""
        begin = time.perf_counter() if begin is None else begin
        start, end = request.start, request.end
        x, decode_ms = self._input(request)
        if self.batcher is not None:
            output, times, batching = self.batcher.run(start, end, x, should_stop)
        else:
            output, times = self.model.run_timed(start, end, x, should_stop)
            batching = BatchInfo()
        if should_stop is not None:
            should_stop()
        tick = time.perf_counter()
        frame = encode(output, request.reply_codec)
        encode_ms = (time.perf_counter() - tick) * 1e3
        server_ms = (time.perf_counter() - begin) * 1e3
        log.debug(
            "Execute %s [%d, %d) in %.1f ms, %d bytes out",
            request.request_id,
            start,
            end,
            server_ms,
            len(frame),
        )
        return ExecuteReply(
            output=frame,
            units=tuple(UnitTime(start + i, ms) for i, ms in enumerate(times)),
            decode_ms=decode_ms,
            encode_ms=encode_ms,
            server_ms=server_ms,
            load=load(),
            batching=batching,
        )

    def _input(self, request: ExecuteRequest) -> tuple[Any, float]:
        """The (checked) request's input for unit ``start``, and how long decoding took."""
        if request.start == 0 and request.crops is not None:
            return CropBatch(request.crops), 0.0
        if request.start == 0:
            return list(request.images or ()), 0.0
        assert request.tensor is not None  # check() made sure
        tick = time.perf_counter()
        tensor = decode(request.tensor, self.max_frame_bytes)
        return tensor, (time.perf_counter() - tick) * 1e3

    def profile(self, query: ProfileQuery, should_stop: StopCheck | None = None) -> Profile:
        return handle_profile(self.model, Side.CLOUD, query, self.limits, should_stop)

    def info(self, load: Load) -> ServiceInfo:
        return ServiceInfo.describe(Side.CLOUD, self.model, load)
