from collabdnn.wire.proto import common_pb2 as _common_pb2
from collabdnn.wire.proto import fleet_pb2 as _fleet_pb2
from collabdnn.wire.proto import profile_pb2 as _profile_pb2
from collabdnn.wire.proto import tensor_pb2 as _tensor_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExecuteRequest(_message.Message):
    __slots__ = ("model", "weights_hash", "start", "end", "tensor", "images", "crops", "reply_codec", "request_id")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_HASH_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    TENSOR_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    CROPS_FIELD_NUMBER: _ClassVar[int]
    REPLY_CODEC_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    model: str
    weights_hash: str
    start: int
    end: int
    tensor: _tensor_pb2.Tensor
    images: _tensor_pb2.ImageBatch
    crops: _tensor_pb2.ImageBatch
    reply_codec: _tensor_pb2.CodecOptions
    request_id: str
    def __init__(self, model: _Optional[str] = ..., weights_hash: _Optional[str] = ..., start: _Optional[int] = ..., end: _Optional[int] = ..., tensor: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., images: _Optional[_Union[_tensor_pb2.ImageBatch, _Mapping]] = ..., crops: _Optional[_Union[_tensor_pb2.ImageBatch, _Mapping]] = ..., reply_codec: _Optional[_Union[_tensor_pb2.CodecOptions, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class UnitTime(_message.Message):
    __slots__ = ("index", "compute_ms")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_MS_FIELD_NUMBER: _ClassVar[int]
    index: int
    compute_ms: float
    def __init__(self, index: _Optional[int] = ..., compute_ms: _Optional[float] = ...) -> None: ...

class ExecuteReply(_message.Message):
    __slots__ = ("output", "units", "decode_ms", "encode_ms", "server_ms", "load", "batching")
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    DECODE_MS_FIELD_NUMBER: _ClassVar[int]
    ENCODE_MS_FIELD_NUMBER: _ClassVar[int]
    SERVER_MS_FIELD_NUMBER: _ClassVar[int]
    LOAD_FIELD_NUMBER: _ClassVar[int]
    BATCHING_FIELD_NUMBER: _ClassVar[int]
    output: _tensor_pb2.Tensor
    units: _containers.RepeatedCompositeFieldContainer[UnitTime]
    decode_ms: float
    encode_ms: float
    server_ms: float
    load: _common_pb2.Load
    batching: _fleet_pb2.Batching
    def __init__(self, output: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., units: _Optional[_Iterable[_Union[UnitTime, _Mapping]]] = ..., decode_ms: _Optional[float] = ..., encode_ms: _Optional[float] = ..., server_ms: _Optional[float] = ..., load: _Optional[_Union[_common_pb2.Load, _Mapping]] = ..., batching: _Optional[_Union[_fleet_pb2.Batching, _Mapping]] = ...) -> None: ...

class ProfileRequest(_message.Message):
    __slots__ = ("model", "weights_hash", "images", "repeats", "warmup", "batch_size", "codec")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_HASH_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    REPEATS_FIELD_NUMBER: _ClassVar[int]
    WARMUP_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    CODEC_FIELD_NUMBER: _ClassVar[int]
    model: str
    weights_hash: str
    images: _containers.RepeatedScalarFieldContainer[bytes]
    repeats: int
    warmup: int
    batch_size: int
    codec: _tensor_pb2.CodecOptions
    def __init__(self, model: _Optional[str] = ..., weights_hash: _Optional[str] = ..., images: _Optional[_Iterable[bytes]] = ..., repeats: _Optional[int] = ..., warmup: _Optional[int] = ..., batch_size: _Optional[int] = ..., codec: _Optional[_Union[_tensor_pb2.CodecOptions, _Mapping]] = ...) -> None: ...

class ProfileReply(_message.Message):
    __slots__ = ("profile",)
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    profile: _profile_pb2.Profile
    def __init__(self, profile: _Optional[_Union[_profile_pb2.Profile, _Mapping]] = ...) -> None: ...
