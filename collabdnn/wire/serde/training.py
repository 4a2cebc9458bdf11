"""Serde of split training's calls (training.proto): the cloud's CloudTraining and the
agent's MobileTraining. Torch-free at import."""

from __future__ import annotations

from typing import TYPE_CHECKING

from collabdnn.placement import Side
from collabdnn.planning.training_profiles import TrainingProfile, TrainingUnitProfile
from collabdnn.training.spec import (
    BeginTraining,
    FinishTraining,
    OptimizerConfig,
    Resume,
    StartTraining,
    StatusRequest,
    StepCall,
    StepResult,
    TensorReply,
    TrainBackward,
    TrainForward,
    TrainingProfileQuery,
    TrainingResult,
    TrainingRun,
    TrainingSpec,
    TrainingState,
    TrainStep,
)
from collabdnn.wire.proto import tensor_pb2, training_pb2
from collabdnn.wire.serde.common import codec_from_proto, codec_to_proto

if TYPE_CHECKING:
    from collabdnn.codec import CodecConfig


def _codec_to(config: CodecConfig | None) -> tensor_pb2.CodecOptions | None:
    return None if config is None else codec_to_proto(config)


def _codec_from(
    message: training_pb2.TrainForwardRequest | training_pb2.TrainBackwardRequest,
) -> CodecConfig | None:
    return codec_from_proto(message.reply_codec) if message.HasField("reply_codec") else None


def optimizer_to_proto(config: OptimizerConfig) -> training_pb2.OptimizerSettings:
    return training_pb2.OptimizerSettings(
        kind=config.kind,
        lr=config.lr,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
        beta1=config.beta1,
        beta2=config.beta2,
        eps=config.eps,
    )


def optimizer_from_proto(message: training_pb2.OptimizerSettings) -> OptimizerConfig:
    """TrainingConfigError (INVALID_ARGUMENT) for settings that cannot work."""
    return OptimizerConfig(
        kind=message.kind,
        lr=message.lr,
        momentum=message.momentum,
        weight_decay=message.weight_decay,
        beta1=message.beta1,
        beta2=message.beta2,
        eps=message.eps,
    )


def _resume_from(session_id: str, step: int) -> Resume | None:
    return Resume(session_id, step) if session_id else None


def begin_training_to_proto(call: BeginTraining) -> training_pb2.BeginTrainingRequest:
    spec = call.spec
    return training_pb2.BeginTrainingRequest(
        session_id=call.session_id,
        model=spec.model,
        weights_hash=spec.weights_hash,
        placement=spec.placement,
        optimizer=optimizer_to_proto(spec.optimizer),
        seed=spec.seed,
        resume_session=call.resume.session_id if call.resume else "",
        resume_step=call.resume.step if call.resume else 0,
    )


def begin_training_from_proto(message: training_pb2.BeginTrainingRequest) -> BeginTraining:
    spec = TrainingSpec(
        model=message.model,
        weights_hash=message.weights_hash,
        placement=message.placement,
        optimizer=optimizer_from_proto(message.optimizer),
        seed=message.seed,
    )
    resume = _resume_from(message.resume_session, message.resume_step)
    return BeginTraining(message.session_id, spec, resume)


def train_forward_to_proto(call: TrainForward) -> training_pb2.TrainForwardRequest:
    message = training_pb2.TrainForwardRequest(
        session_id=call.session_id,
        step=call.step,
        start=call.start,
        end=call.end,
        reply_codec=_codec_to(call.reply_codec),
    )
    if call.tensor is not None:
        message.tensor.SetInParent()
        message.tensor.frame = call.tensor
    elif call.images is not None:
        message.images.SetInParent()
        message.images.images.extend(call.images)
    return message


def train_forward_from_proto(message: training_pb2.TrainForwardRequest) -> TrainForward:
    kind = message.WhichOneof("input")
    return TrainForward(
        session_id=message.session_id,
        step=message.step,
        start=message.start,
        end=message.end,
        tensor=bytes(message.tensor.frame) if kind == "tensor" else None,
        images=tuple(bytes(b) for b in message.images.images) if kind == "images" else None,
        reply_codec=_codec_from(message),
    )


def train_backward_to_proto(call: TrainBackward) -> training_pb2.TrainBackwardRequest:
    return training_pb2.TrainBackwardRequest(
        session_id=call.session_id,
        step=call.step,
        start=call.start,
        grad=tensor_pb2.Tensor(frame=call.grad),
        reply_codec=_codec_to(call.reply_codec),
    )


def train_backward_from_proto(message: training_pb2.TrainBackwardRequest) -> TrainBackward:
    return TrainBackward(
        session_id=message.session_id,
        step=message.step,
        start=message.start,
        grad=bytes(message.grad.frame),
        reply_codec=_codec_from(message),
    )


def tensor_reply_to_proto(reply: TensorReply) -> training_pb2.TrainTensorReply:
    message = training_pb2.TrainTensorReply(server_ms=reply.server_ms)
    if reply.output is not None:
        message.output.SetInParent()
        message.output.frame = reply.output
    return message


def tensor_reply_from_proto(message: training_pb2.TrainTensorReply) -> TensorReply:
    output = bytes(message.output.frame) if message.HasField("output") else None
    return TensorReply(output, message.server_ms)


def step_call_to_proto(call: StepCall) -> training_pb2.StepRequest:
    return training_pb2.StepRequest(session_id=call.session_id, step=call.step)


def step_call_from_proto(message: training_pb2.StepRequest) -> StepCall:
    return StepCall(message.session_id, message.step)


def status_request_to_proto(call: StatusRequest) -> training_pb2.TrainingStatusRequest:
    return training_pb2.TrainingStatusRequest(
        session_id=call.session_id, checkpoint=call.checkpoint, end=call.end
    )


def status_request_from_proto(message: training_pb2.TrainingStatusRequest) -> StatusRequest:
    return StatusRequest(message.session_id, message.checkpoint, message.end)


def training_state_to_proto(state: TrainingState) -> training_pb2.TrainingState:
    return training_pb2.TrainingState(
        session_id=state.session_id,
        step=state.step,
        digests=[training_pb2.EntryDigest(name=n, digest=d) for n, d in state.digests],
        checkpoint=state.checkpoint,
    )


def training_state_from_proto(message: training_pb2.TrainingState) -> TrainingState:
    return TrainingState(
        session_id=message.session_id,
        step=message.step,
        digests=tuple((d.name, d.digest) for d in message.digests),
        checkpoint=message.checkpoint,
    )


def start_training_to_proto(call: StartTraining) -> training_pb2.StartTrainingRequest:
    return training_pb2.StartTrainingRequest(
        placement=call.placement,
        optimizer=optimizer_to_proto(call.optimizer),
        seed=call.seed,
        batch_size=call.batch_size,
        resume_session=call.resume.session_id if call.resume else "",
        resume_step=call.resume.step if call.resume else 0,
    )


def start_training_from_proto(message: training_pb2.StartTrainingRequest) -> StartTraining:
    return StartTraining(
        placement=message.placement,
        optimizer=optimizer_from_proto(message.optimizer),
        seed=message.seed,
        batch_size=message.batch_size or 1,
        resume=_resume_from(message.resume_session, message.resume_step),
    )


def training_profile_query_to_proto(
    query: TrainingProfileQuery,
) -> training_pb2.TrainingProfileRequest:
    return training_pb2.TrainingProfileRequest(
        model=query.model,
        weights_hash=query.weights_hash,
        images=tensor_pb2.ImageBatch(images=list(query.images)),
        batch_size=query.batch_size,
        repeats=query.repeats,
    )


def training_profile_query_from_proto(
    message: training_pb2.TrainingProfileRequest,
) -> TrainingProfileQuery:
    return TrainingProfileQuery(
        model=message.model,
        weights_hash=message.weights_hash,
        images=tuple(bytes(b) for b in message.images.images),
        batch_size=message.batch_size or 1,
        repeats=message.repeats or 1,
    )


_UNIT_FIELDS = tuple(f.name for f in training_pb2.TrainingUnitProfile.DESCRIPTOR.fields)


def training_profile_to_proto(profile: TrainingProfile) -> training_pb2.TrainingProfile:
    return training_pb2.TrainingProfile(
        side=str(profile.side),
        model=profile.model,
        batch_size=profile.batch_size,
        input_bytes=profile.input_bytes,
        units=[
            training_pb2.TrainingUnitProfile(**{k: getattr(u, k) for k in _UNIT_FIELDS})
            for u in profile.units
        ],
        threads=profile.threads,
        repeats=profile.repeats,
    )


def training_profile_from_proto(message: training_pb2.TrainingProfile) -> TrainingProfile:
    """PlacementError (INVALID_ARGUMENT) for an unknown side."""
    return TrainingProfile(
        side=Side.coerce(message.side),
        model=message.model,
        batch_size=message.batch_size,
        input_bytes=message.input_bytes,
        units=tuple(
            TrainingUnitProfile(**{k: getattr(u, k) for k in _UNIT_FIELDS}) for u in message.units
        ),
        threads=message.threads,
        repeats=message.repeats,
    )


def training_run_to_proto(run: TrainingRun) -> training_pb2.TrainingRun:
    return training_pb2.TrainingRun(
        session_id=run.session_id,
        model=run.model,
        weights_hash=run.weights_hash,
        placement=run.placement,
        placement_source=run.placement_source,
        labels=list(run.labels),
        step=run.step,
        plan_source=run.plan_source,
    )


def training_run_from_proto(message: training_pb2.TrainingRun) -> TrainingRun:
    return TrainingRun(
        session_id=message.session_id,
        model=message.model,
        weights_hash=message.weights_hash,
        placement=message.placement,
        placement_source=message.placement_source,
        labels=tuple(message.labels),
        step=message.step,
        plan_source=message.plan_source,
    )


def train_step_to_proto(call: TrainStep) -> training_pb2.TrainStepRequest:
    return training_pb2.TrainStepRequest(
        session_id=call.session_id,
        step=call.step,
        images=tensor_pb2.ImageBatch(images=list(call.images)),
        labels=list(call.labels),
    )


def train_step_from_proto(message: training_pb2.TrainStepRequest) -> TrainStep:
    return TrainStep(
        session_id=message.session_id,
        step=message.step,
        images=tuple(bytes(b) for b in message.images.images),
        labels=tuple(message.labels),
    )


def step_result_to_proto(result: StepResult) -> training_pb2.TrainStepReply:
    return training_pb2.TrainStepReply(
        step=result.step,
        loss=result.loss,
        ms=result.ms,
        bytes_up=result.bytes_up,
        bytes_down=result.bytes_down,
        attempts=result.attempts,
    )


def step_result_from_proto(message: training_pb2.TrainStepReply) -> StepResult:
    return StepResult(
        step=message.step,
        loss=message.loss,
        ms=message.ms,
        bytes_up=message.bytes_up,
        bytes_down=message.bytes_down,
        attempts=message.attempts,
    )


def finish_training_to_proto(call: FinishTraining) -> training_pb2.FinishTrainingRequest:
    return training_pb2.FinishTrainingRequest(
        session_id=call.session_id, checkpoint=call.checkpoint
    )


def finish_training_from_proto(message: training_pb2.FinishTrainingRequest) -> FinishTraining:
    return FinishTraining(message.session_id, message.checkpoint)


def training_result_to_proto(result: TrainingResult) -> training_pb2.TrainingResult:
    message = training_pb2.TrainingResult(
        step=result.step,
        weights_hash=result.weights_hash,
        mobile=training_state_to_proto(result.mobile),
        global_checkpoint=result.global_checkpoint,
    )
    if result.cloud is not None:
        message.cloud.CopyFrom(training_state_to_proto(result.cloud))
    return message


def training_result_from_proto(message: training_pb2.TrainingResult) -> TrainingResult:
    return TrainingResult(
        step=message.step,
        weights_hash=message.weights_hash,
        mobile=training_state_from_proto(message.mobile),
        cloud=training_state_from_proto(message.cloud) if message.HasField("cloud") else None,
        global_checkpoint=message.global_checkpoint,
    )
