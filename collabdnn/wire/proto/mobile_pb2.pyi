from collabdnn.wire.proto import cloud_pb2 as _cloud_pb2
from collabdnn.wire.proto import common_pb2 as _common_pb2
from collabdnn.wire.proto import tensor_pb2 as _tensor_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ClassifyRequest(_message.Message):
    __slots__ = ("images", "placement", "top_k", "return_logits", "codecs")
    class CodecsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: str
        def __init__(self, key: _Optional[int] = ..., value: _Optional[str] = ...) -> None: ...
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    RETURN_LOGITS_FIELD_NUMBER: _ClassVar[int]
    CODECS_FIELD_NUMBER: _ClassVar[int]
    images: _containers.RepeatedScalarFieldContainer[bytes]
    placement: _common_pb2.Placement
    top_k: int
    return_logits: bool
    codecs: _containers.ScalarMap[int, str]
    def __init__(self, images: _Optional[_Iterable[bytes]] = ..., placement: _Optional[_Union[_common_pb2.Placement, _Mapping]] = ..., top_k: _Optional[int] = ..., return_logits: _Optional[bool] = ..., codecs: _Optional[_Mapping[int, str]] = ...) -> None: ...

class Prediction(_message.Message):
    __slots__ = ("class_index", "label", "probability")
    CLASS_INDEX_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    class_index: int
    label: str
    probability: float
    def __init__(self, class_index: _Optional[int] = ..., label: _Optional[str] = ..., probability: _Optional[float] = ...) -> None: ...

class UnitTiming(_message.Message):
    __slots__ = ("index", "name", "platform", "compute_ms", "encode_ms", "transfer_ms", "decode_ms", "bytes")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_MS_FIELD_NUMBER: _ClassVar[int]
    ENCODE_MS_FIELD_NUMBER: _ClassVar[int]
    TRANSFER_MS_FIELD_NUMBER: _ClassVar[int]
    DECODE_MS_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    index: int
    name: str
    platform: _common_pb2.Platform
    compute_ms: float
    encode_ms: float
    transfer_ms: float
    decode_ms: float
    bytes: int
    def __init__(self, index: _Optional[int] = ..., name: _Optional[str] = ..., platform: _Optional[_Union[_common_pb2.Platform, str]] = ..., compute_ms: _Optional[float] = ..., encode_ms: _Optional[float] = ..., transfer_ms: _Optional[float] = ..., decode_ms: _Optional[float] = ..., bytes: _Optional[int] = ...) -> None: ...

class Transfer(_message.Message):
    __slots__ = ("after_unit", "upload", "bytes", "encode_ms", "transfer_ms", "decode_ms")
    AFTER_UNIT_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    ENCODE_MS_FIELD_NUMBER: _ClassVar[int]
    TRANSFER_MS_FIELD_NUMBER: _ClassVar[int]
    DECODE_MS_FIELD_NUMBER: _ClassVar[int]
    after_unit: int
    upload: bool
    bytes: int
    encode_ms: float
    transfer_ms: float
    decode_ms: float
    def __init__(self, after_unit: _Optional[int] = ..., upload: _Optional[bool] = ..., bytes: _Optional[int] = ..., encode_ms: _Optional[float] = ..., transfer_ms: _Optional[float] = ..., decode_ms: _Optional[float] = ...) -> None: ...

class ClassifyResult(_message.Message):
    __slots__ = ("top", "placement", "latency_ms", "bytes_up", "bytes_down", "mobile_energy_mj", "fallback", "units", "transfers", "logits", "emulated_link")
    TOP_FIELD_NUMBER: _ClassVar[int]
    PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    BYTES_UP_FIELD_NUMBER: _ClassVar[int]
    BYTES_DOWN_FIELD_NUMBER: _ClassVar[int]
    MOBILE_ENERGY_MJ_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    TRANSFERS_FIELD_NUMBER: _ClassVar[int]
    LOGITS_FIELD_NUMBER: _ClassVar[int]
    EMULATED_LINK_FIELD_NUMBER: _ClassVar[int]
    top: _containers.RepeatedCompositeFieldContainer[Prediction]
    placement: _common_pb2.Placement
    latency_ms: float
    bytes_up: int
    bytes_down: int
    mobile_energy_mj: float
    fallback: bool
    units: _containers.RepeatedCompositeFieldContainer[UnitTiming]
    transfers: _containers.RepeatedCompositeFieldContainer[Transfer]
    logits: _tensor_pb2.Tensor
    emulated_link: bool
    def __init__(self, top: _Optional[_Iterable[_Union[Prediction, _Mapping]]] = ..., placement: _Optional[_Union[_common_pb2.Placement, _Mapping]] = ..., latency_ms: _Optional[float] = ..., bytes_up: _Optional[int] = ..., bytes_down: _Optional[int] = ..., mobile_energy_mj: _Optional[float] = ..., fallback: _Optional[bool] = ..., units: _Optional[_Iterable[_Union[UnitTiming, _Mapping]]] = ..., transfers: _Optional[_Iterable[_Union[Transfer, _Mapping]]] = ..., logits: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., emulated_link: _Optional[bool] = ...) -> None: ...

class ClassifyReply(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ClassifyResult]
    def __init__(self, results: _Optional[_Iterable[_Union[ClassifyResult, _Mapping]]] = ...) -> None: ...

class Plan(_message.Message):
    __slots__ = ("placement", "plan_id", "source", "codecs")
    class CodecsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: str
        def __init__(self, key: _Optional[int] = ..., value: _Optional[str] = ...) -> None: ...
    PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    PLAN_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    CODECS_FIELD_NUMBER: _ClassVar[int]
    placement: _common_pb2.Placement
    plan_id: str
    source: str
    codecs: _containers.ScalarMap[int, str]
    def __init__(self, placement: _Optional[_Union[_common_pb2.Placement, _Mapping]] = ..., plan_id: _Optional[str] = ..., source: _Optional[str] = ..., codecs: _Optional[_Mapping[int, str]] = ...) -> None: ...

class GetPlanRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class MobileInfo(_message.Message):
    __slots__ = ("info", "cloud_address", "cloud_state", "plan", "link", "scheduler_address")
    INFO_FIELD_NUMBER: _ClassVar[int]
    CLOUD_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    CLOUD_STATE_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    LINK_FIELD_NUMBER: _ClassVar[int]
    SCHEDULER_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    info: _common_pb2.ServiceInfo
    cloud_address: str
    cloud_state: str
    plan: Plan
    link: _common_pb2.LinkEstimate
    scheduler_address: str
    def __init__(self, info: _Optional[_Union[_common_pb2.ServiceInfo, _Mapping]] = ..., cloud_address: _Optional[str] = ..., cloud_state: _Optional[str] = ..., plan: _Optional[_Union[Plan, _Mapping]] = ..., link: _Optional[_Union[_common_pb2.LinkEstimate, _Mapping]] = ..., scheduler_address: _Optional[str] = ...) -> None: ...
