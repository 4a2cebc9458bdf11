from collabdnn.wire.proto import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Direction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DIRECTION_UNSPECIFIED: _ClassVar[Direction]
    UP: _ClassVar[Direction]
    DOWN: _ClassVar[Direction]
DIRECTION_UNSPECIFIED: Direction
UP: Direction
DOWN: Direction

class UnitBreakdown(_message.Message):
    __slots__ = ("index", "name", "platform", "compute_ms", "energy_mj")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_MS_FIELD_NUMBER: _ClassVar[int]
    ENERGY_MJ_FIELD_NUMBER: _ClassVar[int]
    index: int
    name: str
    platform: _common_pb2.Platform
    compute_ms: float
    energy_mj: float
    def __init__(self, index: _Optional[int] = ..., name: _Optional[str] = ..., platform: _Optional[_Union[_common_pb2.Platform, str]] = ..., compute_ms: _Optional[float] = ..., energy_mj: _Optional[float] = ...) -> None: ...

class TransferBreakdown(_message.Message):
    __slots__ = ("boundary", "after_unit", "direction", "bytes", "ms", "energy_mj", "codec")
    BOUNDARY_FIELD_NUMBER: _ClassVar[int]
    AFTER_UNIT_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    MS_FIELD_NUMBER: _ClassVar[int]
    ENERGY_MJ_FIELD_NUMBER: _ClassVar[int]
    CODEC_FIELD_NUMBER: _ClassVar[int]
    boundary: int
    after_unit: str
    direction: Direction
    bytes: int
    ms: float
    energy_mj: float
    codec: str
    def __init__(self, boundary: _Optional[int] = ..., after_unit: _Optional[str] = ..., direction: _Optional[_Union[Direction, str]] = ..., bytes: _Optional[int] = ..., ms: _Optional[float] = ..., energy_mj: _Optional[float] = ..., codec: _Optional[str] = ...) -> None: ...

class Cost(_message.Message):
    __slots__ = ("latency_ms", "mobile_energy_mj", "units", "transfers")
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    MOBILE_ENERGY_MJ_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    TRANSFERS_FIELD_NUMBER: _ClassVar[int]
    latency_ms: float
    mobile_energy_mj: float
    units: _containers.RepeatedCompositeFieldContainer[UnitBreakdown]
    transfers: _containers.RepeatedCompositeFieldContainer[TransferBreakdown]
    def __init__(self, latency_ms: _Optional[float] = ..., mobile_energy_mj: _Optional[float] = ..., units: _Optional[_Iterable[_Union[UnitBreakdown, _Mapping]]] = ..., transfers: _Optional[_Iterable[_Union[TransferBreakdown, _Mapping]]] = ...) -> None: ...

class Baseline(_message.Message):
    __slots__ = ("name", "placement", "cost", "feasible", "cut")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    FEASIBLE_FIELD_NUMBER: _ClassVar[int]
    CUT_FIELD_NUMBER: _ClassVar[int]
    name: str
    placement: _common_pb2.PlatformList
    cost: Cost
    feasible: bool
    cut: int
    def __init__(self, name: _Optional[str] = ..., placement: _Optional[_Union[_common_pb2.PlatformList, _Mapping]] = ..., cost: _Optional[_Union[Cost, _Mapping]] = ..., feasible: _Optional[bool] = ..., cut: _Optional[int] = ...) -> None: ...

class Link(_message.Message):
    __slots__ = ("up_mbps", "down_mbps", "rtt_ms", "network")
    UP_MBPS_FIELD_NUMBER: _ClassVar[int]
    DOWN_MBPS_FIELD_NUMBER: _ClassVar[int]
    RTT_MS_FIELD_NUMBER: _ClassVar[int]
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    up_mbps: float
    down_mbps: float
    rtt_ms: float
    network: str
    def __init__(self, up_mbps: _Optional[float] = ..., down_mbps: _Optional[float] = ..., rtt_ms: _Optional[float] = ..., network: _Optional[str] = ...) -> None: ...

class RadioModel(_message.Message):
    __slots__ = ("alpha_up_mw_per_mbps", "alpha_down_mw_per_mbps", "beta_mw")
    ALPHA_UP_MW_PER_MBPS_FIELD_NUMBER: _ClassVar[int]
    ALPHA_DOWN_MW_PER_MBPS_FIELD_NUMBER: _ClassVar[int]
    BETA_MW_FIELD_NUMBER: _ClassVar[int]
    alpha_up_mw_per_mbps: float
    alpha_down_mw_per_mbps: float
    beta_mw: float
    def __init__(self, alpha_up_mw_per_mbps: _Optional[float] = ..., alpha_down_mw_per_mbps: _Optional[float] = ..., beta_mw: _Optional[float] = ...) -> None: ...

class PowerModel(_message.Message):
    __slots__ = ("busy_mw", "wait_mw", "radio")
    BUSY_MW_FIELD_NUMBER: _ClassVar[int]
    WAIT_MW_FIELD_NUMBER: _ClassVar[int]
    RADIO_FIELD_NUMBER: _ClassVar[int]
    busy_mw: float
    wait_mw: float
    radio: RadioModel
    def __init__(self, busy_mw: _Optional[float] = ..., wait_mw: _Optional[float] = ..., radio: _Optional[_Union[RadioModel, _Mapping]] = ...) -> None: ...

class Constraints(_message.Message):
    __slots__ = ("deadline_ms", "battery_fraction", "battery_threshold", "cloud_load", "weight")
    DEADLINE_MS_FIELD_NUMBER: _ClassVar[int]
    BATTERY_FRACTION_FIELD_NUMBER: _ClassVar[int]
    BATTERY_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    CLOUD_LOAD_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    deadline_ms: float
    battery_fraction: float
    battery_threshold: float
    cloud_load: float
    weight: float
    def __init__(self, deadline_ms: _Optional[float] = ..., battery_fraction: _Optional[float] = ..., battery_threshold: _Optional[float] = ..., cloud_load: _Optional[float] = ..., weight: _Optional[float] = ...) -> None: ...

class PlanResult(_message.Message):
    __slots__ = ("objective", "objective_used", "reason", "units", "placement", "cost", "feasible", "objective_value", "baselines", "link", "power", "constraints")
    OBJECTIVE_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVE_USED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    FEASIBLE_FIELD_NUMBER: _ClassVar[int]
    OBJECTIVE_VALUE_FIELD_NUMBER: _ClassVar[int]
    BASELINES_FIELD_NUMBER: _ClassVar[int]
    LINK_FIELD_NUMBER: _ClassVar[int]
    POWER_FIELD_NUMBER: _ClassVar[int]
    CONSTRAINTS_FIELD_NUMBER: _ClassVar[int]
    objective: str
    objective_used: str
    reason: str
    units: _containers.RepeatedScalarFieldContainer[str]
    placement: _common_pb2.PlatformList
    cost: Cost
    feasible: bool
    objective_value: float
    baselines: _containers.RepeatedCompositeFieldContainer[Baseline]
    link: Link
    power: PowerModel
    constraints: Constraints
    def __init__(self, objective: _Optional[str] = ..., objective_used: _Optional[str] = ..., reason: _Optional[str] = ..., units: _Optional[_Iterable[str]] = ..., placement: _Optional[_Union[_common_pb2.PlatformList, _Mapping]] = ..., cost: _Optional[_Union[Cost, _Mapping]] = ..., feasible: _Optional[bool] = ..., objective_value: _Optional[float] = ..., baselines: _Optional[_Iterable[_Union[Baseline, _Mapping]]] = ..., link: _Optional[_Union[Link, _Mapping]] = ..., power: _Optional[_Union[PowerModel, _Mapping]] = ..., constraints: _Optional[_Union[Constraints, _Mapping]] = ...) -> None: ...
