"""The agent core: run a placement over the model's units, one image at a time.

Units on the mobile side run here; each maximal run of cloud units goes to the cloud's
Execute in one call. Before offloading, the agent checks that the cloud holds the same
model and weights (by hash); across a mismatch, or with the cloud unreachable, it runs
every unit locally and says so (``fallback``) rather than mixing parameters.

No classification is lost because of the cloud: when an Execute call fails (cloud
down, deadline missed, an error) the agent finishes the remaining units itself from
the last activation it holds, and the result says ``fallback``. A circuit breaker
(:mod:`collabdnn.transport.breaker`) then keeps requests off the cloud for ``breaker_reset_s``,
so that they do not each wait for a dead cloud; after that one background probe (an
Info call: health and identity at once) decides whether offloading resumes. Requests
never wait for the probe. A cloud reply that is not what unit ``end - 1`` must give (its
shape for the request's batch, its dtype, finite floats) is such a failure too.

The work of a request is bounded before it starts (images and bytes per request,
:mod:`collabdnn.bounds`) and stops at the next unit boundary, or between its images,
once its caller has gone (``should_stop``). No Execute call outlives the caller's own
deadline (``deadline``): a call cut by it is the caller's loss, not the cloud's fault,
so neither the breaker nor the call budget hears of it. See docs/failure.md.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import torch

from collabdnn.bounds import RequestLimits, StopCheck
from collabdnn.codec import CodecConfig, encode
from collabdnn.crossing import PHOTO, crop_format, is_photo_codec, parse_tensor_codec
from collabdnn.errors import CodecError, DeadlineError, ImageError
from collabdnn.measure.profile_service import ProfileQuery, handle_profile
from collabdnn.model.split_model import SplitModel
from collabdnn.placement import AssignedPlan, Placement, PlacementError, Side, segments
from collabdnn.planning.profiles import Profile
from collabdnn.results import ClassifyResult, Prediction, Transfer, UnitTiming
from collabdnn.services import AgentInfo, ClassifyRequest, Load, ServiceInfo
from collabdnn.transport.breaker import CLOSED, HALF_OPEN, CircuitBreaker
from collabdnn.transport.channels import ChannelPool
from collabdnn.transport.security import tls_refusal
from collabdnn.wire.stubs import PendingExecute
from mobile_agent.budget import DEFAULT_FACTOR, DEFAULT_FLOOR_MS, CallBudget
from mobile_agent.cloud_client import BudgetSpent, CloudCall, CloudClient
from mobile_agent.link_monitor import LinkMonitor, Span

log = logging.getLogger(__name__)

MAX_TOP_K = 1000
DEFAULT_TOP_K = 5

# cloud_state values; "refused": the cloud rejected this agent's token or certificate
UNCHECKED, VERIFIED, MISMATCH, UNREACHABLE = "unchecked", "verified", "mismatch", "unreachable"
REFUSED = "refused"

# Codes by which the cloud says that this one request is wrong rather than that the
# cloud is unwell: the breaker is left alone. The request still finishes locally, where
# a bad image is refused with the agent's own INVALID_ARGUMENT (the client's fault is
# reported, not hidden by the fallback).
_REQUEST_FAULTS = frozenset({grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.OUT_OF_RANGE})
_CREDENTIAL_FAULTS = frozenset({grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED})


@dataclass(frozen=True)
class AgentSettings:
    cloud: str = ""  # HOST:PORT of the cloud server; "" = none
    timeout_s: float = 30.0  # deadline of every Execute call
    info_timeout_s: float = 5.0  # deadline of the identity check
    breaker_reset_s: float = 2.0  # after a cloud failure, run locally this long, then probe
    breaker_failures: int = 1  # consecutive cloud failures that open the breaker
    codec: CodecConfig = field(default_factory=CodecConfig)
    max_frame_bytes: int = 512 * 1024 * 1024
    # Each Execute's deadline: max(floor, factor x that segment's recent call time),
    # at most timeout_s (mobile_agent.budget).
    call_budget_factor: float = DEFAULT_FACTOR
    call_budget_floor_ms: float = DEFAULT_FLOOR_MS
    # While no call succeeded for this long, check the cloud (Info, health_timeout_s) and
    # open the breaker if it does not answer: a hung cloud is noticed while idle. 0 = off.
    health_watch_s: float = 5.0
    health_timeout_s: float = 2.0
    limits: RequestLimits = field(default_factory=RequestLimits)  # images, bytes, batch


class MobileAgent:
    """Holds the whole model and the current plan; thread-safe."""

    def __init__(
        self,
        model: SplitModel,
        plan: AssignedPlan,
        pool: ChannelPool,
        settings: AgentSettings,
        link: LinkMonitor | None = None,
    ) -> None:
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
        self.breaker = CircuitBreaker(
            settings.breaker_failures,
            settings.breaker_reset_s,
            name=f"cloud {settings.cloud or '(none)'}",
        )
        self.budget = CallBudget(
            settings.call_budget_factor, settings.call_budget_floor_ms, settings.timeout_s
        )
        self._last_ok = time.monotonic()  # when a cloud call or check last succeeded
        self._unreachable_at = 0.0  # perf_counter time a check last failed
        self._in_flight = 0  # Execute calls in flight (the watch leaves those alone)
        self._watch_stop = threading.Event()
        self._watch: threading.Thread | None = None
        self._watch_lock = threading.Lock()
        self._labels = model.labels
        self._client: CloudClient | None = None  # of the pool's channel to the cloud

    # --- plan --------------------------------------------------------------------------

    @property
    def plan(self) -> AssignedPlan:
        with self._lock:
            return self._plan

    def uses_cloud(self) -> bool:
        """Whether the current plan puts any unit in the cloud."""
        return Side.CLOUD in self.plan.placement.resolve(self.model.num_units)

    def set_plan(self, plan: AssignedPlan) -> AssignedPlan:
        plan.placement.resolve(self.model.num_units)  # PlacementError if it does not fit
        with self._lock:
            self._plan = plan
        log.info("new plan %s from %s: %s", plan.plan_id or "-", plan.source or "-", plan.placement)
        return plan

    # --- the cloud ---------------------------------------------------------------------

    def cloud(self) -> CloudClient:
        """The client of the cloud's channel: one per channel, shared by every call."""
        channel = self._pool.get(self.settings.cloud)
        client = self._client
        if client is None or client.channel is not channel:
            client = CloudClient(
                channel, self.settings.cloud, self.settings.timeout_s, self.settings.max_frame_bytes
            )
            self._client = client
        return client

    def check_cloud(self, wait_for_ready: bool = False) -> str:
        """Compare the cloud's model and weights hash with ours; returns the new state."""
        if not self.settings.cloud:
            return UNREACHABLE
        timeout = self.settings.info_timeout_s
        if wait_for_ready:  # a background probe: bounded by the breaker's period too
            timeout = max(1.0, min(timeout, self.settings.breaker_reset_s))
        try:
            info = self.cloud().info(timeout, wait_for_ready=wait_for_ready)
        except grpc.RpcError as exc:
            code = exc.code()
            if code in _CREDENTIAL_FAULTS:
                state = REFUSED
                log.error(
                    "cloud %s REFUSED this agent (%s: %s): check that --token and the "
                    "TLS certificates match the cloud's; cloud units will run locally",
                    self.settings.cloud,
                    code.name,
                    exc.details(),
                )
            elif refusal := self._tls_refusal(code, exc.details()):
                state = REFUSED
                log.error(
                    "cloud %s REFUSED this agent in the TLS handshake (%s): %s; cloud units "
                    "will run locally",
                    self.settings.cloud,
                    code.name,
                    refusal,
                )
            else:
                state = UNREACHABLE
                log.warning(
                    "cloud %s unreachable (%s): cloud units will run locally",
                    self.settings.cloud,
                    code.name,
                )
        else:
            if info.model != self.model.name or info.weights_hash != self.model.weights_hash:
                state = MISMATCH
                log.error(
                    "REFUSING TO OFFLOAD: cloud %s holds %s with weights hash %s (%s), this "
                    "agent holds %s with %s (%s); every unit will run locally",
                    self.settings.cloud,
                    info.model,
                    info.weights_hash,
                    info.weights,
                    self.model.name,
                    self.model.weights_hash,
                    self.model.weights,
                )
            else:
                state = VERIFIED
                log.info(
                    "cloud %s verified: %s, weights hash %s",
                    self.settings.cloud,
                    info.model,
                    info.weights_hash,
                )
        with self._lock:
            self.cloud_state, self._checked_at = state, time.monotonic()
        return state

    def _tls_refusal(self, code: grpc.StatusCode, details: str | None) -> str | None:
        """Under TLS, a refused client certificate looks like a cloud that is down
        (UNAVAILABLE, or a deadline while waiting to connect); one handshake tells."""
        if code not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            return None
        return tls_refusal(self.settings.cloud, self._pool.security_config, details or "")

    def _probe(self, wait_for_ready: bool = False) -> str:
        """Check the cloud's identity and tell the breaker how it went (never raises:
        a probe that ended without a verdict would leave the breaker half-open for good)."""
        try:
            state = self.check_cloud(wait_for_ready)
        except Exception:
            log.exception("checking cloud %s failed", self.settings.cloud)
            with self._lock:
                state = self.cloud_state = UNREACHABLE
        if state == VERIFIED:
            self._last_ok = time.monotonic()
            self.breaker.record_success()
        else:
            self._unreachable_at = time.perf_counter()
            self.breaker.record_failure(f"cloud {state}")
        return state

    def cloud_usable(self) -> bool:
        """Whether a request may offload now; never waits for a cloud known to be down.

        The first check of the cloud's identity is synchronous (requests arriving
        meanwhile wait for its answer, bounded by ``info_timeout_s``). After that the
        breaker decides: closed, offload; open, run locally; half-open, start one
        background probe and run this request locally.
        """
        if not self.settings.cloud:
            return False
        if self.cloud_state == UNCHECKED:
            with self._check_lock:
                if self.cloud_state == UNCHECKED:
                    self._probe()
        state = self.breaker.state
        if state == CLOSED:
            if self.cloud_state == VERIFIED:
                return True
            # Closed yet unverified: a success raced with a refusal. Re-open, re-probe.
            self.breaker.record_failure(f"cloud {self.cloud_state}")
            return False
        if state == HALF_OPEN and self.breaker.allow():
            threading.Thread(
                target=self._probe, kwargs={"wait_for_ready": True}, name="cloud-probe", daemon=True
            ).start()
        return False

    # --- what the agent is ------------------------------------------------------------

    def describe(self, load: Load) -> AgentInfo:
        """The agent's Info: its model, its cloud, its plan and its link estimate."""
        return AgentInfo(
            info=ServiceInfo.describe(Side.MOBILE, self.model, load),
            cloud_address=self.settings.cloud,
            cloud_state=self.cloud_state,
            plan=self.plan,
            link=self.link.estimate(),
            scheduler_address=self.link.settings.scheduler,
        )

    def profile(self, query: ProfileQuery, should_stop: StopCheck | None = None) -> Profile:
        """This side's profile (the scheduler asks before planning)."""
        with self.link.busy():  # no link probes during the timings
            return handle_profile(self.model, Side.MOBILE, query, self.settings.limits, should_stop)

    # --- classification ----------------------------------------------------------------

    def check(self, request: ClassifyRequest) -> None:
        """What can be known wrong about a Classify request before any work: no images,
        more images or bytes than ``limits`` allow, ``top_k`` out of range, a placement
        that does not fit the model."""
        if not request.images:
            raise ImageError("no images given")
        self.settings.limits.check_images(request.images, "Classify")
        if not 0 <= request.top_k <= MAX_TOP_K:
            raise PlacementError(f"top_k must be in 0..{MAX_TOP_K}")
        if request.placement is not None:
            request.placement.resolve(self.model.num_units)
        AssignedPlan(Placement.mobile(), codecs=request.codecs)  # PlacementError if bad

    def classify_all(
        self,
        request: ClassifyRequest,
        should_stop: StopCheck | None = None,
        deadline: float | None = None,
    ) -> list[ClassifyResult]:
        """Each image of a Classify request on its own, under the request's placement;
        ``should_stop()`` is called between images and at every unit boundary, and no
        cloud call runs past ``deadline`` (the caller's, in ``time.monotonic()`` time;
        None: the flat ``timeout_s`` only)."""
        self.check(request)
        top_k = request.top_k or DEFAULT_TOP_K
        results = []
        with self.link.fits.request():  # link fits wait: they would hold the GIL meanwhile
            for image in request.images:
                if should_stop is not None:
                    should_stop()
                results.append(
                    self.classify(
                        image,
                        request.placement,
                        top_k,
                        request.return_logits,
                        should_stop,
                        dict(request.codecs) or None,
                        deadline,
                    )
                )
        return results

    def classify(
        self,
        image: bytes,
        placement: Placement | None = None,
        top_k: int = 5,
        return_logits: bool = False,
        should_stop: StopCheck | None = None,
        codecs: dict[int, str] | None = None,
        deadline: float | None = None,
    ) -> ClassifyResult:
        """Classify one image under ``placement`` (the current plan when ``None``),
        each crossing with its codec in ``codecs`` (default: the plan's codecs with the
        plan's placement, else the agent's codec); ``should_stop()`` is called at every
        unit boundary; no cloud call runs past ``deadline`` (see :meth:`classify_all`)."""
        begin = time.perf_counter()
        # The plan is read once: a plan pushed meanwhile applies to the next request.
        plan = self.plan
        sides = list((placement or plan.placement).resolve(self.model.num_units))
        # The plan's codec per crossing applies to the plan's placement only.
        if codecs is None:
            codecs = dict(plan.codecs) if placement is None else {}
        fallback = False
        if Side.CLOUD in sides and not self.cloud_usable():
            log.debug(
                "cloud %s not used (identity %s, breaker %s): running locally",
                self.settings.cloud or "(none)",
                self.cloud_state,
                self.breaker.state,
            )
            sides, fallback = [Side.MOBILE] * len(sides), True
        units = [UnitTiming(u.index, u.name, sides[u.index]) for u in self.model.units]
        transfers: list[Transfer] = []
        request_id = uuid.uuid4().hex[:12]
        x: Any = image
        for segment in segments(sides):
            if segment.side == Side.MOBILE:
                x = self._run_local(segment.start, segment.end, x, units, should_stop)
                continue
            if should_stop is not None:
                should_stop()
            try:
                x = self._run_cloud(
                    segment.start, segment.end, x, units, transfers, request_id, codecs, deadline
                )
            except _CloudFailed:
                # Finish every remaining unit here, from the input the cloud should
                # have consumed: the last activation (or the image) this agent holds.
                fallback = True
                for index in range(segment.start, len(sides)):
                    sides[index] = units[index].platform = Side.MOBILE
                x = self._run_local(segment.start, len(sides), x, units, should_stop)
                break
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

    def _run_local(
        self,
        start: int,
        end: int,
        x: Any,
        units: list[UnitTiming],
        should_stop: StopCheck | None = None,
    ) -> Any:
        """Units ``[start, end)`` on this device; records their compute times."""
        with self.link.computing():  # link measurements meanwhile are contended
            x, times = self.model.run_timed(start, end, x, should_stop)
        for offset, ms in enumerate(times):
            units[start + offset].compute_ms = ms
        return x

    def _run_cloud(
        self,
        start: int,
        end: int,
        x: Any,
        units: list[UnitTiming],
        transfers: list[Transfer],
        request_id: str,
        codecs: dict[int, str] | None = None,
        deadline: float | None = None,
    ) -> Any:
        """One Execute call for units ``[start, end)``; records its timings and bytes.

        ``codecs`` (the plan's, by boundary) says how ``x`` goes up and how the output
        comes back; a ``crop:FMT`` photo codec runs preprocessing's crop stage here and
        sends the lossless crop (its time counts as encoding). Raises
        :class:`_CloudFailed` (after logging why and telling the breaker) when the call
        fails for any reason, so that the caller finishes locally.

        The call's deadline is at most the caller's ``deadline``, a late reply included;
        a call cut by it raises DeadlineError (the caller has gone), blaming nobody.
        """
        client = self.cloud()
        limit_s = client.timeout_s  # this call's flat timeout: the caller's time left, at most
        if deadline is not None:
            limit_s = min(limit_s, max(deadline - time.monotonic(), 1e-3))
        capped = limit_s < client.timeout_s
        codecs = codecs or {}
        sent, crop_ms = x, 0.0
        fmt = crop_format(codecs.get(0, PHOTO)) if start == 0 else None
        if fmt is not None:
            tick = time.perf_counter()
            sent = self.model.crop_images(x, fmt)  # ImageError: the request's own fault
            crop_ms = (time.perf_counter() - tick) * 1e3
        asked = [(limit_s, 0)]  # this call's deadline and upload size

        def deadline_for(nbytes: int) -> float:
            asked.append((self.budget.deadline_s(start, end, nbytes), nbytes))
            return asked[-1][0]

        try:
            with self.link.busy() as span, self._calling():  # no probes, no watch meanwhile
                call = client.execute(
                    self.model.name,
                    self.model.weights_hash,
                    start,
                    end,
                    sent,
                    self._codec(codecs.get(start)),
                    request_id,
                    deadline_for=deadline_for,
                    reply_codec=self._codec(codecs.get(end)),
                    timeout_s=limit_s,
                )
        except BudgetSpent as spent:
            self.budget.missed(start, end, spent.bytes_up, spent.budget_s)
            self._cloud_failed(
                grpc.StatusCode.DEADLINE_EXCEEDED, str(spent), start, end, request_id
            )
            hold = contextlib.ExitStack()  # no link probes while the call runs on
            spans = (span, hold.enter_context(self.link.busy()))
            late = functools.partial(
                self._late_reply, spent=spent, start=start, end=end, hold=hold, spans=spans
            )
            spent.pending.add_done_callback(late)
            raise _CloudFailed from spent
        except grpc.RpcError as exc:
            code, details = exc.code(), exc.details()
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                budget_s, bytes_up = asked[-1]
                if capped and budget_s >= limit_s:  # the caller's deadline, not ours
                    raise DeadlineError("the caller's deadline passed during a cloud call") from exc
                self.budget.missed(start, end, bytes_up, budget_s)
                details = f"{details}: call budget {budget_s * 1e3:.0f} ms spent"
            self._cloud_failed(code, details, start, end, request_id)
            raise _CloudFailed from exc
        except CodecError as exc:  # the cloud's reply frame does not decode
            self._cloud_failed(grpc.StatusCode.DATA_LOSS, str(exc), start, end, request_id)
            raise _CloudFailed from exc
        if crop_ms:
            call = dataclasses.replace(call, encode_ms=call.encode_ms + crop_ms)
        problem = self._reply_problem(start, end, x, call.output)
        if problem:  # a reply that decodes but is not what unit end-1 gives: a cloud fault
            self._cloud_failed(grpc.StatusCode.DATA_LOSS, problem, start, end, request_id)
            raise _CloudFailed
        self._last_ok = time.monotonic()
        self.breaker.record_success()
        self.budget.observe(start, end, call.bytes_up, call.rpc_ms)
        # Emulated airtime, then a link observation (a bound only, if other work overlapped).
        call = self.link.after_call(call, contended=span.contended)
        for timing in call.reply.units:
            units[timing.index].compute_ms = timing.compute_ms
        up = Transfer(
            start - 1, True, call.bytes_up, call.encode_ms, call.network_ms, call.reply.decode_ms
        )
        down = Transfer(end - 1, False, call.bytes_down, call.reply.encode_ms, 0.0, call.decode_ms)
        transfers += [up, down]
        for crossing in (up, down):
            if crossing.after_unit >= 0:
                unit = units[crossing.after_unit]
                unit.encode_ms, unit.transfer_ms = crossing.encode_ms, crossing.transfer_ms
                unit.decode_ms, unit.bytes = crossing.decode_ms, crossing.bytes
        return call.output

    def _codec(self, name: str | None) -> CodecConfig:
        """The codec of a tensor crossing the plan names (the default when it names
        none, or names a photo codec)."""
        if name is None or is_photo_codec(name):
            return self.settings.codec
        level, shuffle = parse_tensor_codec(name)
        return CodecConfig(level=level, shuffle=shuffle, threads=self.settings.codec.threads)

    def _reply_problem(self, start: int, end: int, x: Any, output: Any) -> str:
        """What is wrong with the cloud's output for units ``[start, end)`` run on ``x``
        ("" when nothing): it must be shaped like unit ``end - 1``'s output with the
        batch of ``x`` (the number of images at unit 0), of its dtype, and finite."""
        if start == 0:
            batch = 1 if isinstance(x, bytes | bytearray) else len(x)
        else:
            batch = int(x.shape[0])
        problem = self.model.output_problem(end, batch, output)
        return f"bad reply: {problem}" if problem else ""

    def _late_reply(
        self,
        pending: PendingExecute,
        spent: BudgetSpent,
        start: int,
        end: int,
        hold: contextlib.ExitStack,
        spans: tuple[Span, ...] = (),
    ) -> None:
        """A call that outlived its budget answered after all: measure it (its real time
        teaches the budget and the link estimate, so a slower link is re-planned for) and
        resume offloading, unless the cloud was found unreachable meanwhile (then the
        time was a hang, not the link's)."""
        hold.close()
        try:
            if pending.failed():
                return
            wall_ms = (time.perf_counter() - spent.began) * 1e3
            if self._unreachable_at > spent.began:
                return
            reply = pending.result()
            self.budget.observe(start, end, spent.bytes_up, wall_ms)
            late = CloudCall(None, spent.bytes_up, len(reply.output), 0.0, wall_ms, 0.0, reply)
            self.link.after_call(late, contended=any(s.contended for s in spans))
            self._last_ok = time.monotonic()
            self.breaker.record_success()  # alive, only slow: the planner's business
            log.info(
                "cloud %s: Execute[%d, %d) answered after %.0f ms (budget %.0f ms); measured",
                self.settings.cloud, start, end, wall_ms, spent.budget_s * 1e3,
            )  # fmt: skip
        except Exception:  # a callback must not raise
            log.exception("measuring a late cloud reply failed")

    @contextlib.contextmanager
    def _calling(self) -> Iterator[None]:
        with self._lock:
            self._in_flight += 1
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1

    # --- the idle health watch ---------------------------------------------------------

    def start_watch(self) -> None:
        """Start the background health watch (``health_watch_s``; no-op when 0 or no cloud).

        Why a watch, when the cloud channel has HTTP/2 keepalive: keepalive drops the
        connection of a hung cloud (a SIGSTOPped process: its kernel still accepts TCP
        but nothing answers the pings), yet the breaker does not hear of it, and the
        reconnection is accepted by that same kernel and stays CONNECTING, where a
        request's Execute waits out its whole deadline. The watch asks the cloud itself.
        """
        if not self.settings.cloud or self.settings.health_watch_s <= 0:
            return
        with self._watch_lock:  # a SIGTERM may stop it while it starts (stop_watch)
            if self._watch is not None or self._watch_stop.is_set():
                return
            self._watch = threading.Thread(target=self._watch_loop, name="cloud-watch", daemon=True)
            self._watch.start()

    def stop_watch(self) -> None:
        with self._watch_lock:
            self._watch_stop.set()
            watch = self._watch
        if watch is not None:
            watch.join(timeout=self.settings.health_timeout_s + 1.0)

    def _watch_loop(self) -> None:
        tick = min(0.5, self.settings.health_watch_s)
        while not self._watch_stop.wait(tick):
            try:
                self.watch_once()
            except Exception:  # never let the watch die: requests do not depend on it
                log.exception("cloud health watch step failed")

    def watch_once(self) -> str | None:
        """One step of the watch; returns what it did: "checked", "probed" or None.

        Breaker closed and nothing succeeded for ``health_watch_s`` (no call in flight):
        an Info call with a short deadline, failing fast on a broken connection; its
        failure opens the breaker, so the next request runs locally at once. Breaker
        half-open: the watch itself sends the breaker's probe, so that offloading resumes
        within ``breaker_reset_s`` of the cloud's return even with no requests arriving.
        """
        if self.cloud_state == UNCHECKED:
            return None
        state = self.breaker.state
        if state == HALF_OPEN and self.breaker.allow():
            self._probe(wait_for_ready=True)
            return "probed"
        with self._lock:
            busy = self._in_flight > 0
        idle_s = time.monotonic() - self._last_ok
        if state != CLOSED or busy or idle_s < self.settings.health_watch_s:
            return None
        try:
            info = self.cloud().info(self.settings.health_timeout_s)
        except grpc.RpcError as exc:
            code = exc.code()
            if code in _CREDENTIAL_FAULTS or code == grpc.StatusCode.FAILED_PRECONDITION:
                self._probe()  # a full identity check sets the state and the breaker
            else:
                log.warning(
                    "cloud %s did not answer its health check within %.1f s (%s): "
                    "running locally until it does",
                    self.settings.cloud,
                    self.settings.health_timeout_s,
                    code.name,
                )
                with self._lock:
                    self.cloud_state = UNREACHABLE
                self._unreachable_at = time.perf_counter()
                self.breaker.record_failure(f"health check {code.name}")
        else:
            if info.weights_hash != self.model.weights_hash:
                self._probe()  # restarted with other weights: the identity check says so
            else:
                self._last_ok = time.monotonic()
        return "checked"

    def _cloud_failed(
        self, code: grpc.StatusCode, details: str, start: int, end: int, request_id: str
    ) -> None:
        """Log why a cloud call failed and tell the breaker when the cloud is at fault."""
        what = f"cloud {self.settings.cloud}: Execute[{start}, {end}) of request {request_id}"
        if code in _REQUEST_FAULTS:
            log.info("%s refused (%s: %s); finishing locally", what, code.name, details)
            return
        if code == grpc.StatusCode.FAILED_PRECONDITION:
            with self._lock:
                self.cloud_state = MISMATCH
            log.error(
                "%s refused our weights (%s); REFUSING TO OFFLOAD until the cloud "
                "holds the same weights",
                what,
                details,
            )
        elif code in _CREDENTIAL_FAULTS:
            with self._lock:
                self.cloud_state = REFUSED
            log.error(
                "%s refused this agent (%s: %s): check --token and the TLS "
                "certificates; finishing locally",
                what,
                code.name,
                details,
            )
        else:
            log.warning("%s failed (%s: %s); finishing locally", what, code.name, details)
        self.breaker.record_failure(f"{code.name}: {details}")

    def _top(self, logits: torch.Tensor, k: int) -> list[Prediction]:
        probs = torch.softmax(logits.reshape(-1), dim=0)
        values, indices = probs.topk(min(k, probs.numel()))
        return [
            Prediction(
                int(i), self._labels[int(i)] if self._labels else f"class {int(i)}", float(v)
            )
            for v, i in zip(values.tolist(), indices.tolist(), strict=True)
        ]


class _CloudFailed(Exception):
    """An Execute call failed; already logged and reported to the breaker."""
