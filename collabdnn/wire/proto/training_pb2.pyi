from collabdnn.wire.proto import tensor_pb2 as _tensor_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OptimizerSettings(_message.Message):
    __slots__ = ("kind", "lr", "momentum", "weight_decay", "beta1", "beta2", "eps")
    KIND_FIELD_NUMBER: _ClassVar[int]
    LR_FIELD_NUMBER: _ClassVar[int]
    MOMENTUM_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_DECAY_FIELD_NUMBER: _ClassVar[int]
    BETA1_FIELD_NUMBER: _ClassVar[int]
    BETA2_FIELD_NUMBER: _ClassVar[int]
    EPS_FIELD_NUMBER: _ClassVar[int]
    kind: str
    lr: float
    momentum: float
    weight_decay: float
    beta1: float
    beta2: float
    eps: float
    def __init__(self, kind: _Optional[str] = ..., lr: _Optional[float] = ..., momentum: _Optional[float] = ..., weight_decay: _Optional[float] = ..., beta1: _Optional[float] = ..., beta2: _Optional[float] = ..., eps: _Optional[float] = ...) -> None: ...

class BeginTrainingRequest(_message.Message):
    __slots__ = ("session_id", "model", "weights_hash", "placement", "optimizer", "seed", "resume_session", "resume_step")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_HASH_FIELD_NUMBER: _ClassVar[int]
    PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    OPTIMIZER_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    RESUME_SESSION_FIELD_NUMBER: _ClassVar[int]
    RESUME_STEP_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    model: str
    weights_hash: str
    placement: str
    optimizer: OptimizerSettings
    seed: int
    resume_session: str
    resume_step: int
    def __init__(self, session_id: _Optional[str] = ..., model: _Optional[str] = ..., weights_hash: _Optional[str] = ..., placement: _Optional[str] = ..., optimizer: _Optional[_Union[OptimizerSettings, _Mapping]] = ..., seed: _Optional[int] = ..., resume_session: _Optional[str] = ..., resume_step: _Optional[int] = ...) -> None: ...

class TrainForwardRequest(_message.Message):
    __slots__ = ("session_id", "step", "start", "end", "tensor", "images", "reply_codec")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    TENSOR_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    REPLY_CODEC_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    step: int
    start: int
    end: int
    tensor: _tensor_pb2.Tensor
    images: _tensor_pb2.ImageBatch
    reply_codec: _tensor_pb2.CodecOptions
    def __init__(self, session_id: _Optional[str] = ..., step: _Optional[int] = ..., start: _Optional[int] = ..., end: _Optional[int] = ..., tensor: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., images: _Optional[_Union[_tensor_pb2.ImageBatch, _Mapping]] = ..., reply_codec: _Optional[_Union[_tensor_pb2.CodecOptions, _Mapping]] = ...) -> None: ...

class TrainBackwardRequest(_message.Message):
    __slots__ = ("session_id", "step", "start", "grad", "reply_codec")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    GRAD_FIELD_NUMBER: _ClassVar[int]
    REPLY_CODEC_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    step: int
    start: int
    grad: _tensor_pb2.Tensor
    reply_codec: _tensor_pb2.CodecOptions
    def __init__(self, session_id: _Optional[str] = ..., step: _Optional[int] = ..., start: _Optional[int] = ..., grad: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., reply_codec: _Optional[_Union[_tensor_pb2.CodecOptions, _Mapping]] = ...) -> None: ...

class TrainTensorReply(_message.Message):
    __slots__ = ("output", "server_ms")
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    SERVER_MS_FIELD_NUMBER: _ClassVar[int]
    output: _tensor_pb2.Tensor
    server_ms: float
    def __init__(self, output: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., server_ms: _Optional[float] = ...) -> None: ...

class StepRequest(_message.Message):
    __slots__ = ("session_id", "step")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    step: int
    def __init__(self, session_id: _Optional[str] = ..., step: _Optional[int] = ...) -> None: ...

class TrainingStatusRequest(_message.Message):
    __slots__ = ("session_id", "checkpoint", "end")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    checkpoint: bool
    end: bool
    def __init__(self, session_id: _Optional[str] = ..., checkpoint: _Optional[bool] = ..., end: _Optional[bool] = ...) -> None: ...

class EntryDigest(_message.Message):
    __slots__ = ("name", "digest")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    name: str
    digest: str
    def __init__(self, name: _Optional[str] = ..., digest: _Optional[str] = ...) -> None: ...

class TrainingState(_message.Message):
    __slots__ = ("session_id", "step", "digests", "checkpoint")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    DIGESTS_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    step: int
    digests: _containers.RepeatedCompositeFieldContainer[EntryDigest]
    checkpoint: str
    def __init__(self, session_id: _Optional[str] = ..., step: _Optional[int] = ..., digests: _Optional[_Iterable[_Union[EntryDigest, _Mapping]]] = ..., checkpoint: _Optional[str] = ...) -> None: ...

class StartTrainingRequest(_message.Message):
    __slots__ = ("placement", "optimizer", "seed", "batch_size", "resume_session", "resume_step")
    PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    OPTIMIZER_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    RESUME_SESSION_FIELD_NUMBER: _ClassVar[int]
    RESUME_STEP_FIELD_NUMBER: _ClassVar[int]
    placement: str
    optimizer: OptimizerSettings
    seed: int
    batch_size: int
    resume_session: str
    resume_step: int
    def __init__(self, placement: _Optional[str] = ..., optimizer: _Optional[_Union[OptimizerSettings, _Mapping]] = ..., seed: _Optional[int] = ..., batch_size: _Optional[int] = ..., resume_session: _Optional[str] = ..., resume_step: _Optional[int] = ...) -> None: ...

class TrainingProfileRequest(_message.Message):
    __slots__ = ("model", "weights_hash", "images", "batch_size", "repeats")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_HASH_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    REPEATS_FIELD_NUMBER: _ClassVar[int]
    model: str
    weights_hash: str
    images: _tensor_pb2.ImageBatch
    batch_size: int
    repeats: int
    def __init__(self, model: _Optional[str] = ..., weights_hash: _Optional[str] = ..., images: _Optional[_Union[_tensor_pb2.ImageBatch, _Mapping]] = ..., batch_size: _Optional[int] = ..., repeats: _Optional[int] = ...) -> None: ...

class TrainingUnitProfile(_message.Message):
    __slots__ = ("index", "name", "kind", "params", "forward_ms", "backward_ms", "update_ms", "output_bytes", "encoded_bytes", "encode_ms", "decode_ms", "grad_bytes", "grad_encode_ms", "grad_decode_ms")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    FORWARD_MS_FIELD_NUMBER: _ClassVar[int]
    BACKWARD_MS_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_BYTES_FIELD_NUMBER: _ClassVar[int]
    ENCODED_BYTES_FIELD_NUMBER: _ClassVar[int]
    ENCODE_MS_FIELD_NUMBER: _ClassVar[int]
    DECODE_MS_FIELD_NUMBER: _ClassVar[int]
    GRAD_BYTES_FIELD_NUMBER: _ClassVar[int]
    GRAD_ENCODE_MS_FIELD_NUMBER: _ClassVar[int]
    GRAD_DECODE_MS_FIELD_NUMBER: _ClassVar[int]
    index: int
    name: str
    kind: str
    params: int
    forward_ms: float
    backward_ms: float
    update_ms: float
    output_bytes: int
    encoded_bytes: int
    encode_ms: float
    decode_ms: float
    grad_bytes: int
    grad_encode_ms: float
    grad_decode_ms: float
    def __init__(self, index: _Optional[int] = ..., name: _Optional[str] = ..., kind: _Optional[str] = ..., params: _Optional[int] = ..., forward_ms: _Optional[float] = ..., backward_ms: _Optional[float] = ..., update_ms: _Optional[float] = ..., output_bytes: _Optional[int] = ..., encoded_bytes: _Optional[int] = ..., encode_ms: _Optional[float] = ..., decode_ms: _Optional[float] = ..., grad_bytes: _Optional[int] = ..., grad_encode_ms: _Optional[float] = ..., grad_decode_ms: _Optional[float] = ...) -> None: ...

class TrainingProfile(_message.Message):
    __slots__ = ("side", "model", "batch_size", "input_bytes", "units", "threads", "repeats")
    SIDE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    INPUT_BYTES_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    THREADS_FIELD_NUMBER: _ClassVar[int]
    REPEATS_FIELD_NUMBER: _ClassVar[int]
    side: str
    model: str
    batch_size: int
    input_bytes: int
    units: _containers.RepeatedCompositeFieldContainer[TrainingUnitProfile]
    threads: int
    repeats: int
    def __init__(self, side: _Optional[str] = ..., model: _Optional[str] = ..., batch_size: _Optional[int] = ..., input_bytes: _Optional[int] = ..., units: _Optional[_Iterable[_Union[TrainingUnitProfile, _Mapping]]] = ..., threads: _Optional[int] = ..., repeats: _Optional[int] = ...) -> None: ...

class TrainingRun(_message.Message):
    __slots__ = ("session_id", "step", "model", "weights_hash", "placement", "placement_source", "labels", "plan_source")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_HASH_FIELD_NUMBER: _ClassVar[int]
    PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    PLACEMENT_SOURCE_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    PLAN_SOURCE_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    step: int
    model: str
    weights_hash: str
    placement: str
    placement_source: str
    labels: _containers.RepeatedScalarFieldContainer[str]
    plan_source: str
    def __init__(self, session_id: _Optional[str] = ..., step: _Optional[int] = ..., model: _Optional[str] = ..., weights_hash: _Optional[str] = ..., placement: _Optional[str] = ..., placement_source: _Optional[str] = ..., labels: _Optional[_Iterable[str]] = ..., plan_source: _Optional[str] = ...) -> None: ...

class TrainStepRequest(_message.Message):
    __slots__ = ("session_id", "step", "images", "labels")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    step: int
    images: _tensor_pb2.ImageBatch
    labels: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, session_id: _Optional[str] = ..., step: _Optional[int] = ..., images: _Optional[_Union[_tensor_pb2.ImageBatch, _Mapping]] = ..., labels: _Optional[_Iterable[int]] = ...) -> None: ...

class TrainStepReply(_message.Message):
    __slots__ = ("step", "loss", "ms", "bytes_up", "bytes_down", "attempts")
    STEP_FIELD_NUMBER: _ClassVar[int]
    LOSS_FIELD_NUMBER: _ClassVar[int]
    MS_FIELD_NUMBER: _ClassVar[int]
    BYTES_UP_FIELD_NUMBER: _ClassVar[int]
    BYTES_DOWN_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    step: int
    loss: float
    ms: float
    bytes_up: int
    bytes_down: int
    attempts: int
    def __init__(self, step: _Optional[int] = ..., loss: _Optional[float] = ..., ms: _Optional[float] = ..., bytes_up: _Optional[int] = ..., bytes_down: _Optional[int] = ..., attempts: _Optional[int] = ...) -> None: ...

class FinishTrainingRequest(_message.Message):
    __slots__ = ("session_id", "checkpoint")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    checkpoint: bool
    def __init__(self, session_id: _Optional[str] = ..., checkpoint: _Optional[bool] = ...) -> None: ...

class TrainingResult(_message.Message):
    __slots__ = ("step", "weights_hash", "mobile", "cloud", "global_checkpoint")
    STEP_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_HASH_FIELD_NUMBER: _ClassVar[int]
    MOBILE_FIELD_NUMBER: _ClassVar[int]
    CLOUD_FIELD_NUMBER: _ClassVar[int]
    GLOBAL_CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    step: int
    weights_hash: str
    mobile: TrainingState
    cloud: TrainingState
    global_checkpoint: str
    def __init__(self, step: _Optional[int] = ..., weights_hash: _Optional[str] = ..., mobile: _Optional[_Union[TrainingState, _Mapping]] = ..., cloud: _Optional[_Union[TrainingState, _Mapping]] = ..., global_checkpoint: _Optional[str] = ...) -> None: ...
