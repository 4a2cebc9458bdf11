"""Placements: which side runs each unit, and the runs of consecutive units they form.

A placement spec is ``mobile``, ``cloud``, or one letter per unit in unit order, unit 0
(preprocessing) included: ``M`` for mobile, ``C`` for cloud (case-insensitive), e.g.
``MMMCCCCCCMMM``. Torch-free: thin clients parse specs too.
"""

from __future__ import annotations

from dataclasses import dataclass

from collabdnn.errors import CollabError

MOBILE = "M"
CLOUD = "C"
_WORDS = {"mobile": MOBILE, "cloud": CLOUD}


class PlacementError(CollabError, ValueError):
    """A placement spec that cannot be read, or does not fit the model."""


_ECHO_CHARS = 64  # of a caller's spec quoted back in an error (a status message, a log)


def _clip(text: str) -> str:
    """``text``, or its start and its length: a 100,000-letter spec is not echoed back."""
    if len(text) <= _ECHO_CHARS:
        return text
    return f"{text[:_ECHO_CHARS]}... ({len(text):,} characters)"


@dataclass(frozen=True)
class Segment:
    """A maximal run of consecutive units on one side: units ``[start, end)``."""

    side: str
    start: int
    end: int


@dataclass(frozen=True)
class Placement:
    """Either one side for every unit (``everywhere``) or one side per unit (``per_unit``).

    ``everywhere`` placements fit any model; :meth:`resolve` turns either kind into one
    letter per unit for a model of a given size.
    """

    everywhere: str | None = None
    per_unit: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if (self.everywhere is None) == (not self.per_unit):
            raise PlacementError("a placement is either one side everywhere or one side per unit")
        sides = [self.everywhere] if self.everywhere is not None else list(self.per_unit)
        bad = sorted({s for s in sides if s not in (MOBILE, CLOUD)})
        if bad:
            shown = _clip(", ".join(repr(side) for side in bad))
            raise PlacementError(f"unknown side(s) {shown}; use M (mobile) or C (cloud)")

    @classmethod
    def parse(cls, spec: str) -> Placement:
        text = spec.strip()
        if text.lower() in _WORDS:
            return cls(everywhere=_WORDS[text.lower()])
        letters = tuple(text.upper())
        if not letters or any(c not in (MOBILE, CLOUD) for c in letters):
            raise PlacementError(
                f"placement {_clip(repr(spec))} is not 'mobile', 'cloud' or one letter M/C per unit"
            )
        return cls(per_unit=letters)

    @classmethod
    def mobile(cls) -> Placement:
        return cls(everywhere=MOBILE)

    def resolve(self, num_units: int) -> tuple[str, ...]:
        """One side per unit for a model of ``num_units`` units."""
        if self.everywhere is not None:
            return (self.everywhere,) * num_units
        if len(self.per_unit) != num_units:
            raise PlacementError(
                f"placement {_clip(str(self))} has {len(self.per_unit):,} letters but the "
                f"model has {num_units} units (unit 0, preprocessing, included)"
            )
        return self.per_unit

    def __str__(self) -> str:
        if self.everywhere is not None:
            return "mobile" if self.everywhere == MOBILE else "cloud"
        return "".join(self.per_unit)


def segments(sides: tuple[str, ...] | list[str]) -> list[Segment]:
    """Split per-unit sides into maximal runs: ``MMCCM`` -> M[0,2), C[2,4), M[4,5)."""
    runs: list[Segment] = []
    start = 0
    for index in range(1, len(sides) + 1):
        if index == len(sides) or sides[index] != sides[start]:
            runs.append(Segment(sides[start], start, index))
            start = index
    return runs


def describe(sides: tuple[str, ...] | list[str]) -> str:
    """Human summary: ``mobile``, ``cloud`` or the letters, e.g. ``MMMCCCCCCMMM``."""
    if sides and all(s == MOBILE for s in sides):
        return "mobile"
    if sides and all(s == CLOUD for s in sides):
        return "cloud"
    return "".join(sides)


@dataclass(frozen=True)
class Plan:
    """The placement an agent uses when a request names none; ``plan_id`` and ``source``
    are opaque labels (e.g. which scheduler made it), echoed back for tracing."""

    placement: Placement
    plan_id: str = ""
    source: str = ""
