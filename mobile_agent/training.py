"""The agent's training entry point: one split training run at a time, driven by a client.

The client (``collabdnn train``) keeps the data: it starts a run, sends one batch of
encoded images and labels per step, and finishes the run. The agent holds the phone's
units (a :class:`~collabdnn.training.side.SideTrainer` on its own copy of the model:
inference keeps the loaded weights), opens the cloud's session for the cloud's units
and drives each step (:class:`~collabdnn.training.step.StepDriver`): forward, the loss
here (where the labels are), backward, and the two-phase commit. A step whose cloud
part fails on the link (UNAVAILABLE, a deadline, RESOURCE_EXHAUSTED) is aborted on both
sides and run again, ``attempts`` times at most; any other failure ends the call with
neither side having applied the step, and the run stays where it was.

Without a placement, a run follows a training plan for its batch size. With a
scheduler (``--scheduler``), the scheduler's: GetTrainingPlan, made from the scheduler's
current view of the link, battery, cloud load and objective (see
:mod:`scheduler.training_plans`; the scheduler profiles this agent through its own
ProfileTraining). Without one, or when the scheduler cannot answer (unreachable, not
ready, an older scheduler), the agent's own
(:func:`collabdnn.planning.training.plan_training`, latency objective): both sides'
training costs are profiled on the sample photos (the cloud's with ProfileTraining),
once per batch size, and priced on the agent's current link estimate. When that is
impossible too (no cloud, no sample photos, the cloud refuses) the agent's inference
plan is used. The run's ``plan_source`` says whose plan it is (``"scheduler"`` or
``"agent"``; ``"request"`` and ``"resume"`` otherwise) and ``placement_source`` why.

Finishing reports the whole model's weights hash, combined from both sides' digests;
with ``checkpoint``, each side writes its own checkpoint and, when the cloud's file is
readable here (one machine, or a shared folder), the agent also writes the global
checkpoint that ``--weights FILE`` loads.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import grpc

from collabdnn.codec import CodecConfig
from collabdnn.errors import (
    BusyError,
    CollabError,
    ImageError,
    TensorMismatchError,
    TrainingConfigError,
    TrainingStateError,
    WeightsError,
)
from collabdnn.measure.training_profiler import answer_profile_query, profile_training
from collabdnn.placement import Placement, Side, spec_of
from collabdnn.planning.training import plan_training
from collabdnn.planning.training_profiles import TrainingProfile, training_input_from_profiles
from collabdnn.samples import sample_images
from collabdnn.services import TrainingPlanQuery
from collabdnn.training.checkpoint import (
    combine,
    load_side,
    resume_side,
    save_side,
    side_checkpoint_name,
)
from collabdnn.training.hashing import whole_hash
from collabdnn.training.side import SideTrainer
from collabdnn.training.spec import (
    BeginTraining,
    FinishTraining,
    Resume,
    StartTraining,
    StatusRequest,
    StepCall,
    StepResult,
    TrainBackward,
    TrainForward,
    TrainingProfileQuery,
    TrainingResult,
    TrainingRun,
    TrainingSpec,
    TrainingState,
    TrainStep,
)
from collabdnn.training.step import CloudInput, StepDriver
from collabdnn.transport.admission import Admission
from collabdnn.wire.proto import training_pb2_grpc
from collabdnn.wire.serde import training as serde
from collabdnn.wire.status import rpc
from collabdnn.wire.stubs import SchedulerStub
from collabdnn.wire.training_stubs import CloudTrainingStub

if TYPE_CHECKING:
    from collabdnn.wire import messages
    from mobile_agent.agent import MobileAgent

log = logging.getLogger(__name__)

# Failures of a cloud call worth another attempt of the step: the link, the clock, a
# cloud at its admission limit.
TRANSIENT = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
    }
)


PROFILE_TIMEOUT_S = 300.0  # the cloud's training profile, once per batch size
# The scheduler's training plan: it may profile both sides first (once per batch size).
SCHEDULER_PLAN_TIMEOUT_S = 120.0


def transient(exc: BaseException) -> bool:
    return isinstance(exc, grpc.RpcError) and exc.code() in TRANSIENT


@dataclass(frozen=True)
class TrainingSettings:
    checkpoint_dir: str = ""  # "" = checkpoints refused
    attempts: int = 3  # per step, and per commit
    idle_timeout_s: float = 600.0  # a run without calls this long gives way to a new one


class CloudRemote:
    """The cloud's half of one run, over CloudTraining (a ``RemoteSide``)."""

    def __init__(
        self, stub: CloudTrainingStub, session_id: str, timeout_s: float, codec: CodecConfig
    ) -> None:
        self.stub, self.session_id = stub, session_id
        self.timeout_s, self.codec = timeout_s, codec

    def forward(self, step: int, start: int, end: int, payload: CloudInput) -> bytes:
        tensor = payload if isinstance(payload, bytes) else None
        images = payload if isinstance(payload, tuple) else None
        call = TrainForward(self.session_id, step, start, end, tensor, images, self.codec)
        reply = self.stub.forward(call, timeout=self.timeout_s)
        if reply.output is None:
            raise TensorMismatchError(f"the cloud sent no output for units [{start}, {end})")
        return reply.output

    def backward(self, step: int, start: int, grad: bytes) -> bytes | None:
        call = TrainBackward(self.session_id, step, start, grad, self.codec)
        return self.stub.backward(call, timeout=self.timeout_s).output

    def commit(self, step: int) -> int:
        try:
            return self.stub.commit(StepCall(self.session_id, step), timeout=self.timeout_s).step
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.FAILED_PRECONDITION:  # not staged there
                raise TrainingStateError(f"the cloud: {exc.details()}") from exc
            raise

    def abort(self, step: int) -> int:
        return self.stub.abort(StepCall(self.session_id, step), timeout=self.timeout_s).step

    def status(self, checkpoint: bool, end: bool) -> TrainingState:
        call = StatusRequest(self.session_id, checkpoint, end)
        return self.stub.status(call, timeout=self.timeout_s)


@dataclass
class _Run:
    session_id: str
    spec: TrainingSpec
    driver: StepDriver
    remote: CloudRemote | None
    lock: threading.Lock
    last_call: float = field(default_factory=time.monotonic)


class AgentTraining:
    """The agent's one training run at a time; see the module doc."""

    def __init__(
        self,
        agent: Callable[[], MobileAgent],
        channel_for: Callable[[str], grpc.Channel],
        settings: TrainingSettings | None = None,
        scheduler: Callable[[], tuple[str, str]] | None = None,
    ) -> None:
        self._agent = agent
        self._channel_for = channel_for
        self.settings = settings or TrainingSettings()
        # (address, agent id in fleet mode or "") of the scheduler; ("", "") = none
        self._scheduler = scheduler or (lambda: ("", ""))
        self._run: _Run | None = None
        self._lock = threading.Lock()
        self._profiled: dict[int, tuple[TrainingProfile, TrainingProfile]] = {}
        self._profile_lock = threading.Lock()

    def start(self, call: StartTraining) -> TrainingRun:
        agent = self._agent()
        model = agent.model
        if call.resume is not None:
            placement = self._resumed_placement(call, model.num_units)
            source = f"run {call.resume.session_id} at step {call.resume.step} (resumed)"
            plan_source = "resume"
        elif call.placement:
            placement, source, plan_source = (
                Placement.parse(call.placement),
                "the request",
                "request",
            )
        else:
            placement, source, plan_source = self._planned(agent, call.batch_size)
        sides = placement.resolve(model.num_units)
        spec = TrainingSpec(
            model.name, model.weights_hash, spec_of(sides), call.optimizer, call.seed
        )
        with self._lock:
            if self._run is not None and self._idle(self._run):
                log.warning(
                    "training run %s abandoned (no call for %.0f s): a new run replaces it",
                    self._run.session_id,
                    self.settings.idle_timeout_s,
                )  # the cloud closes its session once idle too
                self._run = None
            if self._run is not None:
                raise BusyError(
                    f"training run {self._run.session_id} is in progress; finish it first"
                )
            session_id = uuid.uuid4().hex[:16]
            trainer = SideTrainer(model, Side.MOBILE, sides, call.optimizer, seed=call.seed)
            if call.resume is not None:
                resume_side(trainer, spec, call.resume, self._checkpoints())
            remote = None
            if Side.CLOUD in sides:
                remote = self._open_cloud(agent, session_id, spec, call.resume)
            settings = agent.settings
            driver = StepDriver(
                trainer,
                remote,
                settings.codec,
                self.settings.attempts,
                transient,
                settings.max_frame_bytes,
            )
            self._run = _Run(session_id, spec, driver, remote, threading.Lock())
        log.info(
            "training run %s started: placement %s from the %s (%s)",
            session_id, spec.placement, plan_source, source,
        )  # fmt: skip
        labels = tuple(model.labels or ())
        return TrainingRun(
            session_id,
            model.name,
            model.weights_hash,
            spec.placement,
            source,
            labels,
            trainer.step,
            plan_source,
        )

    def _checkpoints(self) -> Path:
        if not self.settings.checkpoint_dir:
            raise TrainingConfigError(
                "this agent keeps no checkpoints: start it with --checkpoint-dir"
            )
        return Path(self.settings.checkpoint_dir)

    def _resumed_placement(self, call: StartTraining, units: int) -> Placement:
        """The placement of the run being resumed (a request may only repeat it)."""
        assert call.resume is not None
        name = side_checkpoint_name(call.resume.session_id, "mobile", call.resume.step)
        path = self._checkpoints() / name
        if not path.is_file():
            raise TrainingStateError(f"no checkpoint {name[:100]!r} on this agent")
        placement = Placement.parse(str(load_side(path)["placement"]))
        asked = Placement.parse(call.placement or str(placement))
        if asked.resolve(units) != placement.resolve(units):
            raise TrainingStateError(
                f"run {call.resume.session_id} was trained with placement {placement}; "
                "a resumed run keeps it"
            )
        return placement

    def _planned(self, agent: MobileAgent, batch_size: int) -> tuple[Placement, str, str]:
        """The scheduler's training plan when it gives one, else the agent's own."""
        address, agent_id = self._scheduler()
        why = "no scheduler"
        if address:
            try:
                stub = SchedulerStub(self._channel_for(address))
                query = TrainingPlanQuery(agent_id, batch_size)
                got = stub.get_training_plan(query, timeout=SCHEDULER_PLAN_TIMEOUT_S)
            except grpc.RpcError as exc:
                why = f"scheduler {address}: {exc.code().name}: {(exc.details() or '')[:200]}"
            else:
                plan = got.plan
                if len(plan.placement) == agent.model.num_units:
                    source = (
                        f"the scheduler {address}'s training plan ({plan.objective_used}, "
                        f"batch {got.batch_size}: {plan.latency_ms:.0f} ms per step "
                        f"predicted; {got.reason})"
                    )
                    return Placement.of(plan.placement), source[:500], "scheduler"
                why = f"scheduler {address} planned another model ({got.model[:100]!r})"
            log.warning("no training plan from the %s: the agent plans the run", why)
        placement, source = self._training_plan(agent, batch_size)
        return placement, f"{source}; {why}"[:500], "agent"

    def _training_plan(self, agent: MobileAgent, batch_size: int) -> tuple[Placement, str]:
        """The fastest placement for a step of ``batch_size`` (both sides' training
        profiles on the sample photos, measured once per batch size; the link estimate);
        the agent's plan when no training plan can be made, saying why."""
        plan = agent.plan
        fallback = f"the agent's plan (from {plan.source or 'unknown'})"
        if not agent.settings.cloud:
            return plan.placement, fallback
        try:
            mobile, cloud = self._profiles(agent, batch_size)
        except (grpc.RpcError, CollabError, FileNotFoundError) as exc:
            why = exc.details() if isinstance(exc, grpc.RpcError) else str(exc)
            log.warning("no training plan (%s): using the agent's plan", why)
            return plan.placement, f"{fallback}; no training plan: {why}"[:300]
        link = agent.link.current()
        chosen = plan_training(
            training_input_from_profiles(mobile, cloud), link, agent.link.power, "latency"
        )
        source = (
            f"the training plan (latency, batch {batch_size}, link up {link.up_mbps:.3g} "
            f"down {link.down_mbps:.3g} Mbit/s, RTT {link.rtt_ms:.3g} ms: "
            f"{chosen.latency_ms:.0f} ms per step predicted)"
        )
        return Placement.of(chosen.placement), source

    def _profiles(
        self, agent: MobileAgent, batch_size: int
    ) -> tuple[TrainingProfile, TrainingProfile]:
        with self._profile_lock:  # one profile at a time: they would time each other
            cached = self._profiled.get(batch_size)
            if cached is not None:
                return cached
            images = [path.read_bytes() for path in sample_images()]
            model = agent.model
            query = TrainingProfileQuery(model.name, model.weights_hash, tuple(images), batch_size)
            stub = CloudTrainingStub(self._channel_for(agent.settings.cloud))
            cloud = stub.profile(query, timeout=PROFILE_TIMEOUT_S)
            mobile = profile_training(model, Side.MOBILE, images, batch_size, repeats=1)
            self._profiled[batch_size] = (mobile, cloud)
            return mobile, cloud

    def profile(self, query: TrainingProfileQuery) -> TrainingProfile:
        """This side's training costs (the scheduler's ProfileTraining), for a caller
        that holds this agent's model and weights."""
        model = self._agent().model
        if (query.model, query.weights_hash) != (model.name, model.weights_hash):
            raise WeightsError(
                f"training profile refused: the caller asks for {query.model[:100]!r} with "
                f"weights {query.weights_hash[:100]!r}, this agent holds {model.name!r} "
                f"with weights {model.weights_hash!r}"
            )
        limits = self._agent().settings.limits
        return answer_profile_query(model, Side.MOBILE, query, limits)

    def _open_cloud(
        self, agent: MobileAgent, session_id: str, spec: TrainingSpec, resume: Resume | None
    ) -> CloudRemote:
        address = agent.settings.cloud
        if not address:
            raise TrainingConfigError(
                f"placement {spec.placement} puts units in the cloud, but this agent was "
                "started without --cloud"
            )
        stub = CloudTrainingStub(self._channel_for(address))
        stub.begin(BeginTraining(session_id, spec, resume), timeout=agent.settings.timeout_s)
        return CloudRemote(stub, session_id, agent.settings.timeout_s, agent.settings.codec)

    def step(self, call: TrainStep) -> StepResult:
        run = self._get(call.session_id)
        agent = self._agent()
        trainer = run.driver.trainer
        if not call.images or len(call.images) != len(call.labels):
            raise ImageError(
                f"a step takes one label per image: {len(call.images)} images, "
                f"{len(call.labels)} labels"
            )
        agent.settings.limits.check_images(
            call.images, "TrainStep", agent.settings.limits.max_batch
        )
        classes = trainer.model.units[-1].output_shape[-1]
        bad = [label for label in call.labels if not 0 <= label < classes]
        if bad:
            raise TensorMismatchError(f"labels {bad[:5]} are outside [0, {classes})")
        if not run.lock.acquire(blocking=False):
            raise BusyError(f"a step of run {run.session_id} is in progress")
        try:
            if call.step != trainer.step + 1:
                raise TrainingStateError(
                    f"step {call.step} is out of order: the run's last step is {trainer.step}"
                )
            return run.driver.step(call.step, call.images, call.labels)
        finally:
            run.lock.release()

    def checkpoint(self, call: FinishTraining) -> TrainingResult:
        """Both sides' checkpoints and the global one at the current step; the run goes on."""
        run = self._get(call.session_id)
        self._checkpoints()
        with run.lock:
            return self._finish(run, checkpoint=True, end=False)

    def finish(self, call: FinishTraining) -> TrainingResult:
        run = self._get(call.session_id)
        if call.checkpoint:
            self._checkpoints()
        with run.lock:
            try:
                result = self._finish(run, call.checkpoint, end=True)
            finally:  # finished, or the cloud is gone: either way the run ends here
                with self._lock:
                    if self._run is run:
                        self._run = None
        log.info(
            "training run %s finished at step %d: weights %s",
            run.session_id,
            result.step,
            result.weights_hash,
        )
        return result

    def _finish(self, run: _Run, checkpoint: bool, end: bool) -> TrainingResult:
        trainer = run.driver.trainer
        mobile_digests = trainer.digests()
        path = ""
        if checkpoint:
            path = str(save_side(trainer, run.spec, run.session_id, self._checkpoints()))
        mobile = TrainingState(
            run.session_id, trainer.step, tuple(sorted(mobile_digests.items())), path
        )
        cloud = None
        if run.remote is not None:
            cloud = run.remote.status(checkpoint, end=end)
            if cloud.step != trainer.step:  # the two-phase commit makes this impossible
                raise TrainingStateError(
                    f"the cloud is at step {cloud.step}, this side at {trainer.step}: "
                    "no consistent state to report"
                )
        whole = whole_hash(mobile_digests, dict(cloud.digests if cloud else ()))
        global_path = ""
        cloud_file = Path(cloud.checkpoint) if cloud is not None and cloud.checkpoint else None
        if path and (cloud is None or (cloud_file is not None and cloud_file.is_file())):
            out = Path(path).with_name(f"{run.session_id}-global-step{trainer.step}.pt")
            written = combine(Path(path), cloud_file, out)
            if written != whole:  # cannot happen unless a file was changed meanwhile
                raise TrainingStateError(f"the global checkpoint hashes {written}, not {whole}")
            global_path = str(out)
        return TrainingResult(trainer.step, whole, mobile, cloud, global_path)

    def _get(self, session_id: str) -> _Run:
        run = self._run
        if run is None or run.session_id != session_id:
            raise TrainingStateError(f"no training run {session_id[:64]!r} on this agent")
        run.last_call = time.monotonic()
        return run

    def _idle(self, run: _Run) -> bool:
        busy = run.lock.locked()  # a step in progress is not idle
        return not busy and time.monotonic() - run.last_call > self.settings.idle_timeout_s


class TrainerServicer(training_pb2_grpc.MobileTrainingServicer):
    """MobileTraining, thin over :class:`AgentTraining`."""

    def __init__(self, training: AgentTraining, profile_admission: Admission | None = None) -> None:
        self.training = training
        # shared with the agent's Profile calls: profiles in one process time each other
        self.profile_admission = profile_admission or Admission(1, name="profile calls")

    @rpc("ProfileTraining")
    def ProfileTraining(
        self, request: messages.TrainingProfileRequest, context: grpc.ServicerContext
    ) -> messages.TrainingProfile:
        query = serde.training_profile_query_from_proto(request)
        with self.profile_admission.admit(context, "ProfileTraining"):
            return serde.training_profile_to_proto(self.training.profile(query))

    @rpc("StartTraining", "the cloud")
    def StartTraining(
        self, request: messages.StartTrainingRequest, context: grpc.ServicerContext
    ) -> messages.TrainingRun:
        run = self.training.start(serde.start_training_from_proto(request))
        return serde.training_run_to_proto(run)

    @rpc("TrainStep", "the cloud")
    def TrainStep(
        self, request: messages.TrainStepRequest, context: grpc.ServicerContext
    ) -> messages.TrainStepReply:
        result = self.training.step(serde.train_step_from_proto(request))
        return serde.step_result_to_proto(result)

    @rpc("CheckpointTraining", "the cloud")
    def CheckpointTraining(
        self, request: messages.FinishTrainingRequest, context: grpc.ServicerContext
    ) -> messages.TrainingResult:
        result = self.training.checkpoint(serde.finish_training_from_proto(request))
        return serde.training_result_to_proto(result)

    @rpc("FinishTraining", "the cloud")
    def FinishTraining(
        self, request: messages.FinishTrainingRequest, context: grpc.ServicerContext
    ) -> messages.TrainingResult:
        result = self.training.finish(serde.finish_training_from_proto(request))
        return serde.training_result_to_proto(result)
