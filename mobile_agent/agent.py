"""The agent core: run a placement over the model's units, one image at a time.

Units on the mobile side run here; each maximal run of cloud units goes to the cloud's
Execute in one call. Before offloading, the agent checks that the cloud holds the same
model and weights (by hash); across a mismatch, or with the cloud unreachable, it runs
every unit locally and says so (``fallback``) rather than mixing parameters.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import grpc
import torch

from collabdnn.codec import CodecConfig, encode
from collabdnn.placement import CLOUD, MOBILE, Placement, Plan, segments
from collabdnn.results import ClassifyResult, Prediction, Transfer, UnitTiming
from collabdnn.rpc import ChannelPool
from collabdnn.split_model import SplitModel, imagenet_labels
from mobile_agent.cloud_client import CloudClient
from mobile_agent.link_monitor import LinkMonitor

log = logging.getLogger(__name__)

_WORDS = {MOBILE: "mobile", CLOUD: "cloud"}

# cloud_state values
UNCHECKED, VERIFIED, MISMATCH, UNREACHABLE = "unchecked", "verified", "mismatch", "unreachable"


@dataclass(frozen=True)
class AgentSettings:
    cloud: str = ""  # HOST:PORT of the cloud server; "" = none
    timeout_s: float = 30.0  # deadline of every Execute call
    info_timeout_s: float = 5.0  # deadline of the identity check
    recheck_s: float = 10.0  # how often a failed identity check is retried
    codec: CodecConfig = field(default_factory=CodecConfig)
    max_frame_bytes: int = 512 * 1024 * 1024


class MobileAgent:
    """Holds the whole model and the current plan; thread-safe."""

    def __init__(self, model: SplitModel, plan: Plan, pool: ChannelPool,
                 settings: AgentSettings, link: LinkMonitor | None = None) -> None:
        plan.placement.resolve(model.num_units)  # PlacementError if the plan does not fit
        self.model = model
        self.settings = settings
        self._plan = plan
        self._pool = pool
        self.link = link or LinkMonitor()  # link estimate, emulation, energy pricing
        self._lock = threading.Lock()
        self._check_lock = threading.Lock()  # one identity check at a time
        self.cloud_state = UNCHECKED
        self._checked_at = 0.0
        out_features = model.units[-1].output_shape[-1]
        self._labels = imagenet_labels() if out_features == 1000 else None

    # --- plan --------------------------------------------------------------------------

    @property
    def plan(self) -> Plan:
        with self._lock:
            return self._plan

    def set_plan(self, plan: Plan) -> Plan:
        plan.placement.resolve(self.model.num_units)  # PlacementError if it does not fit
        with self._lock:
            self._plan = plan
        log.info("new plan %s from %s: %s", plan.plan_id or "-", plan.source or "-",
                 plan.placement)
        return plan

    # --- the cloud ---------------------------------------------------------------------

    def cloud(self) -> CloudClient:
        channel = self._pool.get(self.settings.cloud)
        return CloudClient(channel, self.settings.cloud, self.settings.timeout_s,
                           self.settings.max_frame_bytes)

    def check_cloud(self) -> str:
        """Compare the cloud's model and weights hash with ours; returns the new state."""
        if not self.settings.cloud:
            return UNREACHABLE
        try:
            info = self.cloud().info(self.settings.info_timeout_s)
        except grpc.RpcError as exc:
            state = UNREACHABLE
            log.warning("cloud %s unreachable (%s): cloud units will run locally",
                        self.settings.cloud, exc.code().name)  # type: ignore[attr-defined]
        else:
            if info.model != self.model.name or info.weights_hash != self.model.weights_hash:
                state = MISMATCH
                log.error(
                    "REFUSING TO OFFLOAD: cloud %s holds %s with weights hash %s (%s), this "
                    "agent holds %s with %s (%s); every unit will run locally",
                    self.settings.cloud, info.model, info.weights_hash, info.weights,
                    self.model.name, self.model.weights_hash, self.model.weights)
            else:
                state = VERIFIED
                log.info("cloud %s verified: %s, weights hash %s", self.settings.cloud,
                         info.model, info.weights_hash)
        with self._lock:
            self.cloud_state, self._checked_at = state, time.monotonic()
        return state

    def cloud_usable(self) -> bool:
        with self._check_lock:  # requests arriving during a check wait for its answer
            with self._lock:
                state, age = self.cloud_state, time.monotonic() - self._checked_at
            if state == UNCHECKED or (state != VERIFIED and age >= self.settings.recheck_s):
                state = self.check_cloud()
        return state == VERIFIED

    # --- classification ----------------------------------------------------------------

    def classify(self, image: bytes, placement: Placement | None = None, top_k: int = 5,
                 return_logits: bool = False) -> ClassifyResult:
        """Classify one image under ``placement`` (the current plan when ``None``)."""
        begin = time.perf_counter()
        # The plan is read once: a plan pushed meanwhile applies to the next request.
        sides = (placement or self.plan.placement).resolve(self.model.num_units)
        fallback = False
        if CLOUD in sides and not self.cloud_usable():
            sides, fallback = (MOBILE,) * len(sides), True
        units = [UnitTiming(u.index, u.name, _WORDS[sides[u.index]]) for u in self.model.units]
        transfers: list[Transfer] = []
        request_id = uuid.uuid4().hex[:12]
        x: Any = image
        for segment in segments(sides):
            if segment.side == MOBILE:
                x, times = self.model.run_timed(segment.start, segment.end, x)
                for offset, ms in enumerate(times):
                    units[segment.start + offset].compute_ms = ms
            else:
                x = self._run_cloud(segment.start, segment.end, x, units, transfers, request_id)
        logits = x.float()
        top = self._top(logits, top_k)
        return ClassifyResult(
            top=top,
            placement=tuple(sides),
            latency_ms=(time.perf_counter() - begin) * 1e3,
            bytes_up=sum(t.bytes for t in transfers if t.upload),
            bytes_down=sum(t.bytes for t in transfers if not t.upload),
            mobile_energy_mj=self.link.energy_mj(units, transfers),
            fallback=fallback,
            emulated_link=self.link.emulated and bool(transfers),
            units=units,
            transfers=transfers,
            logits_frame=encode(x, CodecConfig(level=0)) if return_logits else b"",
        )

    def _run_cloud(self, start: int, end: int, x: Any, units: list[UnitTiming],
                   transfers: list[Transfer], request_id: str) -> Any:
        """One Execute call for units ``[start, end)``; records its timings and bytes."""
        with self.link.busy():  # no link probes while a real call is on the link
            call = self.cloud().execute(self.model.name, self.model.weights_hash, start, end,
                                        x, self.settings.codec, request_id)
        call = self.link.after_call(call)  # emulated airtime, then a link observation
        for timing in call.reply.units:
            units[timing.index].compute_ms = timing.compute_ms
        up = Transfer(start - 1, True, call.bytes_up, call.encode_ms, call.network_ms,
                      call.reply.decode_ms)
        down = Transfer(end - 1, False, call.bytes_down, call.reply.encode_ms, 0.0,
                        call.decode_ms)
        transfers += [up, down]
        for crossing in (up, down):
            if crossing.after_unit >= 0:
                unit = units[crossing.after_unit]
                unit.encode_ms, unit.transfer_ms = crossing.encode_ms, crossing.transfer_ms
                unit.decode_ms, unit.bytes = crossing.decode_ms, crossing.bytes
        return call.output

    def _top(self, logits: torch.Tensor, k: int) -> list[Prediction]:
        probs = torch.softmax(logits.reshape(-1), dim=0)
        values, indices = probs.topk(min(k, probs.numel()))
        return [
            Prediction(int(i), self._labels[int(i)] if self._labels else f"class {int(i)}",
                       float(v))
            for v, i in zip(values.tolist(), indices.tolist(), strict=True)
        ]
