"""The optimizers split training offers, configured once and built per side.

Both are built with ``foreach=False``: every parameter is then updated by its own
sequence of operations, independent of which other parameters share the optimizer.
A side that holds some of the units therefore updates them bit for bit as one
optimizer over the whole model does (the foreach kernels group tensors, and grouping
may differ between a side and the whole).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch

from collabdnn.errors import TrainingConfigError

OPTIMIZERS = ("sgd", "adam")


@dataclass(frozen=True)
class OptimizerConfig:
    """``sgd`` (momentum, weight decay) or ``adam`` (betas, eps, weight decay)."""

    kind: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8

    def __post_init__(self) -> None:
        if self.kind not in OPTIMIZERS:
            raise TrainingConfigError(
                f"unknown optimizer {self.kind!r}; use one of {', '.join(OPTIMIZERS)}"
            )
        numbers = (self.lr, self.momentum, self.weight_decay, self.beta1, self.beta2, self.eps)
        if not all(x >= 0 and x == x and x != float("inf") for x in numbers):
            raise TrainingConfigError(f"optimizer settings must be finite and >= 0: {self}")
        if self.lr <= 0:
            raise TrainingConfigError(f"the learning rate must be > 0, got {self.lr}")
        if not (self.momentum < 1 and self.beta1 < 1 and self.beta2 < 1):
            raise TrainingConfigError("momentum and betas must be < 1")


def build_optimizer(
    params: Iterable[torch.nn.Parameter], config: OptimizerConfig
) -> torch.optim.Optimizer:
    """An optimizer over ``params`` that updates each one independently (see above)."""
    params = list(params)
    if not params:  # a side holding no parameters still commits its (empty) steps
        params = [torch.nn.Parameter(torch.zeros(0))]
    if config.kind == "sgd":
        return torch.optim.SGD(
            params,
            lr=config.lr,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
            foreach=False,
        )
    return torch.optim.Adam(
        params,
        lr=config.lr,
        betas=(config.beta1, config.beta2),
        eps=config.eps,
        weight_decay=config.weight_decay,
        foreach=False,
    )
