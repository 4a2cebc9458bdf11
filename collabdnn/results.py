"""What a classification returns, as plain dataclasses (torch-free, JSON-ready).

The agent fills these in; :mod:`collabdnn.wire.serde` moves them across gRPC; the
``classify`` command prints them. Keys of :meth:`ClassifyResult.to_json` follow
the ``classify --json`` contract (``top5``, ``placement``, ``latency_ms``, ``bytes_up``,
``bytes_down``, ``mobile_energy_mj``, ``fallback``) plus per-unit timings.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from collabdnn.placement import Side, spec_of


@dataclass(frozen=True)
class Prediction:
    class_index: int
    label: str
    probability: float


@dataclass
class UnitTiming:
    """One unit's compute, and the crossing of its output when the next side differs."""

    index: int
    name: str
    platform: Side
    compute_ms: float = 0.0
    encode_ms: float = 0.0
    transfer_ms: float = 0.0
    decode_ms: float = 0.0
    bytes: int = 0


@dataclass
class Transfer:
    """One crossing of the link; ``after_unit`` -1 is the encoded image itself."""

    after_unit: int
    upload: bool
    bytes: int
    encode_ms: float = 0.0
    transfer_ms: float = 0.0  # network time of the Execute call, carried by the upload
    decode_ms: float = 0.0


@dataclass
class ClassifyResult:
    top: list[Prediction]
    placement: tuple[Side, ...]  # the placement used: one side per unit
    latency_ms: float
    bytes_up: int
    bytes_down: int
    mobile_energy_mj: float | None = None
    fallback: bool = False
    units: list[UnitTiming] = field(default_factory=list)
    transfers: list[Transfer] = field(default_factory=list)
    logits_frame: bytes = b""  # codec frame of the logits, when asked for
    emulated_link: bool = False  # the link was the agent's in-process emulated shaper

    def to_json(self) -> dict[str, Any]:
        """The ``classify --json`` keys, plus per-unit timings and transfers."""
        return {
            "top5": [
                {"label": p.label, "probability": p.probability, "class_index": p.class_index}
                for p in self.top
            ],
            "placement": [str(side) for side in self.placement],
            "placement_spec": spec_of(self.placement),
            "latency_ms": self.latency_ms,
            "bytes_up": self.bytes_up,
            "bytes_down": self.bytes_down,
            "mobile_energy_mj": self.mobile_energy_mj,
            "fallback": self.fallback,
            "emulated_link": self.emulated_link,
            "units": [{**asdict(u), "platform": str(u.platform)} for u in self.units],
            "transfers": [asdict(t) for t in self.transfers],
        }
