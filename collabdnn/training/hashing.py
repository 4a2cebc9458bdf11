"""Which state entries each unit holds, and the hashes a side reports about them.

A unit's module shares its parameters and buffers with the whole model, so every entry
of the model's state dict belongs to the units that use it. A side reports the digest
of each entry it owns (:func:`collabdnn.model.weights.entry_digest`); the whole model's
hash is :func:`~collabdnn.model.weights.combine_digests` over both sides' reports, the
very hash inference compares, and no parameter crosses the link to compute it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from torch import nn

from collabdnn.model.split_model import SplitModel
from collabdnn.model.weights import combine_digests
from collabdnn.placement import PlacementError, Side


def unit_entries(model: SplitModel) -> list[tuple[str, ...]]:
    """For each unit, the names (in the whole model's state dict) of the entries it uses."""
    by_id: dict[int, list[str]] = {}
    for name, tensor in model.model.state_dict(keep_vars=True).items():
        by_id.setdefault(id(tensor), []).append(name)
    result = []
    for module in model.modules:
        names = {
            name
            for tensor in module.state_dict(keep_vars=True).values()
            for name in by_id.get(id(tensor), ())
        }
        result.append(tuple(sorted(names)))
    return result


def entry_owners(model: SplitModel, sides: Sequence[Side]) -> dict[str, Side]:
    """The side that owns each state entry under ``sides`` (one side per unit).

    An entry no unit uses never changes; the mobile side reports it. An entry two units
    use must be on one side, or its two copies would be updated apart: PlacementError.
    """
    owners: dict[str, Side] = {}
    users: dict[str, int] = {}
    for index, names in enumerate(unit_entries(model)):
        for name in names:
            side = sides[index]
            if name in owners and owners[name] != side:
                raise PlacementError(
                    f"units {users[name]} and {index} share {name!r}: a placement for "
                    "training must put them on the same side"
                )
            owners[name] = side
            users.setdefault(name, index)
    for name in model.model.state_dict():
        owners.setdefault(name, Side.MOBILE)
    return owners


def unit_parameters(model: SplitModel, units: Iterable[int]) -> list[nn.Parameter]:
    """The distinct parameters of ``units``, in unit order."""
    seen: set[int] = set()
    params = []
    for index in units:
        for param in model.modules[index].parameters():
            if id(param) not in seen:
                seen.add(id(param))
                params.append(param)
    return params


def unit_hashes(
    entries: Sequence[Sequence[str]], digests: Mapping[str, str], units: Iterable[int]
) -> dict[int, str]:
    """Each unit's hash over its entries' digests (units without entries are left out)."""
    return {
        index: combine_digests({name: digests[name] for name in entries[index]})
        for index in units
        if entries[index] and all(name in digests for name in entries[index])
    }


def whole_hash(*reports: Mapping[str, str]) -> str:
    """The whole model's weights hash from each side's entry digests (disjoint reports)."""
    merged: dict[str, str] = {}
    for report in reports:
        overlap = merged.keys() & report.keys()
        if overlap:
            raise ValueError(f"two sides report {sorted(overlap)[:3]}: ownership overlaps")
        merged.update(report)
    return combine_digests(merged)
