"""Sides and placements: where each unit runs, and the runs of consecutive units they form.

A :class:`Side` is the one vocabulary for "mobile or cloud" everywhere in the code: its
value is the word (``"mobile"``, ``"cloud"``, what JSON output shows) and
:attr:`Side.letter` the letter of placement specs (``M``, ``C``).

A placement spec is ``mobile``, ``cloud``, or one letter per unit in unit order, unit 0
(preprocessing) included: ``M`` for mobile, ``C`` for cloud (case-insensitive), e.g.
``MMMCCCCCCMMM``. :meth:`Placement.parse` is the only parser of specs and
:func:`spec` / :meth:`Placement.__str__` their only formatters. Torch-free: thin
clients parse specs too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from collabdnn.crossing import check_codec
from collabdnn.errors import CollabError

__all__ = [
    "AssignedPlan",
    "Placement",
    "PlacementError",
    "Segment",
    "Side",
    "describe",
    "segments",
    "spec_of",
]


class PlacementError(CollabError, ValueError):
    """A placement spec that cannot be read, or does not fit the model."""


_ECHO_CHARS = 64  # of a caller's spec quoted back in an error (a status message, a log)


def _clip(text: str) -> str:
    """``text``, or its start and its length: a 100,000-letter spec is not echoed back."""
    if len(text) <= _ECHO_CHARS:
        return text
    return f"{text[:_ECHO_CHARS]}... ({len(text):,} characters)"


class Side(StrEnum):
    """Where a unit runs. The value is the word; :attr:`letter` the spec letter."""

    MOBILE = "mobile"
    CLOUD = "cloud"

    @property
    def letter(self) -> str:
        """``M`` or ``C``: the side's letter in placement specs."""
        return self.value[0].upper()

    @classmethod
    def parse(cls, text: str) -> Side:
        """A side from its word or its letter, case-insensitive."""
        key = text.strip().lower() if isinstance(text, str) else text
        for side in cls:
            if key in (side.value, side.letter.lower()):
                return side
        raise PlacementError(f"unknown side {_clip(repr(text))}; use mobile (M) or cloud (C)")

    @classmethod
    def coerce(cls, value: str) -> Side:
        """``value`` as a Side: a Side, or its word. Letters are for specs only."""
        try:
            return cls(value)
        except ValueError:
            raise PlacementError(
                f"unknown side {_clip(repr(value))}; use 'mobile' or 'cloud'"
            ) from None


@dataclass(frozen=True)
class Segment:
    """A maximal run of consecutive units on one side: units ``[start, end)``."""

    side: Side
    start: int
    end: int


@dataclass(frozen=True)
class Placement:
    """Either one side for every unit (``everywhere``) or one side per unit (``per_unit``).

    ``everywhere`` placements fit any model; :meth:`resolve` turns either kind into one
    side per unit for a model of a given size. Sides may be given as words; they are
    stored as :class:`Side`.
    """

    everywhere: Side | None = None
    per_unit: tuple[Side, ...] = ()

    def __post_init__(self) -> None:
        if (self.everywhere is None) == (not self.per_unit):
            raise PlacementError("a placement is either one side everywhere or one side per unit")
        if self.everywhere is not None:
            object.__setattr__(self, "everywhere", Side.coerce(self.everywhere))
        object.__setattr__(self, "per_unit", tuple(Side.coerce(s) for s in self.per_unit))

    @classmethod
    def parse(cls, text: str) -> Placement:
        """``mobile``, ``cloud``, or one letter M/C per unit (case-insensitive)."""
        stripped = text.strip() if isinstance(text, str) else ""
        if stripped.lower() in tuple(Side):
            return cls(everywhere=Side(stripped.lower()))
        try:
            if not stripped:
                raise PlacementError("empty")
            return cls(per_unit=tuple(Side.parse(letter) for letter in stripped))
        except PlacementError:
            raise PlacementError(
                f"placement {_clip(repr(text))} is not 'mobile', 'cloud' or one letter M/C per unit"
            ) from None

    @classmethod
    def mobile(cls) -> Placement:
        return cls(everywhere=Side.MOBILE)

    @classmethod
    def of(cls, sides: Iterable[Side | str]) -> Placement:
        """One side per unit, in unit order."""
        return cls(per_unit=tuple(Side.coerce(s) for s in sides))

    def resolve(self, num_units: int) -> tuple[Side, ...]:
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
            return self.everywhere.value
        return spec_of(self.per_unit)


def spec_of(sides: Sequence[Side]) -> str:
    """One letter per unit: ``(MOBILE, CLOUD, MOBILE)`` -> ``"MCM"``."""
    return "".join(Side.coerce(s).letter for s in sides)


def segments(sides: Sequence[Side]) -> list[Segment]:
    """Split per-unit sides into maximal runs: ``MMCCM`` -> M[0,2), C[2,4), M[4,5)."""
    runs: list[Segment] = []
    start = 0
    for index in range(1, len(sides) + 1):
        if index == len(sides) or sides[index] != sides[start]:
            runs.append(Segment(sides[start], start, index))
            start = index
    return runs


def describe(sides: Sequence[Side]) -> str:
    """Human summary: ``mobile``, ``cloud`` or the letters, e.g. ``MMMCCCCCCMMM``."""
    for side in Side:
        if sides and all(s == side for s in sides):
            return side.value
    return spec_of(sides)


@dataclass(frozen=True)
class AssignedPlan:
    """The placement an agent uses when a request names none, as the scheduler pushes
    it (or the command line sets it); ``plan_id`` and ``source`` are opaque labels
    (e.g. which scheduler made it), echoed back for tracing.

    Not to be confused with :class:`collabdnn.planning.planner.Plan`, the planner's
    answer (a placement with its predicted cost and baselines).
    """

    placement: Placement
    plan_id: str = ""
    source: str = ""
    # The codec of each crossing, as (boundary, codec name) pairs sorted by boundary
    # (collabdnn.crossing); a crossing not listed uses the agent's default codec.
    codecs: tuple[tuple[int, str], ...] = ()

    def __post_init__(self) -> None:
        for boundary, name in self.codecs:
            try:
                check_codec(name, boundary)
            except ValueError as exc:
                raise PlacementError(f"boundary {boundary}: {exc}") from None
