from collabdnn.wire.proto import common_pb2 as _common_pb2
from collabdnn.wire.proto import tensor_pb2 as _tensor_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LatencyStats(_message.Message):
    __slots__ = ("median", "p10", "p90", "repeats", "mean", "cpu")
    MEDIAN_FIELD_NUMBER: _ClassVar[int]
    P10_FIELD_NUMBER: _ClassVar[int]
    P90_FIELD_NUMBER: _ClassVar[int]
    REPEATS_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    CPU_FIELD_NUMBER: _ClassVar[int]
    median: float
    p10: float
    p90: float
    repeats: int
    mean: float
    cpu: float
    def __init__(self, median: _Optional[float] = ..., p10: _Optional[float] = ..., p90: _Optional[float] = ..., repeats: _Optional[int] = ..., mean: _Optional[float] = ..., cpu: _Optional[float] = ...) -> None: ...

class UnitProfile(_message.Message):
    __slots__ = ("index", "name", "kind", "flops", "params", "latency_ms", "output_bytes", "encoded_bytes", "encode_ms", "decode_ms", "codecs")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    FLOPS_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_BYTES_FIELD_NUMBER: _ClassVar[int]
    ENCODED_BYTES_FIELD_NUMBER: _ClassVar[int]
    ENCODE_MS_FIELD_NUMBER: _ClassVar[int]
    DECODE_MS_FIELD_NUMBER: _ClassVar[int]
    CODECS_FIELD_NUMBER: _ClassVar[int]
    index: int
    name: str
    kind: str
    flops: int
    params: int
    latency_ms: LatencyStats
    output_bytes: int
    encoded_bytes: int
    encode_ms: float
    decode_ms: float
    codecs: _containers.RepeatedCompositeFieldContainer[CodecFigures]
    def __init__(self, index: _Optional[int] = ..., name: _Optional[str] = ..., kind: _Optional[str] = ..., flops: _Optional[int] = ..., params: _Optional[int] = ..., latency_ms: _Optional[_Union[LatencyStats, _Mapping]] = ..., output_bytes: _Optional[int] = ..., encoded_bytes: _Optional[int] = ..., encode_ms: _Optional[float] = ..., decode_ms: _Optional[float] = ..., codecs: _Optional[_Iterable[_Union[CodecFigures, _Mapping]]] = ...) -> None: ...

class CodecFigures(_message.Message):
    __slots__ = ("name", "encoded_bytes", "encode_ms", "decode_ms", "crop_ms")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ENCODED_BYTES_FIELD_NUMBER: _ClassVar[int]
    ENCODE_MS_FIELD_NUMBER: _ClassVar[int]
    DECODE_MS_FIELD_NUMBER: _ClassVar[int]
    CROP_MS_FIELD_NUMBER: _ClassVar[int]
    name: str
    encoded_bytes: int
    encode_ms: float
    decode_ms: float
    crop_ms: float
    def __init__(self, name: _Optional[str] = ..., encoded_bytes: _Optional[int] = ..., encode_ms: _Optional[float] = ..., decode_ms: _Optional[float] = ..., crop_ms: _Optional[float] = ...) -> None: ...

class FactValue(_message.Message):
    __slots__ = ("null", "flag", "integer", "number", "text", "list", "facts")
    NULL_FIELD_NUMBER: _ClassVar[int]
    FLAG_FIELD_NUMBER: _ClassVar[int]
    INTEGER_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    LIST_FIELD_NUMBER: _ClassVar[int]
    FACTS_FIELD_NUMBER: _ClassVar[int]
    null: bool
    flag: bool
    integer: int
    number: float
    text: str
    list: FactList
    facts: Facts
    def __init__(self, null: _Optional[bool] = ..., flag: _Optional[bool] = ..., integer: _Optional[int] = ..., number: _Optional[float] = ..., text: _Optional[str] = ..., list: _Optional[_Union[FactList, _Mapping]] = ..., facts: _Optional[_Union[Facts, _Mapping]] = ...) -> None: ...

class FactList(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[FactValue]
    def __init__(self, items: _Optional[_Iterable[_Union[FactValue, _Mapping]]] = ...) -> None: ...

class Facts(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[Fact]
    def __init__(self, entries: _Optional[_Iterable[_Union[Fact, _Mapping]]] = ...) -> None: ...

class Fact(_message.Message):
    __slots__ = ("key", "value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: FactValue
    def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[FactValue, _Mapping]] = ...) -> None: ...

class Profile(_message.Message):
    __slots__ = ("schema", "side", "model", "weights_hash", "device", "threads", "batch_size", "created", "host", "codec", "input_bytes", "units", "input_codecs")
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_HASH_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    THREADS_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    CODEC_FIELD_NUMBER: _ClassVar[int]
    INPUT_BYTES_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    INPUT_CODECS_FIELD_NUMBER: _ClassVar[int]
    schema: str
    side: _common_pb2.Platform
    model: str
    weights_hash: str
    device: str
    threads: int
    batch_size: int
    created: str
    host: Facts
    codec: _tensor_pb2.CodecOptions
    input_bytes: int
    units: _containers.RepeatedCompositeFieldContainer[UnitProfile]
    input_codecs: _containers.RepeatedCompositeFieldContainer[CodecFigures]
    def __init__(self, schema: _Optional[str] = ..., side: _Optional[_Union[_common_pb2.Platform, str]] = ..., model: _Optional[str] = ..., weights_hash: _Optional[str] = ..., device: _Optional[str] = ..., threads: _Optional[int] = ..., batch_size: _Optional[int] = ..., created: _Optional[str] = ..., host: _Optional[_Union[Facts, _Mapping]] = ..., codec: _Optional[_Union[_tensor_pb2.CodecOptions, _Mapping]] = ..., input_bytes: _Optional[int] = ..., units: _Optional[_Iterable[_Union[UnitProfile, _Mapping]]] = ..., input_codecs: _Optional[_Iterable[_Union[CodecFigures, _Mapping]]] = ...) -> None: ...
