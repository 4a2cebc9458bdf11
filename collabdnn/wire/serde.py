"""Conversions between protobuf messages and domain objects, in pairs.

Every service and client converts here and nowhere else, so the wire format has one
definition. The module is torch-free at import time (thin clients use it); the tensor
conversions import the codec (and so torch) only when called.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, cast

from collabdnn.placement import AssignedPlan, Placement, PlacementError, Side
from collabdnn.results import ClassifyResult, Prediction, Transfer, UnitTiming
from collabdnn.wire.proto import common_pb2, mobile_pb2, tensor_pb2

if TYPE_CHECKING:
    import torch

    from collabdnn.codec import CodecConfig
    from collabdnn.model.split_model import SplitModel
    from collabdnn.model.units import UnitInfo


# --- sides -----------------------------------------------------------------------------
# The proto enum's names are the Side members' names (MOBILE, CLOUD): no table needed.


def side_to_proto(side: Side) -> common_pb2.Platform:
    return cast("common_pb2.Platform", common_pb2.Platform.Value(Side.coerce(side).name))


def side_from_proto(value: int) -> Side:
    """PlacementError for PLATFORM_UNSPECIFIED or a number this build does not know."""
    name = common_pb2.Platform.Name(value) if value in common_pb2.Platform.values() else ""
    if name not in Side.__members__:
        raise PlacementError("placement names an unspecified platform")
    return Side[name]


# --- tensors ---------------------------------------------------------------------------


def tensor_to_proto(tensor: torch.Tensor, config: CodecConfig | None = None) -> tensor_pb2.Tensor:
    from collabdnn.codec import encode

    return tensor_pb2.Tensor(frame=encode(tensor, config))


def tensor_from_proto(message: tensor_pb2.Tensor, max_bytes: int | None = None) -> torch.Tensor:
    """Decode a Tensor message; :class:`~collabdnn.errors.CodecError` if it is bad."""
    from collabdnn.codec import DEFAULT_MAX_BYTES, decode

    return decode(message.frame, DEFAULT_MAX_BYTES if max_bytes is None else max_bytes)


def codec_to_proto(config: CodecConfig) -> tensor_pb2.CodecOptions:
    return tensor_pb2.CodecOptions(level=config.level, shuffle=config.shuffle)


def codec_from_proto(message: tensor_pb2.CodecOptions) -> CodecConfig:
    """Raises :class:`~collabdnn.errors.CodecError` for a level zstd does not have."""
    from collabdnn.codec import CodecConfig
    from collabdnn.errors import CodecError

    try:
        return CodecConfig(level=message.level, shuffle=message.shuffle)
    except ValueError as exc:
        raise CodecError(str(exc)) from exc


# --- placements and plans --------------------------------------------------------------


def placement_to_proto(placement: Placement) -> common_pb2.Placement:
    if placement.everywhere is not None:
        return common_pb2.Placement(everywhere=side_to_proto(placement.everywhere))
    return sides_to_proto(placement.per_unit)


def sides_to_proto(sides: Iterable[Side]) -> common_pb2.Placement:
    units = [side_to_proto(s) for s in sides]
    return common_pb2.Placement(per_unit=common_pb2.PlatformList(units=units))


def placement_from_proto(message: common_pb2.Placement) -> Placement | None:
    """``None`` for an empty message (no placement given); PlacementError if invalid."""
    kind = message.WhichOneof("kind")
    if kind is None:
        return None
    if kind == "everywhere":
        return Placement(everywhere=side_from_proto(message.everywhere))
    return Placement(per_unit=tuple(side_from_proto(u) for u in message.per_unit.units))


def plan_to_proto(plan: AssignedPlan) -> mobile_pb2.Plan:
    return mobile_pb2.Plan(
        placement=placement_to_proto(plan.placement), plan_id=plan.plan_id, source=plan.source
    )


def plan_from_proto(message: mobile_pb2.Plan) -> AssignedPlan:
    placement = placement_from_proto(message.placement)
    if placement is None:
        raise PlacementError("a plan needs a placement")
    return AssignedPlan(placement, message.plan_id, message.source)


# --- units and service info ------------------------------------------------------------


def unit_to_proto(unit: UnitInfo) -> common_pb2.UnitDescription:
    return common_pb2.UnitDescription(
        index=unit.index,
        name=unit.name,
        kind=unit.kind,
        output_shape=list(unit.output_shape),
        dtype=unit.dtype,
        output_bytes=unit.output_bytes,
        params=unit.params,
        flops=unit.flops,
    )


def unit_from_proto(message: common_pb2.UnitDescription) -> UnitInfo:
    from collabdnn.model.units import UnitInfo

    return UnitInfo(
        message.index,
        message.name,
        message.kind,
        tuple(message.output_shape),
        message.dtype,
        message.output_bytes,
        message.params,
        message.flops,
    )


def service_info_to_proto(
    role: str, model: SplitModel, load: common_pb2.Load
) -> common_pb2.ServiceInfo:
    """What a side holds (``role`` is "cloud" or "mobile"): both services' Info."""
    import torch

    from collabdnn import __version__

    return common_pb2.ServiceInfo(
        role=role,
        version=__version__,
        model=model.name,
        weights=model.weights,
        weights_hash=model.weights_hash,
        device=str(model.device),
        threads=torch.get_num_threads(),
        load=load,
        units=[unit_to_proto(u) for u in model.units],
    )


# --- classification results ------------------------------------------------------------


def result_to_proto(result: ClassifyResult) -> mobile_pb2.ClassifyResult:
    message = mobile_pb2.ClassifyResult(
        top=[
            mobile_pb2.Prediction(
                class_index=p.class_index, label=p.label, probability=p.probability
            )
            for p in result.top
        ],
        placement=sides_to_proto(result.placement),
        latency_ms=result.latency_ms,
        bytes_up=result.bytes_up,
        bytes_down=result.bytes_down,
        fallback=result.fallback,
        emulated_link=result.emulated_link,
        units=[
            mobile_pb2.UnitTiming(
                index=u.index,
                name=u.name,
                platform=side_to_proto(u.platform),
                compute_ms=u.compute_ms,
                encode_ms=u.encode_ms,
                transfer_ms=u.transfer_ms,
                decode_ms=u.decode_ms,
                bytes=u.bytes,
            )
            for u in result.units
        ],
        transfers=[
            mobile_pb2.Transfer(
                after_unit=t.after_unit,
                upload=t.upload,
                bytes=t.bytes,
                encode_ms=t.encode_ms,
                transfer_ms=t.transfer_ms,
                decode_ms=t.decode_ms,
            )
            for t in result.transfers
        ],
    )
    if result.mobile_energy_mj is not None:
        message.mobile_energy_mj = result.mobile_energy_mj
    if result.logits_frame:
        message.logits.frame = result.logits_frame
    return message


def result_from_proto(message: mobile_pb2.ClassifyResult) -> ClassifyResult:
    placement = placement_from_proto(message.placement)
    sides = placement.per_unit if placement is not None and placement.per_unit else ()
    return ClassifyResult(
        top=[Prediction(p.class_index, p.label, p.probability) for p in message.top],
        placement=tuple(sides),
        latency_ms=message.latency_ms,
        bytes_up=message.bytes_up,
        bytes_down=message.bytes_down,
        mobile_energy_mj=(
            message.mobile_energy_mj if message.HasField("mobile_energy_mj") else None
        ),
        fallback=message.fallback,
        units=[
            UnitTiming(
                u.index,
                u.name,
                side_from_proto(u.platform),
                u.compute_ms,
                u.encode_ms,
                u.transfer_ms,
                u.decode_ms,
                u.bytes,
            )
            for u in message.units
        ],
        transfers=[
            Transfer(t.after_unit, t.upload, t.bytes, t.encode_ms, t.transfer_ms, t.decode_ms)
            for t in message.transfers
        ],
        logits_frame=bytes(message.logits.frame),
        emulated_link=message.emulated_link,
    )
