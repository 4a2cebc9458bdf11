"""The request and reply messages of the three services, by name, for annotations.

Outside :mod:`collabdnn.wire` a servicer names its methods' message types, but never
builds or reads a message: it converts with :mod:`collabdnn.wire.serde` at once. So
import this module under ``TYPE_CHECKING`` only (``tests/test_layout.py`` checks it).
"""

from __future__ import annotations

from collabdnn.wire.proto.cloud_pb2 import (
    ExecuteReply,
    ExecuteRequest,
    ProfileReply,
    ProfileRequest,
)
from collabdnn.wire.proto.common_pb2 import InfoRequest, ServiceInfo
from collabdnn.wire.proto.fleet_pb2 import (
    AgentHeartbeat,
    CapacityRequest,
    CloudCapacity,
    FleetReply,
    GetFleetRequest,
    HeartbeatReply,
)
from collabdnn.wire.proto.mobile_pb2 import (
    ClassifyReply,
    ClassifyRequest,
    GetPlanRequest,
    MobileInfo,
    Plan,
)
from collabdnn.wire.proto.scheduler_pb2 import (
    BatteryReport,
    GetSchedulerPlanRequest,
    LinkReport,
    LoadReport,
    ObjectiveRequest,
    PlanReply,
    ReplanRequest,
    ReportReply,
    TrainingPlanReply,
    TrainingPlanRequest,
)
from collabdnn.wire.proto.training_pb2 import (
    BeginTrainingRequest,
    FinishTrainingRequest,
    StartTrainingRequest,
    StepRequest,
    TrainBackwardRequest,
    TrainForwardRequest,
    TrainingProfile,
    TrainingProfileRequest,
    TrainingResult,
    TrainingRun,
    TrainingState,
    TrainingStatusRequest,
    TrainStepReply,
    TrainStepRequest,
    TrainTensorReply,
)

__all__ = [
    "AgentHeartbeat",
    "BatteryReport",
    "BeginTrainingRequest",
    "CapacityRequest",
    "ClassifyReply",
    "ClassifyRequest",
    "CloudCapacity",
    "ExecuteReply",
    "ExecuteRequest",
    "FinishTrainingRequest",
    "FleetReply",
    "GetFleetRequest",
    "GetPlanRequest",
    "GetSchedulerPlanRequest",
    "HeartbeatReply",
    "InfoRequest",
    "LinkReport",
    "LoadReport",
    "MobileInfo",
    "ObjectiveRequest",
    "Plan",
    "PlanReply",
    "ProfileReply",
    "ProfileRequest",
    "ReplanRequest",
    "ReportReply",
    "ServiceInfo",
    "StartTrainingRequest",
    "StepRequest",
    "TrainBackwardRequest",
    "TrainForwardRequest",
    "TrainStepReply",
    "TrainStepRequest",
    "TrainTensorReply",
    "TrainingPlanReply",
    "TrainingPlanRequest",
    "TrainingProfile",
    "TrainingProfileRequest",
    "TrainingResult",
    "TrainingRun",
    "TrainingState",
    "TrainingStatusRequest",
]
