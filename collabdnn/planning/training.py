"""Place every unit for *training*: one step's forward and backward pass, exactly.

The same layered graph and search as inference (:mod:`collabdnn.planning.planner`), with
the paper's constraint that back-propagation follows the forward placement: a unit's
backward pass runs where its forward pass ran, so a placement still chooses one side
per unit and every path of the graph is one placement. What changes is what an edge
costs:

* compute unit ``i`` on ``q``: its forward *and* backward time there
  (``t_fwd,q(i) + t_bwd,q(i)``, cloud times times the load ``K``);
* boundary ``b`` crossing from ``p`` to ``q``: its activation goes ``p -> q`` in the
  forward pass and its gradient comes back ``q -> p`` in the backward pass, each priced
  by the inference formulas (codec times, airtime, RTT/2;
  :func:`~collabdnn.planning.planner.transfer_cost`). No gradient crosses where nothing
  upstream has parameters (the photo, boundaries before the first parameter): there
  the gradient is ``None`` and costs nothing;
* the final edge ``(N, C) -> (N, M)``: the logits come down, their gradient goes up
  (the loss is computed on the phone, where the labels are).

So one step costs ``forward + backward`` along the path, additive over edges, and the
objectives (latency, energy, weighted, deadline) are solved exactly by the planner's
own search over these edges. The batch size is in the input: every figure (times,
bytes) is per batch of ``batch_size`` images, as profiled. Parameters never cross the
link (each side updates the units it holds), so there is no weight-transfer term.

Pure and torch-free, like the planner.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from collabdnn.placement import Side
from collabdnn.planning.energy import PowerModel
from collabdnn.planning.link import Link
from collabdnn.planning.planner import (
    OBJECTIVES,
    PLATFORMS,
    Baseline,
    Constraints,
    Cost,
    Plan,
    TransferBreakdown,
    _cut_costs,
    _Edges,
    _objective_used,
    _pair_scorer,
    _shortest,
    _solve,
    compute_cost,
    evaluate,
    objective_value,
    transfer_cost,
)
from collabdnn.planning.profiles import Boundary, PlanInput, UnitCost

__all__ = ["TrainingInput", "evaluate_training", "plan_training"]

_OPPOSITE = {"up": "down", "down": "up"}


@dataclass(frozen=True)
class TrainingInput:
    """One training step's costs: the forward pass as inference sees it (units and
    activation boundaries), each unit's backward time per side, and each boundary's
    gradient on the link (``None`` where no gradient crosses); all per batch."""

    forward: PlanInput
    backward: tuple[UnitCost, ...]
    gradients: tuple[Boundary | None, ...]
    batch_size: int = 1

    def __post_init__(self) -> None:
        n = len(self.forward.units)
        if len(self.backward) != n or len(self.gradients) != n + 1:
            raise ValueError(
                f"a training input of {n} units needs {n} backward costs and {n + 1} "
                f"gradient boundaries, got {len(self.backward)} and {len(self.gradients)}"
            )
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")

    @property
    def names(self) -> tuple[str, ...]:
        return self.forward.names


def _compute(
    inp: TrainingInput, i: int, side: Side, power: PowerModel, load: float
) -> tuple[float, float]:
    fwd = compute_cost(inp.forward.units[i], side, power, load)
    bwd = compute_cost(inp.backward[i], side, power, load)
    return fwd[0] + bwd[0], fwd[1] + bwd[1]


def _crossing(
    inp: TrainingInput, b: int, direction: str, link: Link, power: PowerModel
) -> tuple[float, float]:
    """(ms, mJ) of boundary ``b`` crossing ``direction`` in the forward pass: the
    activation that way, then its gradient (if any) back the other way."""
    ms, mj = transfer_cost(inp.forward.boundaries[b], direction, link, power)
    grad = inp.gradients[b]
    if grad is not None:
        back_ms, back_mj = transfer_cost(grad, _OPPOSITE[direction], link, power)
        ms, mj = ms + back_ms, mj + back_mj
    return ms, mj


def _edges(inp: TrainingInput, link: Link, power: PowerModel, load: float) -> _Edges:
    """The planner's edge table with a training step's costs (see the module doc)."""
    comp = [
        [_compute(inp, i, side, power, load) for side in PLATFORMS]
        for i in range(len(inp.backward))
    ]
    xfer = [
        [_crossing(inp, b, direction, link, power) for direction in ("up", "down")]
        for b in range(len(inp.gradients))
    ]  # leaving M (up), leaving C (down)
    # One crossing per boundary and direction: training sends every activation and
    # gradient with the boundary's own codec (no per-crossing codec choice).
    codecs = [boundary.codec for boundary in inp.forward.boundaries]
    return _Edges(
        comp_ms=[(m[0], c[0]) for m, c in comp],
        comp_mj=[(m[1], c[1]) for m, c in comp],
        xfer=[(((*u, c),), ((*d, c),)) for (u, d), c in zip(xfer, codecs, strict=True)],
    )


def evaluate_training(
    inp: TrainingInput,
    link: Link,
    power: PowerModel,
    placement: Sequence[Side],
    cloud_load: float = 1.0,
) -> Cost:
    """Price one training step of ``placement`` by walking the chain (no search).

    Each unit's breakdown is its forward plus backward time; transfers list every
    crossing: ``after_unit`` names the boundary, ``direction`` says which way it went,
    and gradients are listed as ``"<name> (gradient)"``.
    """
    forward = evaluate(inp.forward, link, power, placement, cloud_load)
    units = []
    for unit in forward.units:  # the backward pass runs where the forward pass ran
        ms, mj = compute_cost(inp.backward[unit.index], unit.platform, power, cloud_load)
        units.append(replace(unit, compute_ms=unit.compute_ms + ms, energy_mj=unit.energy_mj + mj))
    transfers = list(forward.transfers)
    for crossing in forward.transfers:  # each gradient crosses back the other way
        grad = inp.gradients[crossing.boundary]
        if grad is not None:
            back = _OPPOSITE[crossing.direction]
            ms, mj = transfer_cost(grad, back, link, power)
            label = f"{crossing.after_unit} (gradient)"
            transfers.append(TransferBreakdown(crossing.boundary, label, back, grad.bytes, ms, mj))
    parts = [(u.compute_ms, u.energy_mj) for u in units] + [(t.ms, t.energy_mj) for t in transfers]
    latency, energy = (math.fsum(column) for column in zip(*parts, strict=True))
    return Cost(latency, energy, tuple(units), tuple(transfers))


def plan_training(
    inp: TrainingInput,
    link: Link,
    power: PowerModel,
    objective: str = "latency",
    constraints: Constraints | None = None,
) -> Plan:
    """The best placement for one training step under ``objective`` (exact), with the
    same baselines as inference plans: mobile-only, cloud-only, the best single cut."""
    constraints = constraints or Constraints()
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; choose one of {', '.join(OBJECTIVES)}")
    if objective == "deadline" and constraints.deadline_ms is None:
        raise ValueError("the deadline objective needs a deadline (deadline_ms)")
    used, reason = _objective_used(objective, constraints)
    load = constraints.cloud_load
    n = len(inp.backward)

    def cost_of(platforms: Sequence[int]) -> Cost:
        return evaluate_training(inp, link, power, [PLATFORMS[p] for p in platforms], load)

    mobile_only = cost_of([0] * n)
    edges = _edges(inp, link, power, load)
    solved = _solve(edges, used, constraints, mobile_only)
    platforms = _shortest(edges, 1.0, 0.0, 0.0, 1.0) if solved is None else solved[0]
    cost = cost_of(platforms)
    feasible = solved is not None and constraints.meets_deadline(cost.latency_ms)
    if not feasible:
        reason = (reason + "; " if reason else "") + (
            f"no placement meets the deadline of {constraints.deadline_ms:g} ms per step"
        )
    score = objective_value(used, cost, constraints, mobile_only)
    scorer = _pair_scorer(used, constraints, mobile_only)
    cuts = _cut_costs(edges)
    best = min(range(n + 1), key=lambda k: (scorer(*cuts[k]), cuts[k][0]))

    def baseline(name: str, cut: int | None, sides: tuple[Side, ...]) -> Baseline:
        price = evaluate_training(inp, link, power, sides, load)
        return Baseline(name, sides, price, constraints.meets_deadline(price.latency_ms), cut)

    return Plan(
        objective=objective,
        objective_used=used,
        reason=reason,
        units=inp.names,
        placement=tuple(PLATFORMS[p] for p in platforms),
        cost=cost,
        feasible=feasible,
        objective_value=score if math.isfinite(score) and solved is not None else None,
        baselines={
            "mobile_only": baseline("mobile_only", None, (Side.MOBILE,) * n),
            "cloud_only": baseline("cloud_only", None, (Side.CLOUD,) * n),
            "best_single_cut": baseline(
                "best_single_cut", best, (Side.MOBILE,) * best + (Side.CLOUD,) * (n - best)
            ),
        },
        link=link,
        power=power,
        constraints=constraints,
    )
