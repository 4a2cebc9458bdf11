"""Typed clients of split training's two services (training.proto), as in
:mod:`collabdnn.wire.stubs`: domain objects in and out, a deadline on every call."""

from __future__ import annotations

from typing import TYPE_CHECKING

from collabdnn.wire.proto import training_pb2, training_pb2_grpc
from collabdnn.wire.serde import training as serde

if TYPE_CHECKING:
    import grpc

    from collabdnn.planning.training_profiles import TrainingProfile
    from collabdnn.training.spec import (
        BeginTraining,
        FinishTraining,
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
        TrainingState,
        TrainStep,
    )

__all__ = ["CLOUD_TRAINING_SERVICE", "MOBILE_TRAINING_SERVICE", "CloudTrainingStub", "TrainerStub"]

CLOUD_TRAINING_SERVICE: str = training_pb2.DESCRIPTOR.services_by_name["CloudTraining"].full_name
MOBILE_TRAINING_SERVICE: str = training_pb2.DESCRIPTOR.services_by_name["MobileTraining"].full_name


class CloudTrainingStub:
    """The cloud's half of a run: sessions, forward and backward passes, commits."""

    def __init__(self, channel: grpc.Channel) -> None:
        self._stub = training_pb2_grpc.CloudTrainingStub(channel)

    def begin(self, call: BeginTraining, *, timeout: float) -> TrainingState:
        reply = self._stub.BeginTraining(serde.begin_training_to_proto(call), timeout=timeout)
        return serde.training_state_from_proto(reply)

    def forward(self, call: TrainForward, *, timeout: float) -> TensorReply:
        reply = self._stub.TrainForward(serde.train_forward_to_proto(call), timeout=timeout)
        return serde.tensor_reply_from_proto(reply)

    def backward(self, call: TrainBackward, *, timeout: float) -> TensorReply:
        reply = self._stub.TrainBackward(serde.train_backward_to_proto(call), timeout=timeout)
        return serde.tensor_reply_from_proto(reply)

    def commit(self, call: StepCall, *, timeout: float) -> TrainingState:
        reply = self._stub.CommitStep(serde.step_call_to_proto(call), timeout=timeout)
        return serde.training_state_from_proto(reply)

    def abort(self, call: StepCall, *, timeout: float) -> TrainingState:
        reply = self._stub.AbortStep(serde.step_call_to_proto(call), timeout=timeout)
        return serde.training_state_from_proto(reply)

    def status(self, call: StatusRequest, *, timeout: float) -> TrainingState:
        reply = self._stub.TrainingStatus(serde.status_request_to_proto(call), timeout=timeout)
        return serde.training_state_from_proto(reply)

    def profile(self, query: TrainingProfileQuery, *, timeout: float) -> TrainingProfile:
        message = serde.training_profile_query_to_proto(query)
        return serde.training_profile_from_proto(
            self._stub.ProfileTraining(message, timeout=timeout)
        )


class TrainerStub:
    """The agent's training calls: start a run, one step per batch, finish."""

    def __init__(self, channel: grpc.Channel) -> None:
        self._stub = training_pb2_grpc.MobileTrainingStub(channel)

    def start(self, call: StartTraining, *, timeout: float) -> TrainingRun:
        reply = self._stub.StartTraining(serde.start_training_to_proto(call), timeout=timeout)
        return serde.training_run_from_proto(reply)

    def step(self, call: TrainStep, *, timeout: float) -> StepResult:
        reply = self._stub.TrainStep(serde.train_step_to_proto(call), timeout=timeout)
        return serde.step_result_from_proto(reply)

    def finish(self, call: FinishTraining, *, timeout: float) -> TrainingResult:
        reply = self._stub.FinishTraining(serde.finish_training_to_proto(call), timeout=timeout)
        return serde.training_result_from_proto(reply)

    def profile(self, query: TrainingProfileQuery, *, timeout: float) -> TrainingProfile:
        """The phone's training costs per unit (as the cloud's ProfileTraining)."""
        message = serde.training_profile_query_to_proto(query)
        return serde.training_profile_from_proto(
            self._stub.ProfileTraining(message, timeout=timeout)
        )

    def checkpoint(self, call: FinishTraining, *, timeout: float) -> TrainingResult:
        """Both sides' checkpoints at the current step; the run goes on."""
        message = serde.finish_training_to_proto(call)
        return serde.training_result_from_proto(
            self._stub.CheckpointTraining(message, timeout=timeout)
        )
