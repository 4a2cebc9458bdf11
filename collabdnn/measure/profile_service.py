"""The Profile call of both services, and its client, over :func:`profile_model`.

Why one module: the cloud server and the mobile agent answer the same query
(:class:`ProfileQuery`) with the same :class:`~collabdnn.planning.profiles.Profile`, and
the scheduler and ``collabdnn profile --cloud/--agent`` ask either one the same way.
Server-side code here raises domain errors (:mod:`collabdnn.errors`); the servicers map
them to status codes. The messages themselves are :mod:`collabdnn.wire.serde`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from collabdnn.placement import Side

if TYPE_CHECKING:
    import grpc

    from collabdnn.bounds import RequestLimits, StopCheck
    from collabdnn.model.split_model import SplitModel
    from collabdnn.planning.profiles import Profile

__all__ = [
    "MAX_PROFILE_RUNS",
    "ProfileQuery",
    "ProfileSettings",
    "fetch_profile",
    "handle_profile",
]

# repeats x images x batch: one Profile call must not hold a service for minutes.
MAX_PROFILE_RUNS = 1000
DEFAULT_REPEATS = 5
DEFAULT_WARMUP = 1


@dataclass(frozen=True)
class ProfileSettings:
    """How to profile: timed and untimed runs per photo, batch size, link codec.

    In a :class:`ProfileQuery`, 0 for ``repeats``, ``warmup`` or ``batch_size`` asks
    for the service's default.
    """

    repeats: int = DEFAULT_REPEATS
    warmup: int = DEFAULT_WARMUP
    batch_size: int = 1
    codec_level: int = 1
    shuffle: bool = False


@dataclass(frozen=True)
class ProfileQuery:
    """A Profile call: the caller's model and weights hash (the service refuses others),
    the sample photos whose real activations are timed, and how."""

    model: str
    weights_hash: str
    images: tuple[bytes, ...]
    settings: ProfileSettings = ProfileSettings()

    def resolved(self) -> ProfileSettings:
        """The settings with defaults filled in; :class:`~collabdnn.errors.ImageError`
        without photos, :class:`~collabdnn.errors.UnitRangeError` when too costly."""
        from collabdnn.errors import ImageError, UnitRangeError

        if not self.images:
            raise ImageError("Profile needs at least one sample image")
        given = self.settings
        settings = replace(
            given,
            repeats=given.repeats or DEFAULT_REPEATS,
            warmup=given.warmup or DEFAULT_WARMUP,
            batch_size=given.batch_size or 1,
        )
        runs = (settings.repeats + settings.warmup) * len(self.images) * settings.batch_size
        too_many = runs > MAX_PROFILE_RUNS
        if min(settings.repeats, settings.warmup, settings.batch_size) < 0 or too_many:
            raise UnitRangeError(
                f"Profile asks for {runs} runs; repeats, warmup and batch_size must be >= 0 "
                f"and (repeats + warmup) x images x batch_size at most {MAX_PROFILE_RUNS}"
            )
        return settings


def handle_profile(
    model: SplitModel,
    side: Side,
    query: ProfileQuery,
    limits: RequestLimits | None = None,
    should_stop: StopCheck | None = None,
) -> Profile:
    """Answer a Profile call on ``side`` with ``model``: same model and weights or refuse.

    ``limits`` bound the photos (count and bytes) and the batch size before any work;
    ``should_stop()`` is called between units (see :mod:`collabdnn.bounds`).
    """
    from collabdnn.bounds import RequestLimits
    from collabdnn.codec import CodecConfig
    from collabdnn.errors import CodecError, UnknownModelError, WeightsError
    from collabdnn.measure.profiler import profile_model

    if query.model != model.name:
        raise UnknownModelError(f"this {side} holds model {model.name!r}, not {query.model!r}")
    if query.weights_hash != model.weights_hash:
        raise WeightsError(
            f"caller's weights hash {query.weights_hash or '(none)'!r} differs from this "
            f"{side}'s {model.weights_hash!r}"
        )
    settings = query.resolved()
    limits = limits or RequestLimits()
    limits.check_images(query.images, "Profile")
    limits.check_batch(settings.batch_size, "Profile")
    try:
        codec = CodecConfig(settings.codec_level, settings.shuffle)
    except ValueError as exc:
        raise CodecError(str(exc)) from None
    return profile_model(
        model,
        side,
        list(query.images),
        repeats=settings.repeats,
        warmup=settings.warmup,
        batch_size=settings.batch_size,
        codec=codec,
        should_stop=should_stop,
    )


# ------------------------------------------------------------------------------ client


def fetch_profile(
    channel: grpc.Channel,
    role: Side | str,
    images: Sequence[bytes],
    settings: ProfileSettings | None = None,
    timeout_s: float = 300.0,
) -> Profile:
    """Ask a running service (``role`` "cloud" or "mobile") to profile itself.

    Reads the service's model and weights hash from its Info first, so the caller needs
    to know neither. Raises ``grpc.RpcError`` from either call and
    :class:`~collabdnn.planning.profiles.ProfileError` for a malformed reply.
    """
    from collabdnn.planning.profiles import ProfileError
    from collabdnn.wire.stubs import AgentStub, CloudStub

    if role not in tuple(Side):
        raise ValueError(f"role must be 'cloud' or 'mobile', got {role!r}")
    stub: CloudStub | AgentStub
    if role == Side.CLOUD:
        stub = CloudStub(channel)
        info = stub.info(timeout=30.0)
    else:
        stub = AgentStub(channel)
        info = stub.info(timeout=30.0).info
    settings = settings or ProfileSettings()
    query = ProfileQuery(info.model, info.weights_hash, tuple(images), settings)
    profile = stub.profile(query, timeout=timeout_s)
    if profile.side != role:
        raise ProfileError(f"asked the {role} for its profile, got side {str(profile.side)!r}")
    return profile
