from collabdnn.wire.proto import common_pb2 as _common_pb2
from collabdnn.wire.proto import fleet_pb2 as _fleet_pb2
from collabdnn.wire.proto import plan_pb2 as _plan_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetSchedulerPlanRequest(_message.Message):
    __slots__ = ("agent_id",)
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    def __init__(self, agent_id: _Optional[str] = ...) -> None: ...

class PlanReply(_message.Message):
    __slots__ = ("plan", "plan_id", "pushed", "reason", "model", "source")
    PLAN_FIELD_NUMBER: _ClassVar[int]
    PLAN_ID_FIELD_NUMBER: _ClassVar[int]
    PUSHED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    plan: _plan_pb2.PlanResult
    plan_id: str
    pushed: bool
    reason: str
    model: str
    source: str
    def __init__(self, plan: _Optional[_Union[_plan_pb2.PlanResult, _Mapping]] = ..., plan_id: _Optional[str] = ..., pushed: _Optional[bool] = ..., reason: _Optional[str] = ..., model: _Optional[str] = ..., source: _Optional[str] = ...) -> None: ...

class ReplanRequest(_message.Message):
    __slots__ = ("reprofile", "reason")
    REPROFILE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    reprofile: bool
    reason: str
    def __init__(self, reprofile: _Optional[bool] = ..., reason: _Optional[str] = ...) -> None: ...

class LinkReport(_message.Message):
    __slots__ = ("link", "source")
    LINK_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    link: _common_pb2.LinkEstimate
    source: str
    def __init__(self, link: _Optional[_Union[_common_pb2.LinkEstimate, _Mapping]] = ..., source: _Optional[str] = ...) -> None: ...

class BatteryReport(_message.Message):
    __slots__ = ("fraction",)
    FRACTION_FIELD_NUMBER: _ClassVar[int]
    fraction: float
    def __init__(self, fraction: _Optional[float] = ...) -> None: ...

class LoadReport(_message.Message):
    __slots__ = ("cloud_load", "load")
    CLOUD_LOAD_FIELD_NUMBER: _ClassVar[int]
    LOAD_FIELD_NUMBER: _ClassVar[int]
    cloud_load: float
    load: _common_pb2.Load
    def __init__(self, cloud_load: _Optional[float] = ..., load: _Optional[_Union[_common_pb2.Load, _Mapping]] = ...) -> None: ...

class ReportReply(_message.Message):
    __slots__ = ("replanned", "changed", "plan_id", "placement")
    REPLANNED_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    PLAN_ID_FIELD_NUMBER: _ClassVar[int]
    PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    replanned: bool
    changed: bool
    plan_id: str
    placement: _common_pb2.Placement
    def __init__(self, replanned: _Optional[bool] = ..., changed: _Optional[bool] = ..., plan_id: _Optional[str] = ..., placement: _Optional[_Union[_common_pb2.Placement, _Mapping]] = ...) -> None: ...

class ObjectiveRequest(_message.Message):
    __slots__ = ("objective", "deadline_ms", "weight")
    OBJECTIVE_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_MS_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    objective: str
    deadline_ms: float
    weight: float
    def __init__(self, objective: _Optional[str] = ..., deadline_ms: _Optional[float] = ..., weight: _Optional[float] = ...) -> None: ...

class TrainingPlanRequest(_message.Message):
    __slots__ = ("agent_id", "batch_size")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    batch_size: int
    def __init__(self, agent_id: _Optional[str] = ..., batch_size: _Optional[int] = ...) -> None: ...

class TrainingPlanReply(_message.Message):
    __slots__ = ("plan", "batch_size", "model", "source", "reason")
    PLAN_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    plan: _plan_pb2.PlanResult
    batch_size: int
    model: str
    source: str
    reason: str
    def __init__(self, plan: _Optional[_Union[_plan_pb2.PlanResult, _Mapping]] = ..., batch_size: _Optional[int] = ..., model: _Optional[str] = ..., source: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...
