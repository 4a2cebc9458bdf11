"""Fewer, larger units for very deep models: merge the cheapest adjacent units.

A DenseNet-201 or an EfficientNet-B7 cuts into 80 to 120 units; a plan over them is
long to read, and most cuts are never worth taking. ``--max-units N`` keeps at most
``N`` units (unit 0, preprocessing, included and never merged): while there are more,
the adjacent pair of layer units with the smallest combined cost becomes one unit. The
cost is each unit's FLOPs (the same on every machine, so both sides of a split merge
alike) or, given a profile of the unmerged model, its measured latency.

A merged unit runs its parts in order, each output made contiguous as between separate
units, so merging changes no bit of any result. Its name says what it holds: the
module they share (``layer3`` when it holds all of layer3) or ``first..last``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch
from torch import nn

from collabdnn.model.units import UnitInfo, UnitModule, infer_kind

__all__ = ["Chain", "MergedUnits", "merge_groups", "merge_units", "merged_suffix"]


class Chain(nn.Sequential):
    """Units run one after the other, with the layout a unit boundary has."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for part in self:
            x = part(x)
            if isinstance(x, torch.Tensor):
                x = x.contiguous()
        return x


def merge_groups(costs: Sequence[float], max_groups: int) -> list[tuple[int, int]]:
    """Half-open ranges of adjacent items, at most ``max_groups`` of them: while there
    are more, the adjacent pair with the least combined cost merges (the first such
    pair on a tie, so the answer depends on the costs alone)."""
    if max_groups < 1:
        raise ValueError(f"max_groups must be at least 1, got {max_groups}")
    groups = [(i, i + 1) for i in range(len(costs))]
    sums = [float(c) for c in costs]
    while len(groups) > max_groups:
        pair = min(range(len(groups) - 1), key=lambda i: (sums[i] + sums[i + 1], i))
        groups[pair : pair + 2] = [(groups[pair][0], groups[pair + 1][1])]
        sums[pair : pair + 2] = [sums[pair] + sums[pair + 1]]
    return groups


def _plain(name: str) -> str:
    return name.split("#", 1)[0]


def _group_name(names: list[str], all_names: list[str]) -> str:
    if len(names) == 1:
        return names[0]
    parts = [_plain(n).split(".") for n in names]
    common: list[str] = []
    for level in zip(*parts, strict=False):
        if len(set(level)) != 1:
            break
        common.append(level[0])
    prefix = ".".join(common)
    holders = [n for n in all_names if _plain(n) == prefix or _plain(n).startswith(prefix + ".")]
    if prefix and sorted(holders) == sorted(names):
        return prefix  # exactly the units of one module
    return f"{names[0]}..{names[-1]}"


@dataclass(frozen=True)
class MergedUnits:
    """The result of :func:`merge_units`: units, their infos and the groups merged."""

    parts: list[UnitModule]
    infos: list[UnitInfo]
    groups: list[tuple[int, int]]


def merge_units(
    parts: list[UnitModule],
    infos: list[UnitInfo],
    max_units: int,
    costs: Sequence[float] | None = None,
) -> MergedUnits:
    """At most ``max_units`` units in all (preprocessing included) from ``parts``
    (units 1..N-1, described by ``infos``); ``costs`` per part, FLOPs by default."""
    if max_units < 2:
        raise ValueError(
            f"--max-units must be at least 2 (preprocessing and one unit), got {max_units}"
        )
    weights = [float(i.flops) for i in infos] if costs is None else [float(c) for c in costs]
    if len(weights) != len(parts):
        raise ValueError(f"{len(weights)} unit costs for {len(parts)} units")
    groups = merge_groups(weights, max_units - 1)
    all_names = [p.name for p in parts]
    new_parts: list[UnitModule] = []
    new_infos: list[UnitInfo] = []
    taken: set[str] = set()
    for index, (a, b) in enumerate(groups, start=1):
        if b - a == 1:
            part, info = parts[a], infos[a]
        else:
            name = _group_name(all_names[a:b], all_names)
            unique, n = name, 2
            while unique in taken:
                unique, n = f"{name}#{n}", n + 1
            module = Chain(*(p.module for p in parts[a:b]))
            part = UnitModule(unique, module)
            last = infos[b - 1]
            info = UnitInfo(
                index=index,
                name=unique,
                kind=infer_kind(module),
                output_shape=last.output_shape,
                dtype=last.dtype,
                output_bytes=last.output_bytes,
                params=sum(i.params for i in infos[a:b]),
                flops=sum(i.flops for i in infos[a:b]),
            )
        taken.add(part.name)
        new_parts.append(part)
        new_infos.append(replace(info, index=index))
    return MergedUnits(new_parts, new_infos, groups)


def merged_suffix(max_units: int, groups: list[tuple[int, int]], by_flops: bool) -> str:
    """What the model's name gains: ``@N`` when merged by FLOPs (anyone can redo it from
    the name), ``@N~hash`` when merged by measured times (which only that profile gives)."""
    if by_flops:
        return f"@{max_units}"
    layout = ",".join(str(b) for _, b in groups)
    return f"@{max_units}~{hashlib.sha256(layout.encode()).hexdigest()[:6]}"
