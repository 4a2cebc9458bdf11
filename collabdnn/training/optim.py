"""The optimizers split training offers, configured once and built per side.

Both are built with ``foreach=False``: every parameter is then updated by its own
sequence of operations, independent of which other parameters share the optimizer.
A side that holds some of the units therefore updates them bit for bit as one
optimizer over the whole model does (the foreach kernels group tensors, and grouping
may differ between a side and the whole).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from collabdnn.training.spec import OptimizerConfig


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
