"""The CloudServer RPCs, thin over :class:`~cloud_server.cloud.Cloud`.

Each handler converts the request with :mod:`collabdnn.wire.serde`, calls the cloud and
converts the reply back; :func:`collabdnn.wire.status.rpc` maps domain errors to status
codes, so a bad request gets a precise message and the server keeps serving.

Execute calls are admitted through one bounded queue (``--max-queue``, ``--workers``),
Profile calls through their own, of one: profiling is serialised in the process anyway,
and a flood of Profile calls must not take the places of Execute calls. Both stop at the
next unit boundary when their caller has gone or the server's grace period is over
(:func:`collabdnn.bounds.stop_check`).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

import grpc
import psutil

from cloud_server.batching import Batcher, BatchSettings, describe, exact_units
from cloud_server.capacity import ServiceCounters
from cloud_server.cloud import Cloud
from collabdnn.bounds import RequestLimits, stop_check
from collabdnn.codec import DEFAULT_MAX_BYTES
from collabdnn.model.split_model import SplitModel
from collabdnn.services import Load
from collabdnn.transport.admission import Admission
from collabdnn.transport.server import InFlight
from collabdnn.wire import serde
from collabdnn.wire.proto import cloud_pb2_grpc
from collabdnn.wire.status import Ready, rpc

if TYPE_CHECKING:
    from collabdnn.wire import messages

log = logging.getLogger(__name__)


class CpuSampler:
    """The process's CPU percentage, sampled at most every ``every_s`` seconds.

    ``psutil.cpu_percent`` costs about 0.16 ms; every Execute reply reports the load, so
    sampling it per reply would add that to every hop. A sample over the last half
    second is also the steadier figure for a scheduler to read.
    """

    def __init__(self, every_s: float = 0.5) -> None:
        self.every_s = every_s
        self._lock = threading.Lock()
        psutil.cpu_percent(interval=None)  # the first sample is meaningless; prime it
        self._at = time.monotonic()
        self._value = 0.0

    def percent(self) -> float:
        now = time.monotonic()
        if now - self._at >= self.every_s and self._lock.acquire(blocking=False):
            try:
                self._value, self._at = psutil.cpu_percent(interval=None), now
            finally:
                self._lock.release()
        return self._value


class CloudServicer(cloud_pb2_grpc.CloudServerServicer):
    """Serves one model; UNAVAILABLE until the loader has set :attr:`model`."""

    def __init__(
        self,
        max_frame_bytes: int = DEFAULT_MAX_BYTES,
        admission: Admission | None = None,
        limits: RequestLimits | None = None,
        halt: threading.Event | None = None,
        batching: BatchSettings | None = None,
    ) -> None:
        self.cloud: Ready[Cloud] = Ready()
        self.batching = batching or BatchSettings()  # off unless --batch-max > 1
        self.max_frame_bytes = max_frame_bytes
        self.limits = limits or RequestLimits()
        # Execute calls are admitted through one bounded queue (--max-queue).
        self.admission = admission or Admission(64, 8, name="Execute calls")
        self.profile_admission = Admission(1, name="Profile calls")
        self.halt = halt or threading.Event()  # set when the grace period on SIGTERM ends
        self.in_flight = InFlight()
        self.counters = ServiceCounters()  # uncontended unit times (the Capacity call)
        self.cpu = CpuSampler()

    @property
    def model(self) -> SplitModel:
        """The model served (NotReadyError while loading); setting it makes the
        service ready."""
        return self.cloud.get().model

    @model.setter
    def model(self, model: SplitModel) -> None:
        self.cloud.set(Cloud(model, self.max_frame_bytes, self.limits, self.batcher_for(model)))

    def batcher_for(self, model: SplitModel) -> Batcher | None:
        """With batching on, which units batch bit for bit is measured first (on the
        sample photos, at batch 2 and --batch-max), so that it is known before serving."""
        settings = self.batching
        if not settings.enabled:
            return None
        from collabdnn.samples import read_images, sample_images

        exact = exact_units(model, read_images(sample_images())[:2], sorted({2, settings.max_rows}))
        log.info(
            "dynamic batching: up to %d rows within %g ms per unit range, %s; %s",
            settings.max_rows, settings.timeout_ms, describe(exact, model),
            "inexact ranges batched too (--batch-inexact)" if settings.inexact
            else "only ranges of bit-exact units are batched",
        )  # fmt: skip
        return Batcher(model, settings, exact)

    def _load(self, in_flight: int) -> Load:
        return Load(in_flight, self.cpu.percent(), self.in_flight.served)

    # --- RPCs --------------------------------------------------------------------------

    @rpc("Execute")
    def Execute(
        self, request: messages.ExecuteRequest, context: grpc.ServicerContext
    ) -> messages.ExecuteReply:
        begin = time.perf_counter()
        cloud = self.cloud.get()
        call = serde.execute_request_from_proto(request)
        cloud.check(call)  # refused before it waits for a place or costs anything
        check = stop_check(context, self.halt)
        with self.admission.admit(context, "Execute", check), self.in_flight as in_flight:
            reply = cloud.run(call, lambda: self._load(in_flight), begin, check)
            alone = reply.batching.requests == 1 and self.in_flight.count == 1
            if in_flight == 1 and alone:  # it ran alone: a service time
                self.counters.record(reply.units)
        message = serde.execute_reply_to_proto(reply)
        # Everything this handler did, the reply's construction included, is server
        # time: the agent subtracts it from the round trip to measure the link.
        message.server_ms = (time.perf_counter() - begin) * 1e3
        return message

    @rpc("Profile")
    def Profile(
        self, request: messages.ProfileRequest, context: grpc.ServicerContext
    ) -> messages.ProfileReply:
        cloud = self.cloud.get()
        query = serde.profile_query_from_proto(request)
        check = stop_check(context, self.halt)
        with self.profile_admission.admit(context, "Profile"), self.in_flight:
            return serde.profile_reply_to_proto(cloud.profile(query, check))

    @rpc("Info")
    def Info(
        self, request: messages.InfoRequest, context: grpc.ServicerContext
    ) -> messages.ServiceInfo:
        cloud = self.cloud.get()
        return serde.service_info_to_proto(cloud.info(self._load(self.in_flight.count)))

    @rpc("Capacity")
    def Capacity(
        self, request: messages.CapacityRequest, context: grpc.ServicerContext
    ) -> messages.CloudCapacity:
        import torch

        self.cloud.get()  # UNAVAILABLE while loading, like every other call
        load = self._load(self.in_flight.count)
        capacity = self.counters.capacity(self.admission.concurrency, torch.get_num_threads(), load)
        return serde.cloud_capacity_to_proto(capacity)
