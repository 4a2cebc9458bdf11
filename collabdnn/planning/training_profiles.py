"""What one side measured about a training step, per unit: the training planner's input.

A :class:`TrainingProfile` holds, for every unit on one side and a batch of
``batch_size`` images: the forward and backward times and the optimizer's update of the
unit's parameters (medians; the planner counts backward + update), the activation's size
on the link after the codec and its codec times, and the same for the gradient of that
activation (``grad_bytes`` 0 where no gradient crosses: nothing upstream has
parameters). :func:`training_input_from_profiles` combines a mobile and a cloud profile
into :class:`~collabdnn.planning.training.TrainingInput`. Torch-free; JSON via
``to_dict`` / ``from_dict``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from collabdnn.placement import Side
from collabdnn.planning.profiles import Boundary, PlanInput, ProfileError, UnitCost
from collabdnn.planning.training import TrainingInput

SCHEMA = "collabdnn-training-profile/1"


@dataclass(frozen=True)
class TrainingUnitProfile:
    index: int
    name: str
    kind: str
    params: int
    forward_ms: float
    backward_ms: float
    update_ms: float  # the optimizer's step over the unit's parameters
    output_bytes: int  # the activation, raw
    encoded_bytes: int  # the activation on the link
    encode_ms: float
    decode_ms: float
    grad_bytes: int  # the activation's gradient on the link; 0: none crosses
    grad_encode_ms: float
    grad_decode_ms: float


@dataclass(frozen=True)
class TrainingProfile:
    side: Side
    model: str
    batch_size: int
    input_bytes: int  # the encoded images of one batch
    units: tuple[TrainingUnitProfile, ...]
    threads: int = 1
    repeats: int = 1

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["side"] = str(self.side)
        out["units"] = [asdict(u) for u in self.units]
        return {"schema": SCHEMA, **out}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingProfile:
        if data.get("schema") != SCHEMA:
            raise ProfileError(f"not a training profile (schema {data.get('schema')!r})")
        try:
            units = tuple(TrainingUnitProfile(**u) for u in data["units"])
            return cls(
                side=Side.coerce(data["side"]),
                model=data["model"],
                batch_size=int(data["batch_size"]),
                input_bytes=int(data["input_bytes"]),
                units=units,
                threads=int(data.get("threads", 1)),
                repeats=int(data.get("repeats", 1)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ProfileError(f"bad training profile: {exc}") from exc


def training_input_from_profiles(mobile: TrainingProfile, cloud: TrainingProfile) -> TrainingInput:
    """Both sides' measurements as the training planner's input. Sizes on the link come
    from the mobile profile; each side's times and codec times from its own."""
    if mobile.side != Side.MOBILE or cloud.side != Side.CLOUD:
        raise ProfileError("give the mobile profile, then the cloud profile")
    same = (mobile.model, mobile.batch_size, [u.name for u in mobile.units])
    if same != (cloud.model, cloud.batch_size, [u.name for u in cloud.units]):
        raise ProfileError("the two training profiles differ in model, batch size or units")
    pairs = list(zip(mobile.units, cloud.units, strict=True))
    forward = PlanInput(
        units=tuple(UnitCost(m.name, m.kind, m.forward_ms, c.forward_ms) for m, c in pairs),
        boundaries=(
            Boundary(mobile.input_bytes),
            *(
                Boundary(m.encoded_bytes, m.encode_ms, m.decode_ms, c.encode_ms, c.decode_ms)
                for m, c in pairs
            ),
        ),
    )
    backward = tuple(
        UnitCost(m.name, m.kind, m.backward_ms + m.update_ms, c.backward_ms + c.update_ms)
        for m, c in pairs
    )
    gradients: list[Boundary | None] = [None]  # no gradient for the photo
    for m, c in pairs:
        gradients.append(
            Boundary(
                m.grad_bytes, m.grad_encode_ms, m.grad_decode_ms, c.grad_encode_ms, c.grad_decode_ms
            )
            if m.grad_bytes
            else None
        )
    return TrainingInput(forward, backward, tuple(gradients), mobile.batch_size)


def slower_training_profile(profile: TrainingProfile, factor: float) -> TrainingProfile:
    """``profile`` as if measured on a device ``factor`` times slower: every time scaled,
    sizes kept (the training twin of :func:`~collabdnn.planning.profiles.slower_profile`,
    for the same reason: on one machine both sides share a CPU)."""
    units = tuple(
        replace(
            u,
            forward_ms=u.forward_ms * factor,
            backward_ms=u.backward_ms * factor,
            update_ms=u.update_ms * factor,
            encode_ms=u.encode_ms * factor,
            decode_ms=u.decode_ms * factor,
            grad_encode_ms=u.grad_encode_ms * factor,
            grad_decode_ms=u.grad_decode_ms * factor,
        )
        for u in profile.units
    )
    return replace(profile, units=units)
