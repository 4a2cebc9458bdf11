from collabdnn.wire.proto import common_pb2 as _common_pb2
from collabdnn.wire.proto import plan_pb2 as _plan_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ProfileSummary(_message.Message):
    __slots__ = ("model", "weights_hash", "units", "slowdown")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_HASH_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    SLOWDOWN_FIELD_NUMBER: _ClassVar[int]
    model: str
    weights_hash: str
    units: int
    slowdown: float
    def __init__(self, model: _Optional[str] = ..., weights_hash: _Optional[str] = ..., units: _Optional[int] = ..., slowdown: _Optional[float] = ...) -> None: ...

class AgentHeartbeat(_message.Message):
    __slots__ = ("agent_id", "address", "link", "battery", "profile", "plan_id", "rate_hz")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    LINK_FIELD_NUMBER: _ClassVar[int]
    BATTERY_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    PLAN_ID_FIELD_NUMBER: _ClassVar[int]
    RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    address: str
    link: _common_pb2.LinkEstimate
    battery: float
    profile: ProfileSummary
    plan_id: str
    rate_hz: float
    def __init__(self, agent_id: _Optional[str] = ..., address: _Optional[str] = ..., link: _Optional[_Union[_common_pb2.LinkEstimate, _Mapping]] = ..., battery: _Optional[float] = ..., profile: _Optional[_Union[ProfileSummary, _Mapping]] = ..., plan_id: _Optional[str] = ..., rate_hz: _Optional[float] = ...) -> None: ...

class HeartbeatReply(_message.Message):
    __slots__ = ("registered", "plan_id", "heartbeat_s", "timeout_s")
    REGISTERED_FIELD_NUMBER: _ClassVar[int]
    PLAN_ID_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_S_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    registered: bool
    plan_id: str
    heartbeat_s: float
    timeout_s: float
    def __init__(self, registered: _Optional[bool] = ..., plan_id: _Optional[str] = ..., heartbeat_s: _Optional[float] = ..., timeout_s: _Optional[float] = ...) -> None: ...

class GetFleetRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class FleetAgent(_message.Message):
    __slots__ = ("agent_id", "address", "plan", "plan_id", "pushed", "reason", "link", "battery", "rate_hz", "last_seen_s", "alone_spec", "profile")
    AGENT_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    PLAN_ID_FIELD_NUMBER: _ClassVar[int]
    PUSHED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    LINK_FIELD_NUMBER: _ClassVar[int]
    BATTERY_FIELD_NUMBER: _ClassVar[int]
    RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_S_FIELD_NUMBER: _ClassVar[int]
    ALONE_SPEC_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    agent_id: str
    address: str
    plan: _plan_pb2.PlanResult
    plan_id: str
    pushed: bool
    reason: str
    link: _common_pb2.LinkEstimate
    battery: float
    rate_hz: float
    last_seen_s: float
    alone_spec: str
    profile: ProfileSummary
    def __init__(self, agent_id: _Optional[str] = ..., address: _Optional[str] = ..., plan: _Optional[_Union[_plan_pb2.PlanResult, _Mapping]] = ..., plan_id: _Optional[str] = ..., pushed: _Optional[bool] = ..., reason: _Optional[str] = ..., link: _Optional[_Union[_common_pb2.LinkEstimate, _Mapping]] = ..., battery: _Optional[float] = ..., rate_hz: _Optional[float] = ..., last_seen_s: _Optional[float] = ..., alone_spec: _Optional[str] = ..., profile: _Optional[_Union[ProfileSummary, _Mapping]] = ...) -> None: ...

class FleetReply(_message.Message):
    __slots__ = ("fleet", "agents", "servers", "replicas", "utilisation", "utilisation_alone", "cloud_load", "rounds", "converged", "capacity_source")
    FLEET_FIELD_NUMBER: _ClassVar[int]
    AGENTS_FIELD_NUMBER: _ClassVar[int]
    SERVERS_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    UTILISATION_FIELD_NUMBER: _ClassVar[int]
    UTILISATION_ALONE_FIELD_NUMBER: _ClassVar[int]
    CLOUD_LOAD_FIELD_NUMBER: _ClassVar[int]
    ROUNDS_FIELD_NUMBER: _ClassVar[int]
    CONVERGED_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_SOURCE_FIELD_NUMBER: _ClassVar[int]
    fleet: bool
    agents: _containers.RepeatedCompositeFieldContainer[FleetAgent]
    servers: float
    replicas: int
    utilisation: float
    utilisation_alone: float
    cloud_load: float
    rounds: int
    converged: bool
    capacity_source: str
    def __init__(self, fleet: _Optional[bool] = ..., agents: _Optional[_Iterable[_Union[FleetAgent, _Mapping]]] = ..., servers: _Optional[float] = ..., replicas: _Optional[int] = ..., utilisation: _Optional[float] = ..., utilisation_alone: _Optional[float] = ..., cloud_load: _Optional[float] = ..., rounds: _Optional[int] = ..., converged: _Optional[bool] = ..., capacity_source: _Optional[str] = ...) -> None: ...

class CapacityRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class UnitService(_message.Message):
    __slots__ = ("index", "calls", "mean_ms")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    CALLS_FIELD_NUMBER: _ClassVar[int]
    MEAN_MS_FIELD_NUMBER: _ClassVar[int]
    index: int
    calls: int
    mean_ms: float
    def __init__(self, index: _Optional[int] = ..., calls: _Optional[int] = ..., mean_ms: _Optional[float] = ...) -> None: ...

class CloudCapacity(_message.Message):
    __slots__ = ("workers", "cpus", "threads", "units", "load")
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    CPUS_FIELD_NUMBER: _ClassVar[int]
    THREADS_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    LOAD_FIELD_NUMBER: _ClassVar[int]
    workers: int
    cpus: float
    threads: int
    units: _containers.RepeatedCompositeFieldContainer[UnitService]
    load: _common_pb2.Load
    def __init__(self, workers: _Optional[int] = ..., cpus: _Optional[float] = ..., threads: _Optional[int] = ..., units: _Optional[_Iterable[_Union[UnitService, _Mapping]]] = ..., load: _Optional[_Union[_common_pb2.Load, _Mapping]] = ...) -> None: ...

class Batching(_message.Message):
    __slots__ = ("requests", "rows", "bit_exact")
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    BIT_EXACT_FIELD_NUMBER: _ClassVar[int]
    requests: int
    rows: int
    bit_exact: bool
    def __init__(self, requests: _Optional[int] = ..., rows: _Optional[int] = ..., bit_exact: _Optional[bool] = ...) -> None: ...
