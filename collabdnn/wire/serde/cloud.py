"""Serde of the cloud's calls (cloud.proto) and of profiles (profile.proto): Execute's
request and reply, the Profile call both services answer, and the profile itself."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from collabdnn.measure.profile_service import ProfileQuery, ProfileSettings
from collabdnn.planning.profiles import (
    Codec,
    CodecFigures,
    LatencyStats,
    Profile,
    ProfileError,
    UnitProfile,
)
from collabdnn.services import BatchInfo, ExecuteReply, ExecuteRequest, UnitTime
from collabdnn.wire.proto import cloud_pb2, fleet_pb2, profile_pb2, tensor_pb2
from collabdnn.wire.proto.profile_pb2 import Profile as ProfileMessage  # not an RPC call
from collabdnn.wire.serde.common import (
    codec_from_proto,
    codec_to_proto,
    load_from_proto,
    load_to_proto,
    side_from_proto,
    side_to_proto,
)

# --- Execute ---------------------------------------------------------------------------


def execute_request_to_proto(request: ExecuteRequest) -> cloud_pb2.ExecuteRequest:
    message = cloud_pb2.ExecuteRequest(
        model=request.model,
        weights_hash=request.weights_hash,
        start=request.start,
        end=request.end,
        reply_codec=codec_to_proto(request.reply_codec),
        request_id=request.request_id,
    )
    if request.tensor is not None:
        message.tensor.SetInParent()  # set, even when the frame is empty
        message.tensor.frame = request.tensor
    elif request.images is not None:
        message.images.SetInParent()
        message.images.images.extend(request.images)
    elif request.crops is not None:
        message.crops.SetInParent()
        message.crops.images.extend(request.crops)
    return message


def execute_request_from_proto(message: cloud_pb2.ExecuteRequest) -> ExecuteRequest:
    """CodecError for a reply codec zstd does not have."""
    kind = message.WhichOneof("input")
    return ExecuteRequest(
        model=message.model,
        weights_hash=message.weights_hash,
        start=message.start,
        end=message.end,
        reply_codec=codec_from_proto(message.reply_codec),
        tensor=bytes(message.tensor.frame) if kind == "tensor" else None,
        images=tuple(bytes(b) for b in message.images.images) if kind == "images" else None,
        crops=tuple(bytes(b) for b in message.crops.images) if kind == "crops" else None,
        request_id=message.request_id,
    )


def execute_reply_to_proto(reply: ExecuteReply) -> cloud_pb2.ExecuteReply:
    return cloud_pb2.ExecuteReply(
        output=tensor_pb2.Tensor(frame=reply.output),
        units=[cloud_pb2.UnitTime(index=u.index, compute_ms=u.compute_ms) for u in reply.units],
        decode_ms=reply.decode_ms,
        encode_ms=reply.encode_ms,
        server_ms=reply.server_ms,
        load=load_to_proto(reply.load),
        batching=fleet_pb2.Batching(
            requests=reply.batching.requests,
            rows=reply.batching.rows,
            bit_exact=reply.batching.bit_exact,
        ),
    )


def execute_reply_from_proto(message: cloud_pb2.ExecuteReply) -> ExecuteReply:
    return ExecuteReply(
        output=bytes(message.output.frame),
        units=tuple(UnitTime(u.index, u.compute_ms) for u in message.units),
        decode_ms=message.decode_ms,
        encode_ms=message.encode_ms,
        server_ms=message.server_ms,
        load=load_from_proto(message.load),
        batching=(
            BatchInfo(message.batching.requests, message.batching.rows, message.batching.bit_exact)
            if message.HasField("batching")
            else BatchInfo()
        ),
    )


# --- the Profile call ------------------------------------------------------------------


def profile_query_to_proto(query: ProfileQuery) -> cloud_pb2.ProfileRequest:
    settings = query.settings
    return cloud_pb2.ProfileRequest(
        model=query.model,
        weights_hash=query.weights_hash,
        images=list(query.images),
        repeats=settings.repeats,
        warmup=settings.warmup,
        batch_size=settings.batch_size,
        codec=tensor_pb2.CodecOptions(level=settings.codec_level, shuffle=settings.shuffle),
    )


def profile_query_from_proto(message: cloud_pb2.ProfileRequest) -> ProfileQuery:
    """0 for repeats, warmup or batch size stays 0 (the service's default, see
    :meth:`ProfileQuery.resolved`); an absent codec is level 1 without shuffle."""
    codec = message.codec if message.HasField("codec") else tensor_pb2.CodecOptions(level=1)
    settings = ProfileSettings(
        repeats=message.repeats,
        warmup=message.warmup,
        batch_size=message.batch_size,
        codec_level=codec.level,
        shuffle=codec.shuffle,
    )
    return ProfileQuery(
        message.model, message.weights_hash, tuple(bytes(b) for b in message.images), settings
    )


def profile_reply_to_proto(profile: Profile) -> cloud_pb2.ProfileReply:
    return cloud_pb2.ProfileReply(profile=profile_to_proto(profile))


def profile_reply_from_proto(message: cloud_pb2.ProfileReply) -> Profile:
    """ProfileError when the reply holds no profile or a malformed one."""
    if not message.HasField("profile"):
        raise ProfileError("the Profile reply holds no profile")
    return profile_from_proto(message.profile)


# --- profiles --------------------------------------------------------------------------


def profile_to_proto(profile: Profile) -> ProfileMessage:
    return ProfileMessage(
        schema=profile.schema,
        side=side_to_proto(profile.side),
        model=profile.model,
        weights_hash=profile.weights_hash,
        device=profile.device,
        threads=profile.threads,
        batch_size=profile.batch_size,
        created=profile.created,
        host=facts_to_proto(profile.host),
        codec=tensor_pb2.CodecOptions(level=profile.codec.level, shuffle=profile.codec.shuffle),
        input_bytes=profile.input_bytes,
        units=[_unit_profile_to_proto(u) for u in profile.units],
        input_codecs=[_figures_to_proto(c) for c in profile.input_codecs],
    )


def profile_from_proto(message: ProfileMessage) -> Profile:
    """ProfileError for a profile that does not validate (see ``Profile``)."""
    try:
        side = side_from_proto(message.side)
    except ValueError as exc:  # PlacementError
        raise ProfileError(f"profile.side: {exc}") from None
    return Profile(
        schema=message.schema,
        side=side,
        model=message.model,
        weights_hash=message.weights_hash,
        device=message.device,
        threads=message.threads,
        batch_size=message.batch_size,
        created=message.created,
        host=facts_from_proto(message.host),
        codec=Codec(level=message.codec.level, shuffle=message.codec.shuffle),
        input_bytes=message.input_bytes,
        units=tuple(_unit_profile_from_proto(u) for u in message.units),
        input_codecs=tuple(_figures_from_proto(c) for c in message.input_codecs),
    )


def _unit_profile_to_proto(unit: UnitProfile) -> profile_pb2.UnitProfile:
    stats = unit.latency_ms
    return profile_pb2.UnitProfile(
        index=unit.index,
        name=unit.name,
        kind=unit.kind,
        flops=unit.flops,
        params=unit.params,
        latency_ms=profile_pb2.LatencyStats(
            median=stats.median,
            p10=stats.p10,
            p90=stats.p90,
            repeats=stats.repeats,
            mean=stats.mean,
            cpu=stats.cpu,
        ),
        output_bytes=unit.output_bytes,
        encoded_bytes=unit.encoded_bytes,
        encode_ms=unit.encode_ms,
        decode_ms=unit.decode_ms,
        codecs=[_figures_to_proto(c) for c in unit.codecs],
    )


def _unit_profile_from_proto(message: profile_pb2.UnitProfile) -> UnitProfile:
    stats = message.latency_ms
    return UnitProfile(
        index=message.index,
        name=message.name,
        kind=message.kind,
        flops=message.flops,
        params=message.params,
        latency_ms=LatencyStats(
            stats.median,
            stats.p10,
            stats.p90,
            stats.repeats,
            stats.mean if stats.HasField("mean") else None,
            stats.cpu if stats.HasField("cpu") else None,
        ),
        output_bytes=message.output_bytes,
        encoded_bytes=message.encoded_bytes,
        encode_ms=message.encode_ms,
        decode_ms=message.decode_ms,
        codecs=tuple(_figures_from_proto(c) for c in message.codecs),
    )


def _figures_to_proto(figures: CodecFigures) -> profile_pb2.CodecFigures:
    return profile_pb2.CodecFigures(
        name=figures.name,
        encoded_bytes=figures.encoded_bytes,
        encode_ms=figures.encode_ms,
        decode_ms=figures.decode_ms,
        crop_ms=figures.crop_ms,
    )


def _figures_from_proto(message: profile_pb2.CodecFigures) -> CodecFigures:
    return CodecFigures(
        message.name, message.encoded_bytes, message.encode_ms, message.decode_ms, message.crop_ms
    )


# --- free-form facts (a profile's host) ------------------------------------------------


def facts_to_proto(facts: Mapping[str, Any]) -> profile_pb2.Facts:
    """JSON-like facts, key order kept; ProfileError for a value JSON does not have."""
    return profile_pb2.Facts(
        entries=[profile_pb2.Fact(key=str(k), value=_fact_to_proto(v)) for k, v in facts.items()]
    )


def facts_from_proto(message: profile_pb2.Facts) -> dict[str, Any]:
    return {entry.key: _fact_from_proto(entry.value) for entry in message.entries}


def _fact_to_proto(value: Any) -> profile_pb2.FactValue:
    if value is None:
        return profile_pb2.FactValue(null=True)
    if isinstance(value, bool):
        return profile_pb2.FactValue(flag=value)
    if isinstance(value, int):
        return profile_pb2.FactValue(integer=value)
    if isinstance(value, float) and math.isfinite(value):
        return profile_pb2.FactValue(number=value)
    if isinstance(value, str):
        return profile_pb2.FactValue(text=value)
    if isinstance(value, list | tuple):
        return profile_pb2.FactValue(
            list=profile_pb2.FactList(items=[_fact_to_proto(v) for v in value])
        )
    if isinstance(value, Mapping):
        return profile_pb2.FactValue(facts=facts_to_proto(value))
    raise ProfileError(f"profile.host holds {value!r}, which JSON cannot hold")


def _fact_from_proto(message: profile_pb2.FactValue) -> Any:
    kind = message.WhichOneof("kind")
    if kind == "list":
        return [_fact_from_proto(v) for v in message.list.items]
    if kind == "facts":
        return facts_from_proto(message.facts)
    if kind is None or kind == "null":
        return None
    return getattr(message, kind)
