"""Serde of the messages every service shares (common.proto, tensor.proto): sides and
placements, the codec options, a service's load and identity, a link estimate."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, cast

from collabdnn.model.unit_info import UnitInfo
from collabdnn.placement import Placement, PlacementError, Side
from collabdnn.planning.link import Link, LinkEstimate
from collabdnn.services import Load, ServiceInfo
from collabdnn.wire.proto import common_pb2, tensor_pb2

if TYPE_CHECKING:
    from collabdnn.codec import CodecConfig

# --- sides and placements --------------------------------------------------------------
# The proto enum's names are the Side members' names (MOBILE, CLOUD): no table needed.


def side_to_proto(side: Side) -> common_pb2.Platform:
    return cast("common_pb2.Platform", common_pb2.Platform.Value(Side.coerce(side).name))


def side_from_proto(value: int) -> Side:
    """PlacementError for PLATFORM_UNSPECIFIED or a number this build does not know."""
    name = common_pb2.Platform.Name(value) if value in common_pb2.Platform.values() else ""
    if name not in Side.__members__:
        raise PlacementError("placement names an unspecified platform")
    return Side[name]


def sides_to_proto(sides: Iterable[Side]) -> common_pb2.PlatformList:
    return common_pb2.PlatformList(units=[side_to_proto(s) for s in sides])


def sides_from_proto(message: common_pb2.PlatformList) -> tuple[Side, ...]:
    return tuple(side_from_proto(u) for u in message.units)


def placement_to_proto(placement: Placement) -> common_pb2.Placement:
    if placement.everywhere is not None:
        return common_pb2.Placement(everywhere=side_to_proto(placement.everywhere))
    return common_pb2.Placement(per_unit=sides_to_proto(placement.per_unit))


def placement_from_proto(message: common_pb2.Placement) -> Placement | None:
    """``None`` for an empty message (no placement given); PlacementError if invalid."""
    kind = message.WhichOneof("kind")
    if kind is None:
        return None
    if kind == "everywhere":
        return Placement(everywhere=side_from_proto(message.everywhere))
    return Placement(per_unit=sides_from_proto(message.per_unit))


# --- the codec -------------------------------------------------------------------------


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


# --- what a service is -----------------------------------------------------------------


def load_to_proto(load: Load) -> common_pb2.Load:
    return common_pb2.Load(
        in_flight=load.in_flight, cpu_percent=load.cpu_percent, served=load.served
    )


def load_from_proto(message: common_pb2.Load) -> Load:
    return Load(message.in_flight, message.cpu_percent, message.served)


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


def service_info_to_proto(info: ServiceInfo) -> common_pb2.ServiceInfo:
    return common_pb2.ServiceInfo(
        role=str(info.role),
        version=info.version,
        model=info.model,
        weights=info.weights,
        weights_hash=info.weights_hash,
        device=info.device,
        threads=info.threads,
        load=load_to_proto(info.load),
        units=[unit_to_proto(u) for u in info.units],
    )


def service_info_from_proto(message: common_pb2.ServiceInfo) -> ServiceInfo:
    return ServiceInfo(
        role=Side.coerce(message.role),
        version=message.version,
        model=message.model,
        weights=message.weights,
        weights_hash=message.weights_hash,
        device=message.device,
        threads=message.threads,
        load=load_from_proto(message.load),
        units=tuple(unit_from_proto(u) for u in message.units),
    )


# --- the link --------------------------------------------------------------------------


def link_estimate_to_proto(estimate: LinkEstimate) -> common_pb2.LinkEstimate:
    link = estimate.link
    return common_pb2.LinkEstimate(
        up_mbps=link.up_mbps,
        down_mbps=link.down_mbps,
        rtt_ms=link.rtt_ms,
        network=link.network,
        observations=estimate.observations,
        emulated=estimate.emulated,
    )


def link_estimate_from_proto(message: common_pb2.LinkEstimate) -> LinkEstimate:
    """ValueError for figures no link has (a throughput <= 0, a negative RTT)."""
    link = Link(message.up_mbps, message.down_mbps, message.rtt_ms, message.network)
    return LinkEstimate(link, message.observations, message.emulated)
