"""One side of a split training run: its units, their optimizer state, and the step in flight.

:class:`SideTrainer` works on its own copy of the model (the model a service serves for
inference is never changed by training) and owns the units a placement puts on its
side. A step has two phases:

1. :meth:`~SideTrainer.forward` runs a segment of owned units in training mode and keeps
   what their backward pass needs; :meth:`~SideTrainer.backward` takes the gradient of
   the segment's output, accumulates the parameters' gradients (*staged*, not applied),
   frees what the forward kept and returns the gradient of the segment's input;
2. :meth:`~SideTrainer.commit` applies the staged update (the optimizer's step), or
   :meth:`~SideTrainer.abort` drops it and restores the buffers the forward changed
   (batch-norm statistics), so that a failed step leaves no trace on either side.

Every unit boundary is a cut in the autograd graph, on whichever side it lies: each
unit's input is a fresh leaf and each gradient is made contiguous before it goes on,
the layout the codec delivers. Every unit therefore computes the same bits whether its
neighbour ran here or across the link, and split training equals training on one side
bit for bit. Dropout draws from a generator seeded by (run seed, step, unit), so its
masks do not depend on where a unit runs either (nor on a retried step).
"""

from __future__ import annotations

import copy
import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from collabdnn.errors import LimitError, TensorMismatchError, TrainingStateError
from collabdnn.model.split_model import SplitModel
from collabdnn.model.unit_info import UnitInfo
from collabdnn.model.weights import state_digests
from collabdnn.placement import Side
from collabdnn.training.hashing import entry_owners, unit_entries, unit_hashes, unit_parameters
from collabdnn.training.optim import build_optimizer
from collabdnn.training.spec import OptimizerConfig


@dataclass
class _Unit:
    """What unit ``index``'s backward needs: its input leaf (None when no gradient is
    wanted there) and its output."""

    index: int
    leaf: torch.Tensor | None
    output: torch.Tensor


@dataclass
class _Saved:
    units: list[_Unit]
    nbytes: int
    since: float = field(default_factory=time.monotonic)


def unit_seed(seed: int, step: int, unit: int) -> int:
    """The seed of unit ``unit``'s random draws (dropout) at ``step`` of run ``seed``."""
    digest = hashlib.sha256(f"{seed}:{step}:{unit}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def wants_input_grad(units: Sequence[UnitInfo]) -> list[bool]:
    """For each unit, whether its input (a fresh leaf) must take a gradient.

    A gradient flows back only to update parameters: unit ``i``'s input needs one when
    some unit between 1 and ``i - 1`` has parameters, to carry the gradient on to them.
    Unit 0 does not count: it turns image bytes into the first tensor under
    ``no_grad``, so nothing flows back into it (and its input is not a tensor). When
    the first parameters after unit 0 sit at unit ``k``, the inputs of units 0 to
    ``k`` take no gradient: the backward pass stops there, on either side and in the
    training profiler alike.
    """
    has_params = [unit.params > 0 for unit in units]
    return [any(has_params[1:i]) for i in range(len(has_params))]


class SideTrainer:
    """The units of ``side`` under one side per unit ``sides``; see the module doc.

    Not thread-safe: callers serialise the calls of one run (a run's steps are
    sequential anyway).
    """

    def __init__(
        self,
        model: SplitModel,
        side: Side,
        sides: Sequence[Side],
        optimizer: OptimizerConfig,
        seed: int = 0,
        max_saved_bytes: int = 0,
    ) -> None:
        if len(sides) != model.num_units:
            raise TrainingStateError(f"{len(sides)} sides for a model of {model.num_units} units")
        self.owners = entry_owners(model, sides)  # PlacementError for a shared entry
        self.model = copy.deepcopy(model)
        self.side = side
        self.sides = tuple(sides)
        self.seed = seed
        self.max_saved_bytes = max_saved_bytes  # 0 = unbounded
        self.owned = frozenset(i for i, s in enumerate(sides) if s == side)
        self.entries = unit_entries(self.model)
        self.own_names = tuple(sorted(n for n, s in self.owners.items() if s == side))
        self.model.model.eval()
        for index in sorted(self.owned):
            self.model.modules[index].train()
        params = unit_parameters(self.model, sorted(self.owned))
        self._param_storages = {p.untyped_storage().data_ptr() for p in params}
        self.optimizer = build_optimizer(params, optimizer)
        self.wants_grad = wants_input_grad(self.model.units)
        self.has_dropout = [
            any(isinstance(m, nn.modules.dropout._DropoutNd) for m in module.modules())
            for module in self.model.modules
        ]
        self.step = 0  # the last committed step
        self._in_flight: int | None = None
        self._saved: dict[int, _Saved] = {}
        self._buffers: dict[str, torch.Tensor] = {}

    # --- phase 1 -------------------------------------------------------------------------

    @property
    def in_flight(self) -> int | None:
        """The step whose update is being staged, if any."""
        return self._in_flight

    @property
    def saved_bytes(self) -> int:
        return sum(saved.nbytes for saved in self._saved.values())

    def saved_since(self) -> float | None:
        """When the oldest activations kept for a backward pass were saved (monotonic)."""
        return min((saved.since for saved in self._saved.values()), default=None)

    def forward(self, step: int, start: int, end: int, x: Any) -> torch.Tensor:
        """Run owned units ``[start, end)`` of ``step`` on ``x`` (image bytes at unit 0)
        and keep what their backward pass needs; returns the output (detached)."""
        self._enter(step)
        self._check_owned(start, end)
        if start in self._saved:
            raise TrainingStateError(f"step {step}: units from {start} already ran forward")
        units: list[_Unit] = []
        counted = [0]

        def pack(tensor: torch.Tensor) -> torch.Tensor:
            if tensor.untyped_storage().data_ptr() not in self._param_storages:
                counted[0] += _nbytes(tensor)
            return tensor

        saved = _Saved(units, 0)
        self._saved[start] = saved
        with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, _same):
            for index in range(start, end):
                if index == 0:
                    with torch.no_grad():
                        x = self.model.preprocess_images(x)
                    continue
                leaf = x.detach().to(self.model.device).requires_grad_(self.wants_grad[index])
                output = self._run_unit(step, index, leaf)
                units.append(_Unit(index, leaf if self.wants_grad[index] else None, output))
                saved.nbytes = counted[0] + sum(_nbytes(u.output) for u in units)
                if self.max_saved_bytes and self.saved_bytes > self.max_saved_bytes:
                    del self._saved[start]
                    raise LimitError(
                        f"step {step}: the activations kept for the backward pass exceed "
                        f"{self.max_saved_bytes:,} bytes at unit {index}; use a smaller batch"
                    )
                x = output
        if not self.needs_backward(end):
            del self._saved[start]  # no parameter up to here: nothing to back-propagate
        return x.detach()

    def needs_backward(self, end: int) -> bool:
        """Whether a segment ending before unit ``end`` has a backward pass to run: some
        unit up to it has parameters (the same answer on both sides)."""
        return self.wants_grad[end - 1] or self.model.units[end - 1].params > 0

    def _run_unit(self, step: int, index: int, x: torch.Tensor) -> torch.Tensor:
        if not self.has_dropout[index]:
            return self.model.step(index, x)
        devices = [self.model.device] if self.model.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(unit_seed(self.seed, step, index))
            return self.model.step(index, x)

    def backward(self, step: int, start: int, grad: torch.Tensor) -> torch.Tensor | None:
        """Back-propagate ``grad`` (of the output of the segment that began at ``start``)
        through it; the parameters' gradients are staged, the segment's saved
        activations freed. Returns the gradient of the segment's input, or None when no
        unit before it has parameters (nothing upstream needs it)."""
        self._check_step(step)
        saved = self._saved.pop(start, None)
        if saved is None:
            raise TrainingStateError(
                f"step {step}: no forward pass from unit {start} is waiting for its gradient"
            )
        if not saved.units:
            return None
        last = saved.units[-1].output
        if grad.dtype != last.dtype or grad.shape != last.shape:
            raise TensorMismatchError(
                f"step {step}: the gradient of unit {saved.units[-1].index}'s output must be "
                f"{list(last.shape)} {last.dtype}, got {list(grad.shape)} {grad.dtype}"
            )
        current: torch.Tensor | None = grad.to(last.device)
        with torch.enable_grad():
            for unit in reversed(saved.units):
                if current is None or not unit.output.requires_grad:
                    return None
                unit.output.backward(current)
                current = None if unit.leaf is None else _contiguous_grad(unit.leaf)
        return current

    # --- phase 2 -------------------------------------------------------------------------

    def commit(self, step: int) -> int:
        """Apply the update staged for ``step``; committing the last committed step again
        is a no-op (a retried commit). Returns the last committed step."""
        if step == self.step and self._in_flight is None:
            return self.step
        if self._in_flight is None and not self.owned:
            self._enter(step)  # a side that holds no unit still counts the step
        self._check_step(step)  # not staged (never run, or aborted): refused
        if self._saved:
            raise TrainingStateError(
                f"step {step}: units from {sorted(self._saved)} have not run backward; "
                "the step cannot be committed"
            )
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step, self._in_flight, self._buffers = step, None, {}
        return self.step

    def abort(self, step: int) -> int:
        """Drop what ``step`` staged and restore the buffers its forward passes changed.
        A step that is not in flight is left alone. Returns the last committed step."""
        if self._in_flight == step:
            self._rollback()
        return self.step

    def _rollback(self) -> None:
        self._saved.clear()
        self.optimizer.zero_grad(set_to_none=True)
        state = self.model.model.state_dict()
        with torch.no_grad():
            for name, value in self._buffers.items():
                state[name].copy_(value)
        self._in_flight, self._buffers = None, {}

    # --- state ---------------------------------------------------------------------------

    def digests(self) -> dict[str, str]:
        """Each owned state entry's digest (the side's report; see hashing)."""
        state = self.model.model.state_dict()
        return state_digests({name: state[name] for name in self.own_names})

    def unit_hashes(self, digests: dict[str, str]) -> dict[int, str]:
        return unit_hashes(self.entries, digests, sorted(self.owned))

    def own_state(self) -> dict[str, torch.Tensor]:
        """The owned entries of the state dict (copies, on the CPU)."""
        state = self.model.model.state_dict()
        return {name: state[name].detach().to("cpu").clone() for name in self.own_names}

    def restore(self, state: dict[str, torch.Tensor], optimizer: dict, step: int) -> None:
        """Load a checkpoint of this side: its owned entries, optimizer state and step."""
        if self._in_flight is not None:
            raise TrainingStateError("a checkpoint is restored between steps")
        if set(state) != set(self.own_names):
            raise TrainingStateError(
                "the checkpoint holds other entries than this side owns under this placement"
            )
        current = self.model.model.state_dict()
        odd = [n for n, v in state.items() if v.shape != current[n].shape]
        if odd:
            raise TrainingStateError(f"the checkpoint's {odd[:3]} have other shapes")
        with torch.no_grad():
            for name, value in state.items():
                current[name].copy_(value)
        self.optimizer.load_state_dict(optimizer)
        self.step = step

    # --- checks --------------------------------------------------------------------------

    def _enter(self, step: int) -> None:
        if self._in_flight is None:
            if step != self.step + 1:
                raise TrainingStateError(
                    f"step {step} is out of order: this side's last committed step is "
                    f"{self.step}, so the next is {self.step + 1}"
                )
            self._in_flight = step
            own = set(self.own_names)
            self._buffers = {
                name: tensor.detach().clone()
                for name, tensor in self.model.model.named_buffers()
                if name in own
            }
            return
        self._check_step(step)

    def _check_step(self, step: int) -> None:
        if self._in_flight != step:
            now = "none" if self._in_flight is None else str(self._in_flight)
            raise TrainingStateError(
                f"step {step} is not in flight on this side (in flight: {now}; "
                f"last committed: {self.step})"
            )

    def _check_owned(self, start: int, end: int) -> None:
        self.model.check_range(start, end)
        foreign = [i for i in range(start, end) if i not in self.owned]
        if start >= end or foreign:
            raise TrainingStateError(
                f"units [{start}, {end}) are not all placed on the {self.side.value} side "
                f"in this run's placement (not: {foreign[:5]})"
            )


def _nbytes(tensor: torch.Tensor) -> int:
    return tensor.numel() * tensor.element_size()


def _same(tensor: torch.Tensor) -> torch.Tensor:
    return tensor


def _contiguous_grad(leaf: torch.Tensor) -> torch.Tensor | None:
    grad = leaf.grad
    return None if grad is None else grad.contiguous()
