"""What a unit is: the smallest piece of a model that the planner places.

Unit 0 is always preprocessing (image bytes -> tensor); units 1..N-1 are layer groups
(an activation function or dropout rides with the layer before it). Ranges of units
are half-open, ``[start, end)``, everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from collabdnn.codec import dtype_name
from collabdnn.model.unit_info import UnitInfo

__all__ = ["UnitInfo", "UnitModule", "describe_units", "infer_kind"]


@dataclass(frozen=True)
class UnitModule:
    """A unit before it is measured: its name, kind and the module that computes it."""

    name: str
    module: nn.Module
    kind: str | None = None  # derived from the module's layers when None


def infer_kind(module: nn.Module) -> str:
    """The unit's kind from the layers it holds: what the latency predictor keys on."""
    convs = sum(isinstance(m, nn.Conv2d) for m in module.modules())
    if convs > 1:
        return "block"
    if convs == 1:
        return "conv"
    if any(isinstance(m, nn.Linear) for m in module.modules()):
        return "fc"
    pools = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
    if any(isinstance(m, pools) for m in module.modules()):
        return "pool"
    graph = getattr(module, "graph", None)
    if graph is not None and any("pool" in str(node.target) for node in graph.nodes):
        return "pool"
    if any(isinstance(m, nn.BatchNorm2d) for m in module.modules()):
        return "norm"
    return "other"


class _FlopCounter:
    """Counts multiply-accumulates with forward hooks while a unit runs once."""

    def __init__(self, module: nn.Module) -> None:
        self.flops = 0
        self._handles = [m.register_forward_hook(self._hook) for m in module.modules()]

    def _hook(self, module: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
        if isinstance(module, nn.MultiheadAttention) and inputs:
            self.flops += _attention_macs(module, inputs)
            return
        if not isinstance(output, torch.Tensor):
            return
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            self.flops += output.numel() * (module.in_channels // module.groups) * kh * kw
        elif isinstance(module, nn.Linear):
            self.flops += output.numel() * module.in_features
        elif isinstance(module, nn.MaxPool2d | nn.AvgPool2d):
            k = module.kernel_size
            kh, kw = (k, k) if isinstance(k, int) else k
            self.flops += output.numel() * kh * kw
        elif isinstance(module, nn.AdaptiveAvgPool2d | nn.AdaptiveMaxPool2d):
            self.flops += inputs[0].numel()

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()


def _attention_macs(module: nn.MultiheadAttention, inputs: tuple[Any, ...]) -> int:
    """Projections of query, key, value and output, scores and the weighted sum."""
    query = inputs[0]
    key = inputs[1] if len(inputs) > 1 and isinstance(inputs[1], torch.Tensor) else query
    if not isinstance(query, torch.Tensor) or query.dim() != 3:
        return 0
    batch_dim = 0 if module.batch_first else 1
    seq_dim = 1 - batch_dim
    n, length, source = query.shape[batch_dim], query.shape[seq_dim], key.shape[seq_dim]
    e = module.embed_dim
    return int(n * (2 * length * e * e + 2 * source * e * e + 2 * length * source * e))


def describe_units(
    units: list[UnitModule], input_shape: tuple[int, ...], device: str | torch.device = "cpu"
) -> list[UnitInfo]:
    """Run a zero input of ``input_shape`` through the units to learn shapes and FLOPs.

    Returns the infos of the given units, numbered from 1 (unit 0 is preprocessing).
    On the ``meta`` device (a model without weights) nothing is computed.
    """
    infos: list[UnitInfo] = []
    x = torch.zeros(input_shape, device=device)
    with torch.no_grad():
        for offset, unit in enumerate(units, start=1):
            counter = _FlopCounter(unit.module)
            try:
                x = unit.module(x)
            finally:
                counter.close()
            params = sum(p.numel() for p in unit.module.parameters())
            infos.append(
                UnitInfo(
                    index=offset,
                    name=unit.name,
                    kind=unit.kind or infer_kind(unit.module),
                    output_shape=tuple(x.shape),
                    dtype=dtype_name(x.dtype),
                    output_bytes=x.numel() * x.element_size(),
                    params=params,
                    flops=counter.flops,
                )
            )
    return infos
