from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Platform(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PLATFORM_UNSPECIFIED: _ClassVar[Platform]
    MOBILE: _ClassVar[Platform]
    CLOUD: _ClassVar[Platform]
PLATFORM_UNSPECIFIED: Platform
MOBILE: Platform
CLOUD: Platform

class PlatformList(_message.Message):
    __slots__ = ("units",)
    UNITS_FIELD_NUMBER: _ClassVar[int]
    units: _containers.RepeatedScalarFieldContainer[Platform]
    def __init__(self, units: _Optional[_Iterable[_Union[Platform, str]]] = ...) -> None: ...

class Placement(_message.Message):
    __slots__ = ("everywhere", "per_unit")
    EVERYWHERE_FIELD_NUMBER: _ClassVar[int]
    PER_UNIT_FIELD_NUMBER: _ClassVar[int]
    everywhere: Platform
    per_unit: PlatformList
    def __init__(self, everywhere: _Optional[_Union[Platform, str]] = ..., per_unit: _Optional[_Union[PlatformList, _Mapping]] = ...) -> None: ...

class UnitDescription(_message.Message):
    __slots__ = ("index", "name", "kind", "output_shape", "dtype", "output_bytes", "params", "flops")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_SHAPE_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_BYTES_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    FLOPS_FIELD_NUMBER: _ClassVar[int]
    index: int
    name: str
    kind: str
    output_shape: _containers.RepeatedScalarFieldContainer[int]
    dtype: str
    output_bytes: int
    params: int
    flops: int
    def __init__(self, index: _Optional[int] = ..., name: _Optional[str] = ..., kind: _Optional[str] = ..., output_shape: _Optional[_Iterable[int]] = ..., dtype: _Optional[str] = ..., output_bytes: _Optional[int] = ..., params: _Optional[int] = ..., flops: _Optional[int] = ...) -> None: ...

class Load(_message.Message):
    __slots__ = ("in_flight", "cpu_percent", "served")
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    CPU_PERCENT_FIELD_NUMBER: _ClassVar[int]
    SERVED_FIELD_NUMBER: _ClassVar[int]
    in_flight: int
    cpu_percent: float
    served: int
    def __init__(self, in_flight: _Optional[int] = ..., cpu_percent: _Optional[float] = ..., served: _Optional[int] = ...) -> None: ...

class ServiceInfo(_message.Message):
    __slots__ = ("role", "version", "model", "weights", "weights_hash", "device", "threads", "load", "units")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_HASH_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    THREADS_FIELD_NUMBER: _ClassVar[int]
    LOAD_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    role: str
    version: str
    model: str
    weights: str
    weights_hash: str
    device: str
    threads: int
    load: Load
    units: _containers.RepeatedCompositeFieldContainer[UnitDescription]
    def __init__(self, role: _Optional[str] = ..., version: _Optional[str] = ..., model: _Optional[str] = ..., weights: _Optional[str] = ..., weights_hash: _Optional[str] = ..., device: _Optional[str] = ..., threads: _Optional[int] = ..., load: _Optional[_Union[Load, _Mapping]] = ..., units: _Optional[_Iterable[_Union[UnitDescription, _Mapping]]] = ...) -> None: ...

class InfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class LinkEstimate(_message.Message):
    __slots__ = ("up_mbps", "down_mbps", "rtt_ms", "network", "observations", "emulated")
    UP_MBPS_FIELD_NUMBER: _ClassVar[int]
    DOWN_MBPS_FIELD_NUMBER: _ClassVar[int]
    RTT_MS_FIELD_NUMBER: _ClassVar[int]
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    OBSERVATIONS_FIELD_NUMBER: _ClassVar[int]
    EMULATED_FIELD_NUMBER: _ClassVar[int]
    up_mbps: float
    down_mbps: float
    rtt_ms: float
    network: str
    observations: int
    emulated: bool
    def __init__(self, up_mbps: _Optional[float] = ..., down_mbps: _Optional[float] = ..., rtt_ms: _Optional[float] = ..., network: _Optional[str] = ..., observations: _Optional[int] = ..., emulated: _Optional[bool] = ...) -> None: ...
