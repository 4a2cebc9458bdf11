"""The CloudServer RPCs, thin over :class:`~collabdnn.model.split_model.SplitModel`.

Each handler converts with :mod:`collabdnn.wire.serde`, calls the library, and maps domain
errors to status codes with :func:`collabdnn.wire.status.abort_for`, so a bad request gets a
precise message and the server keeps serving.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import grpc
import psutil

from collabdnn.codec import DEFAULT_MAX_BYTES, encode
from collabdnn.errors import (
    CollabError,
    ImageError,
    TensorMismatchError,
    UnitRangeError,
    UnknownModelError,
    WeightsError,
)
from collabdnn.measure.profile_service import handle_profile
from collabdnn.model.registry import get_spec
from collabdnn.model.split_model import SplitModel
from collabdnn.transport.admission import Admission
from collabdnn.transport.server import InFlight
from collabdnn.wire import serde
from collabdnn.wire.proto import cloud_pb2, cloud_pb2_grpc, common_pb2, tensor_pb2
from collabdnn.wire.status import abort_for

log = logging.getLogger(__name__)


class CloudServicer(cloud_pb2_grpc.CloudServerServicer):
    """Serves one model; ``model`` is ``None`` until the loader has finished."""

    def __init__(
        self, max_frame_bytes: int = DEFAULT_MAX_BYTES, admission: Admission | None = None
    ) -> None:
        self.model: SplitModel | None = None
        self.max_frame_bytes = max_frame_bytes
        # Execute and Profile are admitted through one bounded queue (--max-queue).
        self.admission = admission or Admission(64, 8, name="Execute/Profile calls")
        self.in_flight = InFlight()
        psutil.cpu_percent(interval=None)  # the first sample is meaningless; prime it

    # --- helpers -----------------------------------------------------------------------

    def _require_model(self, context: grpc.ServicerContext) -> SplitModel:
        if self.model is None:
            context.abort(grpc.StatusCode.UNAVAILABLE, "the model is still loading; retry shortly")
        return self.model  # type: ignore[return-value]

    @staticmethod
    def _check_caller(model: SplitModel, name: str, weights_hash: str) -> None:
        """Same model, same parameters, or refuse: mixing weights gives silent garbage."""
        if name != model.name:
            get_spec(name)  # UnknownModelError for a name outside the registry
            raise UnknownModelError(f"this server serves model {model.name!r}, not {name!r}")
        if weights_hash != model.weights_hash:
            raise WeightsError(
                f"caller's weights hash {weights_hash or '(none)'!r} differs from this server's "
                f"{model.weights_hash!r} ({model.name}, weights {model.weights!r}); "
                "both sides must hold the same weights"
            )

    def _load(self, in_flight: int) -> common_pb2.Load:
        return common_pb2.Load(
            in_flight=in_flight,
            cpu_percent=psutil.cpu_percent(interval=None),
            served=self.in_flight.served,
        )

    # --- RPCs --------------------------------------------------------------------------

    def Execute(
        self, request: cloud_pb2.ExecuteRequest, context: grpc.ServicerContext
    ) -> cloud_pb2.ExecuteReply:
        model = self._require_model(context)
        begin = time.perf_counter()
        with self.admission.admit(context, "Execute"), self.in_flight as in_flight:
            try:
                self._check_caller(model, request.model, request.weights_hash)
                start, end = request.start, request.end
                model.check_range(start, end)
                if start >= end:
                    raise UnitRangeError(f"unit range [{start}, {end}) is empty")
                x, decode_ms = self._input(request, start)
                output, times = model.run_timed(start, end, x)
                tick = time.perf_counter()
                frame = encode(output, serde.codec_from_proto(request.reply_codec))
                encode_ms = (time.perf_counter() - tick) * 1e3
            except CollabError as exc:
                abort_for(context, exc, f"Execute[{request.start}, {request.end})")
            server_ms = (time.perf_counter() - begin) * 1e3
            log.debug(
                "Execute %s [%d, %d) in %.1f ms, %d bytes out",
                request.request_id,
                start,
                end,
                server_ms,
                len(frame),
            )
            return cloud_pb2.ExecuteReply(
                output=tensor_pb2.Tensor(frame=frame),
                units=[
                    cloud_pb2.UnitTime(index=start + i, compute_ms=ms) for i, ms in enumerate(times)
                ],
                decode_ms=decode_ms,
                encode_ms=encode_ms,
                server_ms=server_ms,
                load=self._load(in_flight),
            )

    def _input(self, request: cloud_pb2.ExecuteRequest, start: int) -> tuple[Any, float]:
        """The request's input for unit ``start``, and how long decoding it took."""
        kind = request.WhichOneof("input")
        if start == 0:
            if kind != "images":
                raise TensorMismatchError("unit 0 (preprocess) takes encoded images, not a tensor")
            if not request.images.images:
                raise ImageError("no images given")
            return [bytes(b) for b in request.images.images], 0.0
        if kind != "tensor":
            raise TensorMismatchError(
                f"unit {start} takes the output tensor of unit {start - 1}, not images"
            )
        tick = time.perf_counter()
        tensor = serde.tensor_from_proto(request.tensor, self.max_frame_bytes)
        return tensor, (time.perf_counter() - tick) * 1e3

    def Profile(
        self, request: cloud_pb2.ProfileRequest, context: grpc.ServicerContext
    ) -> cloud_pb2.ProfileReply:
        model = self._require_model(context)
        with self.admission.admit(context, "Profile"), self.in_flight:
            try:
                return handle_profile(model, "cloud", request)
            except CollabError as exc:
                abort_for(context, exc, "Profile")

    def Info(
        self, request: common_pb2.InfoRequest, context: grpc.ServicerContext
    ) -> common_pb2.ServiceInfo:
        model = self._require_model(context)
        return serde.service_info_to_proto("cloud", model, self._load(self.in_flight.count))
