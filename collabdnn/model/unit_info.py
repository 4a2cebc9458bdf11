"""What a unit is, as data: the static facts a service reports about each of its units.

Torch-free (unlike :mod:`collabdnn.model.units`, which measures them): thin clients and
the scheduler read these from a service's Info without loading torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class UnitInfo:
    """Static facts about one unit, for batch size 1."""

    index: int
    name: str
    kind: str
    output_shape: tuple[int, ...]
    dtype: str
    output_bytes: int
    params: int
    # multiply-accumulates of conv, linear and attention layers plus one op per pooling
    # window input
    flops: int

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["output_shape"] = list(self.output_shape)
        return data
