"""The Profile RPC of both services, and its client, over :func:`profile_model`.

Why one module: the cloud server and the mobile agent answer the same
``ProfileRequest`` with the same ``ProfileReply`` (the full profile as
``profile_json``), and the scheduler and ``collabdnn profile --cloud/--agent`` ask
either one the same way. Server-side code here raises domain errors
(:mod:`collabdnn.errors`); the servicers map them to status codes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from collabdnn.wire.proto import cloud_pb2, tensor_pb2

if TYPE_CHECKING:
    import grpc

    from collabdnn.model.split_model import SplitModel
    from collabdnn.planning.profiles import Profile

__all__ = [
    "MAX_PROFILE_RUNS",
    "ProfileSettings",
    "fetch_profile",
    "handle_profile",
    "profile_reply",
    "profile_request",
    "service_profiler",
    "settings_from_request",
]

# repeats x images x batch: one Profile call must not hold a service for minutes.
MAX_PROFILE_RUNS = 1000
DEFAULT_REPEATS = 5
DEFAULT_WARMUP = 1


@dataclass(frozen=True)
class ProfileSettings:
    """How to profile: timed and untimed runs per photo, batch size, link codec."""

    repeats: int = DEFAULT_REPEATS
    warmup: int = DEFAULT_WARMUP
    batch_size: int = 1
    codec_level: int = 1
    shuffle: bool = False


# (model, images, settings) -> JSON-ready profile dict (collabdnn.planning.profiles schema).
Profiler = Callable[["SplitModel", list[bytes], Any], dict[str, Any]]


def service_profiler(side: str) -> Profiler:
    """The real profiler (:func:`collabdnn.measure.profiler.profile_model`) for one side."""

    def profile(
        model: SplitModel, images: list[bytes], settings: ProfileSettings
    ) -> dict[str, Any]:
        from collabdnn.codec import CodecConfig
        from collabdnn.measure.profiler import profile_model

        return profile_model(
            model,
            side,
            images,
            repeats=settings.repeats,
            warmup=settings.warmup,
            batch_size=settings.batch_size,
            codec=CodecConfig(settings.codec_level, settings.shuffle),
        ).to_dict()

    return profile


def settings_from_request(request: cloud_pb2.ProfileRequest) -> ProfileSettings:
    """Validated settings; :class:`~collabdnn.errors.UnitRangeError` when too costly."""
    from collabdnn.errors import ImageError, UnitRangeError

    if not request.images:
        raise ImageError("Profile needs at least one sample image")
    codec = request.codec if request.HasField("codec") else tensor_pb2.CodecOptions(level=1)
    settings = ProfileSettings(
        repeats=request.repeats or DEFAULT_REPEATS,
        warmup=request.warmup or DEFAULT_WARMUP,
        batch_size=request.batch_size or 1,
        codec_level=codec.level,
        shuffle=codec.shuffle,
    )
    runs = (settings.repeats + settings.warmup) * len(request.images) * settings.batch_size
    if min(settings.repeats, settings.warmup, settings.batch_size) < 0 or runs > MAX_PROFILE_RUNS:
        raise UnitRangeError(
            f"Profile asks for {runs} runs; repeats, warmup and batch_size must be >= 0 and "
            f"(repeats + warmup) x images x batch_size at most {MAX_PROFILE_RUNS}"
        )
    return settings


def profile_reply(profile: dict[str, Any]) -> cloud_pb2.ProfileReply:
    """The reply for a profile dict (per-unit medians plus the whole JSON)."""

    def median(unit: dict[str, Any]) -> float:
        stats = unit.get("latency_ms")
        return float(stats["median"]) if isinstance(stats, dict) else float(unit["median_ms"])

    return cloud_pb2.ProfileReply(
        units=[
            cloud_pb2.UnitLatency(index=u["index"], name=u["name"], median_ms=median(u))
            for u in profile["units"]
        ],
        profile_json=json.dumps(profile),
    )


def handle_profile(
    model: SplitModel, side: str, request: cloud_pb2.ProfileRequest
) -> cloud_pb2.ProfileReply:
    """Answer a Profile call on ``side`` with ``model``: same model and weights or refuse."""
    from collabdnn.errors import UnknownModelError, WeightsError

    if request.model != model.name:
        raise UnknownModelError(f"this {side} holds model {model.name!r}, not {request.model!r}")
    if request.weights_hash != model.weights_hash:
        raise WeightsError(
            f"caller's weights hash {request.weights_hash or '(none)'!r} differs from this "
            f"{side}'s {model.weights_hash!r}"
        )
    settings = settings_from_request(request)
    images = [bytes(b) for b in request.images]
    return profile_reply(service_profiler(side)(model, images, settings))


# ------------------------------------------------------------------------------ client


def profile_request(
    model: str,
    weights_hash: str,
    images: Sequence[bytes],
    settings: ProfileSettings | None = None,
) -> cloud_pb2.ProfileRequest:
    settings = settings or ProfileSettings()
    return cloud_pb2.ProfileRequest(
        model=model, weights_hash=weights_hash, images=list(images),
        repeats=settings.repeats, warmup=settings.warmup, batch_size=settings.batch_size,
        codec=tensor_pb2.CodecOptions(level=settings.codec_level, shuffle=settings.shuffle),
    )  # fmt: skip


def fetch_profile(
    channel: grpc.Channel,
    role: str,
    images: Sequence[bytes],
    settings: ProfileSettings | None = None,
    timeout_s: float = 300.0,
) -> Profile:
    """Ask a running service (``role`` "cloud" or "mobile") to profile itself.

    Reads the service's model and weights hash from its Info first, so the caller needs
    to know neither. Raises ``grpc.RpcError`` from either call and
    :class:`~collabdnn.planning.profiles.ProfileError` for a malformed reply.
    """
    from collabdnn.planning.profiles import Profile, ProfileError
    from collabdnn.wire.proto import common_pb2, mobile_pb2_grpc

    if role == "cloud":
        from collabdnn.wire.proto import cloud_pb2_grpc

        stub: Any = cloud_pb2_grpc.CloudServerStub(channel)
        info = stub.Info(common_pb2.InfoRequest(), timeout=30.0)
    elif role == "mobile":
        stub = mobile_pb2_grpc.MobileAgentStub(channel)
        info = stub.Info(common_pb2.InfoRequest(), timeout=30.0).info
    else:
        raise ValueError(f"role must be 'cloud' or 'mobile', got {role!r}")
    request = profile_request(info.model, info.weights_hash, images, settings)
    reply = stub.Profile(request, timeout=timeout_s)
    try:
        profile = Profile.from_dict(json.loads(reply.profile_json))
    except (ValueError, TypeError) as exc:
        raise ProfileError(f"the {role} returned a malformed profile: {exc}") from exc
    if profile.side != role:
        raise ProfileError(f"asked the {role} for its profile, got side {profile.side!r}")
    return profile
