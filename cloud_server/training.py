"""The cloud's half of split training: sessions, bounded, and the CloudTraining RPCs.

:class:`TrainingSessions` (free of gRPC) holds one :class:`~collabdnn.training.side.SideTrainer`
per session, on a copy of the served model: inference keeps serving the weights it
loaded while a run changes the copy. A session is opened only by a caller that holds
the same model and the same weights (by hash) as this server, and every later call of
the session is checked against the session's step: a call for an unknown session, a
step out of order, or a commit of a step that is not staged is refused
FAILED_PRECONDITION with what the cloud holds instead.

Bounded: at most ``max_sessions`` sessions (one more is RESOURCE_EXHAUSTED); per
session, the activations kept for the backward pass are at most ``max_saved_bytes``
(counted as autograd saves them, parameters excepted) and exist for one step at a
time; the batch of a forward pass is at most ``limits.max_batch``. What a step kept is
freed when its backward pass has run, when the step is committed or aborted, when its
caller goes away mid-call (the step is aborted), and ``step_timeout_s`` after it was
saved (the step is aborted: the agent will find it not staged and run it again). A
session idle for ``idle_timeout_s`` is closed.

:class:`TrainingServicer` is thin: convert, call, convert back; ``@rpc`` maps errors.
"""

from __future__ import annotations

import atexit
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import grpc

from collabdnn.bounds import RequestLimits, StopCheck, stop_check
from collabdnn.codec import DEFAULT_MAX_BYTES, decode, dtype_name, encode, read_header
from collabdnn.errors import (
    BusyError,
    TensorMismatchError,
    TrainingStateError,
    WeightsError,
    WorkStopped,
)
from collabdnn.measure.training_profiler import answer_profile_query
from collabdnn.model.split_model import SplitModel
from collabdnn.placement import Placement, Side
from collabdnn.planning.training_profiles import TrainingProfile
from collabdnn.training.checkpoint import resume_side, save_side
from collabdnn.training.side import SideTrainer
from collabdnn.training.spec import (
    BeginTraining,
    StatusRequest,
    StepCall,
    TensorReply,
    TrainBackward,
    TrainForward,
    TrainingProfileQuery,
    TrainingSpec,
    TrainingState,
)
from collabdnn.wire.proto import training_pb2_grpc
from collabdnn.wire.serde import training as serde
from collabdnn.wire.status import Ready, rpc

if TYPE_CHECKING:
    from cloud_server.cloud import Cloud
    from collabdnn.transport.admission import Admission
    from collabdnn.wire import messages

log = logging.getLogger(__name__)

_SESSION_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class TrainingSettings:
    max_sessions: int = 2
    max_saved_bytes: int = 2 * 2**30  # activations kept for one step's backward pass
    step_timeout_s: float = 120.0  # a step's saved activations live this long at most
    idle_timeout_s: float = 600.0  # a session without calls this long is closed
    checkpoint_dir: str = ""  # "" = checkpoints refused


@dataclass
class _Session:
    spec: TrainingSpec
    trainer: SideTrainer
    lock: threading.Lock
    last_call: float


class TrainingSessions:
    """The cloud's training sessions over ``cloud()``'s model; see the module doc."""

    def __init__(
        self,
        cloud: Callable[[], Cloud],
        settings: TrainingSettings | None = None,
        limits: RequestLimits | None = None,
        max_frame_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self._cloud = cloud
        self.settings = settings or TrainingSettings()
        self.limits = limits or RequestLimits()
        self.max_frame_bytes = max_frame_bytes
        self._sessions: dict[str, _Session] = {}
        self._opening: set[str] = set()  # sessions whose model copy is being made
        self._lock = threading.Lock()

    @property
    def count(self) -> int:
        return len(self._sessions)

    # --- opening and closing --------------------------------------------------------------

    def _same_model(self, name: str, weights_hash: str) -> SplitModel:
        """The served model, if the caller holds the same model and weights."""
        model = self._cloud().model
        if name != model.name or weights_hash != model.weights_hash:
            raise WeightsError(
                f"training refused: the caller trains {name!r} from weights "
                f"{weights_hash or '(none)'!r}, this server holds {model.name!r} with "
                f"weights {model.weights_hash!r} ({model.weights}); a run starts from the "
                "same model and weights on both sides"
            )
        return model

    def profile(self, query: TrainingProfileQuery) -> TrainingProfile:
        """This side's training costs per unit (bounded: images, batch, repeats)."""
        model = self._same_model(query.model, query.weights_hash)
        return answer_profile_query(model, Side.CLOUD, query, self.limits)

    def begin(self, call: BeginTraining) -> TrainingState:
        """Open a session for a caller with the same model and weights as this server."""
        spec = call.spec
        if not _SESSION_ID.match(call.session_id):
            raise TrainingStateError("a session id is 1 to 64 letters, digits, '.', '_' or '-'")
        model = self._same_model(spec.model, spec.weights_hash)
        sides = Placement.parse(spec.placement).resolve(model.num_units)
        self.sweep()
        with self._lock:
            if call.session_id in self._sessions or call.session_id in self._opening:
                raise TrainingStateError(f"session {call.session_id!r} exists already")
            if len(self._sessions) + len(self._opening) >= self.settings.max_sessions:
                raise BusyError(
                    f"{self.settings.max_sessions} training sessions are open (the limit); "
                    "retry when one has finished"
                )
            # reserved while the model is copied, so a flood cannot copy it many times
            self._opening.add(call.session_id)
        try:
            trainer = SideTrainer(
                model,
                Side.CLOUD,
                sides,
                spec.optimizer,
                seed=spec.seed,
                max_saved_bytes=self.settings.max_saved_bytes,
            )
            if call.resume is not None:
                resume_side(trainer, spec, call.resume, self._checkpoints())
        finally:
            with self._lock:
                self._opening.discard(call.session_id)
        with self._lock:
            self._sessions[call.session_id] = _Session(
                spec, trainer, threading.Lock(), time.monotonic()
            )
        log.info(
            "training session %s opened: %s from %s, placement %s, %s",
            call.session_id,
            spec.model,
            spec.weights_hash,
            spec.placement,
            spec.optimizer.kind,
        )
        return self._state(call.session_id, trainer)

    def status(self, call: StatusRequest) -> TrainingState:
        """The session's step and digests; a checkpoint if asked; closed if asked."""
        session = self._session(call.session_id)
        with session.lock:
            checkpoint = ""
            if call.checkpoint:
                folder = self._checkpoints()
                checkpoint = str(save_side(session.trainer, session.spec, call.session_id, folder))
            state = self._state(call.session_id, session.trainer, checkpoint)
        if call.end:
            self.close(call.session_id, "finished")
        return state

    def _checkpoints(self) -> Path:
        if not self.settings.checkpoint_dir:
            raise TrainingStateError(
                "this cloud keeps no checkpoints: start it with --checkpoint-dir"
            )
        return Path(self.settings.checkpoint_dir)

    def close(self, session_id: str, why: str) -> None:
        with self._lock:
            session = self._sessions.pop(session_id, None)
        if session is not None:
            log.info("training session %s closed (%s)", session_id, why)

    def sweep(self) -> None:
        """Abort steps kept past ``step_timeout_s``; close sessions idle past
        ``idle_timeout_s``. Called on every call, and by the server's janitor."""
        now = time.monotonic()
        with self._lock:
            sessions = list(self._sessions.items())
        for session_id, session in sessions:
            if now - session.last_call > self.settings.idle_timeout_s:
                self.close(session_id, f"idle for {self.settings.idle_timeout_s:.0f} s")
                continue
            since = session.trainer.saved_since()
            if since is not None and now - since > self.settings.step_timeout_s:
                with session.lock:
                    step = session.trainer.in_flight
                    if step is not None:
                        session.trainer.abort(step)
                        log.warning(
                            "session %s: step %d aborted, its activations kept %.0f s",
                            session_id,
                            step,
                            now - since,
                        )

    # --- one step -------------------------------------------------------------------------

    def forward(self, call: TrainForward, should_stop: StopCheck | None = None) -> TensorReply:
        begin = time.perf_counter()
        session = self._session(call.session_id)
        with session.lock:
            trainer = session.trainer
            x = self._input(trainer, call)
            try:
                output = trainer.forward(call.step, call.start, call.end, x)
                frame = encode(output, call.reply_codec)
                if should_stop is not None:
                    should_stop()
            except WorkStopped:
                trainer.abort(call.step)  # the caller left: nothing it waits for is kept
                raise
        return TensorReply(frame, (time.perf_counter() - begin) * 1e3)

    def backward(self, call: TrainBackward) -> TensorReply:
        begin = time.perf_counter()
        session = self._session(call.session_id)
        with session.lock:
            header = read_header(call.grad, self.max_frame_bytes)
            self.limits.check_batch(header.shape[0] if header.shape else 0, "the gradient")
            grad = decode(call.grad, self.max_frame_bytes)
            upstream = session.trainer.backward(call.step, call.start, grad)
            frame = None if upstream is None else encode(upstream, call.reply_codec)
        return TensorReply(frame, (time.perf_counter() - begin) * 1e3)

    def commit(self, call: StepCall) -> TrainingState:
        session = self._session(call.session_id)
        with session.lock:
            session.trainer.commit(call.step)
            return TrainingState(call.session_id, session.trainer.step)

    def abort(self, call: StepCall) -> TrainingState:
        session = self._session(call.session_id)
        with session.lock:
            session.trainer.abort(call.step)
            return TrainingState(call.session_id, session.trainer.step)

    # --- helpers ----------------------------------------------------------------------------

    def _session(self, session_id: str) -> _Session:
        self.sweep()
        with self._lock:
            session = self._sessions.get(session_id)
        if session is None:
            raise TrainingStateError(
                f"no training session {session_id[:64]!r} here: it never began, was closed, "
                "expired, or this cloud restarted; begin a new one (from the last checkpoint)"
            )
        model = self._cloud().model
        if session.spec.model != model.name:
            raise TrainingStateError(f"session {session_id!r} trains another model")
        session.last_call = time.monotonic()
        return session

    def _input(self, trainer: SideTrainer, call: TrainForward) -> object:
        """The forward pass's input, checked before anything is decoded."""
        trainer.model.check_range(call.start, call.end)
        if call.start == 0:
            if call.images is None or not call.images:
                raise TensorMismatchError("unit 0 (preprocess) takes encoded images")
            self.limits.check_images(call.images, "TrainForward", self.limits.max_batch)
            return list(call.images)
        if call.tensor is None:
            raise TensorMismatchError(
                f"unit {call.start} takes the output tensor of unit {call.start - 1}"
            )
        header = read_header(call.tensor, self.max_frame_bytes)
        trainer.model.check_tensor(call.start, dtype_name(header.dtype), header.shape)
        self.limits.check_batch(header.shape[0], f"the tensor for unit {call.start}")
        return decode(call.tensor, self.max_frame_bytes)

    @staticmethod
    def _state(session_id: str, trainer: SideTrainer, checkpoint: str = "") -> TrainingState:
        digests = tuple(sorted(trainer.digests().items()))
        return TrainingState(session_id, trainer.step, digests, checkpoint)


class TrainingServicer(training_pb2_grpc.CloudTrainingServicer):
    """CloudTraining over the served model (UNAVAILABLE while it loads). Forward and
    backward passes are admitted with the Execute calls, through the same queue."""

    def __init__(
        self,
        cloud: Ready[Cloud],
        admission: Admission,
        settings: TrainingSettings | None = None,
        limits: RequestLimits | None = None,
        max_frame_bytes: int = DEFAULT_MAX_BYTES,
        halt: threading.Event | None = None,
        profile_admission: Admission | None = None,
    ) -> None:
        from collabdnn.transport.admission import Admission

        self.sessions = TrainingSessions(cloud.get, settings, limits, max_frame_bytes)
        self.admission = admission
        # shared with the Profile calls when given: profiles in one process time each other
        self.profile_admission = profile_admission or Admission(1, name="profile calls")
        self.halt = halt
        self._stop = threading.Event()
        self._janitor_thread = threading.Thread(
            target=self._janitor, name="training-janitor", daemon=True
        )
        self._janitor_thread.start()
        atexit.register(self.stop)  # also when the server is never stopped (in-process use)

    def _janitor(self) -> None:
        """Frees what expired sessions and steps hold while no call comes to do it."""
        while not self._stop.wait(5.0):
            try:
                self.sessions.sweep()
            except Exception:  # never let the janitor die of one bad sweep
                log.exception("sweeping training sessions failed")

    def stop(self) -> None:
        """End the janitor and wait for it: a thread still running while the process
        exits can abort it (``terminate called without an active exception``)."""
        self._stop.set()
        self._janitor_thread.join(timeout=10.0)

    @rpc("BeginTraining")
    def BeginTraining(
        self, request: messages.BeginTrainingRequest, context: grpc.ServicerContext
    ) -> messages.TrainingState:
        call = serde.begin_training_from_proto(request)
        return serde.training_state_to_proto(self.sessions.begin(call))

    @rpc("TrainForward")
    def TrainForward(
        self, request: messages.TrainForwardRequest, context: grpc.ServicerContext
    ) -> messages.TrainTensorReply:
        call = serde.train_forward_from_proto(request)
        check = stop_check(context, self.halt)
        with self.admission.admit(context, "TrainForward", check):
            reply = self.sessions.forward(call, check)
        return serde.tensor_reply_to_proto(reply)

    @rpc("TrainBackward")
    def TrainBackward(
        self, request: messages.TrainBackwardRequest, context: grpc.ServicerContext
    ) -> messages.TrainTensorReply:
        call = serde.train_backward_from_proto(request)
        check = stop_check(context, self.halt)
        with self.admission.admit(context, "TrainBackward", check):
            reply = self.sessions.backward(call)
        return serde.tensor_reply_to_proto(reply)

    @rpc("CommitStep")
    def CommitStep(
        self, request: messages.StepRequest, context: grpc.ServicerContext
    ) -> messages.TrainingState:
        state = self.sessions.commit(serde.step_call_from_proto(request))
        return serde.training_state_to_proto(state)

    @rpc("AbortStep")
    def AbortStep(
        self, request: messages.StepRequest, context: grpc.ServicerContext
    ) -> messages.TrainingState:
        state = self.sessions.abort(serde.step_call_from_proto(request))
        return serde.training_state_to_proto(state)

    @rpc("ProfileTraining")
    def ProfileTraining(
        self, request: messages.TrainingProfileRequest, context: grpc.ServicerContext
    ) -> messages.TrainingProfile:
        query = serde.training_profile_query_from_proto(request)
        with self.profile_admission.admit(context, "ProfileTraining"):
            return serde.training_profile_to_proto(self.sessions.profile(query))

    @rpc("TrainingStatus")
    def TrainingStatus(
        self, request: messages.TrainingStatusRequest, context: grpc.ServicerContext
    ) -> messages.TrainingState:
        state = self.sessions.status(serde.status_request_from_proto(request))
        return serde.training_state_to_proto(state)
