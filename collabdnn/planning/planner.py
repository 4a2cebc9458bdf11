"""Place every unit on the mobile or the cloud side by a shortest path.

A pure function over frozen dataclasses: :func:`plan` takes the model's costs
(:class:`~collabdnn.planning.profiles.PlanInput`), a :class:`~collabdnn.planning.link.Link`, a
:class:`~collabdnn.planning.energy.PowerModel`, an objective and :class:`Constraints`, and returns
a :class:`Plan`.  :func:`evaluate` prices any given placement without the search, so
tests can check the search against brute-force enumeration.

Graph
-----
Node ``(i, p)``, ``i`` in ``0..N`` and ``p`` in {M, C}, means "units ``[0, i)`` are done
and their output (boundary ``i``) is on platform ``p``".  The source is ``(0, M)`` (the
photo is on the phone), the sink ``(N, M)`` (the answer goes back to the phone).

* Edge ``(i, p) -> (i+1, q)``: move boundary ``i`` from ``p`` to ``q`` when ``p != q``,
  then run unit ``i`` on ``q``.
* Edge ``(N, C) -> (N, M)``: send the logits (boundary ``N``) back to the phone.

Any pattern is a path: mobile->cloud, mobile->cloud->mobile, cloud->mobile->cloud, ...

Costs (per edge; ms are latency, mJ mobile energy, ``mJ = mW * ms / 1000``)
-----------------------------------------------------------------------------
Compute unit ``i``:

* on M: ``t = t_M(i)``;        energy ``P_busy * t``
* on C: ``t = K * t_C(i)``;    energy ``P_wait * t``  (the phone waits; K = cloud load)

Transfer boundary ``b`` of ``s`` bytes (``air_up = 8 s / (B_up * 1e3)`` ms with B in
Mbit/s; likewise ``air_down``):

* M->C ("up"):   ``t = e_M(b) + air_up + RTT/2 + d_C(b)``;
  energy ``P_busy * e_M + P_up * air_up + P_wait * (RTT/2 + d_C)``
* C->M ("down"): ``t = e_C(b) + RTT/2 + air_down + d_M(b)``;
  energy ``P_wait * (e_C + RTT/2) + P_down * air_down + P_busy * d_M``

with ``P_up = alpha_up * B_up + beta`` and ``P_down = alpha_down * B_down + beta``
(Huang et al.'s radio model, :mod:`collabdnn.planning.energy`).

Codecs: a boundary may be sent with any of its codec options
(:class:`~collabdnn.planning.profiles.CodecOption`: raw frames, zstd levels, the shuffle
filter; for the photo, the original or the lossless uint8 crop), each with its own
``s``, ``e`` and ``d``.  Each option is a parallel edge, so the codec of every crossing
is chosen by the same exact search: on a fast link the codec cheapest to run wins
(raw), on a slow one the smallest.  A ``crop:*`` photo option also takes the crop
stage the phone ran (``cloud_saved_ms``, times K) off the cloud's unit 0.

Objectives (all exact)
----------------------
* ``latency``: minimise end-to-end latency (ties broken by lower energy).
* ``energy``: minimise mobile energy (ties broken by lower latency).
* ``weighted``: minimise ``w * latency / L0 + (1 - w) * energy / E0``, where ``L0`` and
  ``E0`` are the mobile-only plan's latency and energy, so both terms are "fraction of
  running everything on the phone" and ``w`` in [0, 1] is the weight the user puts on
  latency (1: pure latency, 0: pure energy).
* ``deadline``: minimise mobile energy subject to ``latency <= D``: a constrained
  shortest path, solved exactly by label-setting over Pareto labels (latency, energy)
  per node, pruned with exact lower bounds to the sink.  When no placement meets D the
  plan is the fastest one, marked infeasible.

The three unconstrained objectives are linear in (latency, energy), so one dynamic
programme over the layered DAG (Dijkstra's order is the layer order here) solves them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from collabdnn.placement import Side, spec_of
from collabdnn.planning.energy import PowerModel
from collabdnn.planning.link import Link
from collabdnn.planning.profiles import Boundary, CodecOption, PlanInput, UnitCost

__all__ = [
    "DEADLINE_RTOL",
    "OBJECTIVES",
    "PLATFORMS",
    "Baseline",
    "Constraints",
    "Cost",
    "Plan",
    "TransferBreakdown",
    "UnitBreakdown",
    "evaluate",
    "objective_value",
    "plan",
]

# The search's arrays index a side by its position here (0 = mobile, 1 = cloud): the one
# place where a Side becomes a number.
PLATFORMS: tuple[Side, Side] = (Side.MOBILE, Side.CLOUD)
OBJECTIVES = ("latency", "energy", "weighted", "deadline")
_INF = math.inf
# A plan "meets" deadline D when its latency <= D * (1 + DEADLINE_RTOL): sums of the same
# costs taken in a different order differ in the last bits, and a deadline set to a
# plan's own latency must accept that plan.
DEADLINE_RTOL = 1e-9


# ------------------------------------------------------------------------ data types


@dataclass(frozen=True)
class Constraints:
    """What limits the plan besides the objective.

    ``deadline_ms``: latency bound for the ``deadline`` objective (and the target a plan
    is checked against for the others).  ``battery_fraction`` below
    ``battery_threshold`` switches the objective to ``energy`` (or ``deadline`` when a
    deadline is given), as the paper's battery constraint asks.  ``cloud_load`` (K)
    scales cloud compute times.  ``weight`` is ``w`` of the ``weighted`` objective.
    """

    deadline_ms: float | None = None
    battery_fraction: float = 1.0
    battery_threshold: float = 0.2
    cloud_load: float = 1.0
    weight: float = 0.5

    def __post_init__(self) -> None:
        deadline = self.deadline_ms
        if deadline is not None and not (_finite(deadline) and deadline >= 0):
            raise ValueError(f"deadline_ms must be a finite number >= 0, got {self.deadline_ms!r}")
        for name in ("battery_fraction", "battery_threshold", "weight"):
            value = getattr(self, name)
            if not (_finite(value) and 0.0 <= value <= 1.0):
                raise ValueError(f"{name} must be in [0, 1], got {value!r}")
        if not (_finite(self.cloud_load) and self.cloud_load > 0):
            raise ValueError(f"cloud_load must be a finite number > 0, got {self.cloud_load!r}")

    @property
    def deadline_bound_ms(self) -> float:
        """The latency bound actually enforced (D plus float noise), inf without D."""
        if self.deadline_ms is None:
            return _INF
        return self.deadline_ms * (1.0 + DEADLINE_RTOL)

    def meets_deadline(self, latency_ms: float) -> bool:
        """Whether ``latency_ms`` meets the deadline (always, without one)."""
        return latency_ms <= self.deadline_bound_ms

    def to_dict(self) -> dict[str, Any]:
        return {
            "deadline_ms": self.deadline_ms,
            "battery_fraction": self.battery_fraction,
            "battery_threshold": self.battery_threshold,
            "cloud_load": self.cloud_load,
            "weight": self.weight,
        }


@dataclass(frozen=True)
class UnitBreakdown:
    """One unit's share of a plan: where it runs, how long, what the phone spends."""

    index: int
    name: str
    platform: Side
    compute_ms: float
    energy_mj: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "platform": str(self.platform),
            "compute_ms": self.compute_ms,
            "energy_mj": self.energy_mj,
        }


@dataclass(frozen=True)
class TransferBreakdown:
    """One crossing of the link: boundary ``boundary`` (after ``after_unit``) going
    ``up`` (mobile->cloud) or ``down`` (cloud->mobile)."""

    boundary: int
    after_unit: str
    direction: str
    bytes: int
    ms: float
    energy_mj: float
    codec: str = ""  # the codec option chosen for this crossing ("": the profile's)

    def to_dict(self) -> dict[str, Any]:
        return {
            "boundary": self.boundary,
            "after_unit": self.after_unit,
            "direction": self.direction,
            "bytes": self.bytes,
            "ms": self.ms,
            "energy_mj": self.energy_mj,
            "codec": self.codec,
        }


@dataclass(frozen=True)
class Cost:
    """A placement's predicted latency and mobile energy, with their breakdown."""

    latency_ms: float
    mobile_energy_mj: float
    units: tuple[UnitBreakdown, ...]
    transfers: tuple[TransferBreakdown, ...]

    def predicted(self) -> dict[str, float]:
        return {"latency_ms": self.latency_ms, "mobile_energy_mj": self.mobile_energy_mj}

    def breakdown(self) -> dict[str, Any]:
        return {
            "units": [u.to_dict() for u in self.units],
            "transfers": [t.to_dict() for t in self.transfers],
        }


@dataclass(frozen=True)
class Baseline:
    """A reference plan: everything on one side, or Neurosurgeon's best single cut
    (units ``[0, cut)`` on the phone, ``[cut, N)`` in the cloud)."""

    name: str
    placement: tuple[Side, ...]
    cost: Cost
    feasible: bool
    cut: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "placement": [str(side) for side in self.placement],
            "placement_spec": spec_of(self.placement),
            "predicted": self.cost.predicted(),
            "feasible": self.feasible,
            "breakdown": self.cost.breakdown(),
        }
        if self.cut is not None:
            out["cut"] = self.cut
        return out


@dataclass(frozen=True)
class Plan:
    """The planner's answer: a placement per unit, its predicted cost and baselines."""

    objective: str
    objective_used: str
    reason: str
    units: tuple[str, ...]
    placement: tuple[Side, ...]
    cost: Cost
    feasible: bool
    objective_value: float | None
    baselines: dict[str, Baseline]
    link: Link
    power: PowerModel
    constraints: Constraints = field(default_factory=Constraints)

    @property
    def latency_ms(self) -> float:
        return self.cost.latency_ms

    @property
    def mobile_energy_mj(self) -> float:
        return self.cost.mobile_energy_mj

    @property
    def spec(self) -> str:
        return spec_of(self.placement)

    @property
    def codecs(self) -> dict[int, str]:
        """The codec option of each crossing, by boundary: what the agent sends it with."""
        return {t.boundary: t.codec for t in self.cost.transfers if t.codec}

    def improvement_pct(self) -> dict[str, Any]:
        """How much better than the best single platform (by the objective used) the
        plan is, in percent of that platform's latency and energy."""
        ref = self._best_single_platform()
        return {
            "vs": ref.name,
            "latency": _pct(ref.cost.latency_ms, self.latency_ms),
            "mobile_energy": _pct(ref.cost.mobile_energy_mj, self.mobile_energy_mj),
        }

    def _best_single_platform(self) -> Baseline:
        singles = [self.baselines["mobile_only"], self.baselines["cloud_only"]]
        score = _scorer(self.objective_used, self.constraints, self.baselines["mobile_only"].cost)
        return min(singles, key=lambda b: score(b.cost))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with at least the keys of the ``collabdnn plan --json`` contract."""
        return {
            "objective": self.objective,
            "objective_used": self.objective_used,
            "reason": self.reason,
            "units": list(self.units),
            "placement": [str(side) for side in self.placement],
            "placement_spec": self.spec,
            "predicted": self.cost.predicted(),
            "objective_value": self.objective_value,
            "feasible": self.feasible,
            "deadline_ms": self.constraints.deadline_ms,
            "breakdown": self.cost.breakdown(),
            "baselines": {name: b.to_dict() for name, b in self.baselines.items()},
            "improvement_pct": self.improvement_pct(),
            "link": self.link.to_dict(),
            "power": self.power.to_dict(),
            "constraints": self.constraints.to_dict(),
        }


# ------------------------------------------------------------------------ cost model


def compute_cost(
    unit: UnitCost, platform: Side, power: PowerModel, cloud_load: float
) -> tuple[float, float]:
    """(ms, mobile mJ) of running ``unit`` on ``platform``: busy on M, waiting on C."""
    if platform == Side.MOBILE:
        ms = unit.mobile_ms
        return ms, power.busy_mw * ms / 1000.0
    ms = cloud_load * unit.cloud_ms
    return ms, power.wait_mw * ms / 1000.0


def transfer_cost(
    boundary: Boundary | CodecOption,
    direction: str,
    link: Link,
    power: PowerModel,
    cloud_load: float = 1.0,
) -> tuple[float, float]:
    """(ms, mobile mJ) of moving ``boundary`` ``up`` (M->C) or ``down`` (C->M), with its
    own codec or with one of its codec options.

    up:   e_M + air_up + RTT/2 + d_C;  phone busy for e_M, radio for air_up, waits else.
    down: e_C + RTT/2 + air_down + d_M; phone waits for e_C + RTT/2, radio, busy for d_M.
    An option's ``cloud_saved_ms`` (the crop stage a ``crop:*`` photo codec moves to the
    phone) is taken off, times the cloud load, as the cloud does not compute it then.
    """
    half_rtt = link.rtt_ms / 2.0
    bits = 8.0 * boundary.bytes
    if direction == "up":
        air = bits / (link.up_mbps * 1e3)
        radio_mw = power.radio.upload_mw(link.up_mbps)
        busy_ms, wait_ms = boundary.mobile_encode_ms, half_rtt + boundary.cloud_decode_ms
    elif direction == "down":
        air = bits / (link.down_mbps * 1e3)
        radio_mw = power.radio.download_mw(link.down_mbps)
        busy_ms, wait_ms = boundary.mobile_decode_ms, boundary.cloud_encode_ms + half_rtt
    else:
        raise ValueError(f"direction must be 'up' or 'down', got {direction!r}")
    if direction == "up" and isinstance(boundary, CodecOption):
        wait_ms -= cloud_load * boundary.cloud_saved_ms
    ms = busy_ms + air + wait_ms
    energy = (power.busy_mw * busy_ms + radio_mw * air + power.wait_mw * wait_ms) / 1000.0
    return ms, energy


def evaluate(
    inp: PlanInput,
    link: Link,
    power: PowerModel,
    placement: Sequence[Side],
    cloud_load: float = 1.0,
    codecs: Mapping[int, str] | None = None,
) -> Cost:
    """Price one placement by walking the chain (no search), with a full breakdown.

    The data starts on the phone; before each unit it moves to the unit's platform if
    it is elsewhere; at the end the result moves back to the phone. ``codecs[b]`` names
    the codec option boundary ``b`` crosses with; a crossing not named takes the
    fastest option (least ms, then least mJ).
    """
    _check_inputs(inp, link, power)
    sides = tuple(Side.coerce(p) for p in placement)  # PlacementError (a ValueError)
    if len(sides) != len(inp.units):
        raise ValueError(f"placement has {len(sides)} entries for {len(inp.units)} units")
    names = inp.names
    units: list[UnitBreakdown] = []
    transfers: list[TransferBreakdown] = []
    where = Side.MOBILE

    def move(b: int, to: Side) -> None:
        direction = "up" if to == Side.CLOUD else "down"
        option, (ms, mj) = _option(inp.boundaries[b], direction, link, power, cloud_load, codecs, b)
        after = "input" if b == 0 else names[b - 1]
        transfers.append(TransferBreakdown(b, after, direction, option.bytes, ms, mj, option.name))

    for i, (unit, platform) in enumerate(zip(inp.units, sides, strict=True)):
        if platform != where:
            move(i, platform)
            where = platform
        ms, mj = compute_cost(unit, platform, power, cloud_load)
        units.append(UnitBreakdown(i, unit.name, platform, ms, mj))
    if where != Side.MOBILE:
        move(len(inp.units), Side.MOBILE)
    latency = math.fsum([u.compute_ms for u in units] + [t.ms for t in transfers])
    energy = math.fsum([u.energy_mj for u in units] + [t.energy_mj for t in transfers])
    return Cost(latency, energy, tuple(units), tuple(transfers))


def _option(
    boundary: Boundary,
    direction: str,
    link: Link,
    power: PowerModel,
    cloud_load: float,
    codecs: Mapping[int, str] | None,
    b: int,
) -> tuple[CodecOption, tuple[float, float]]:
    """The codec option boundary ``b`` crosses with (``codecs[b]``, else the fastest)
    and its (ms, mJ)."""
    priced = [(transfer_cost(o, direction, link, power, cloud_load), o) for o in boundary.options()]
    wanted = None if codecs is None else codecs.get(b)
    if wanted is None:
        cost, option = min(priced, key=itemgetter(0))
        return option, cost
    for cost, option in priced:
        if option.name == wanted:
            return option, cost
    known = ", ".join(o.name or "(default)" for _, o in priced)
    raise ValueError(f"boundary {b} has no codec option {wanted!r} (it has {known})")


def objective_value(
    objective: str, cost: Cost, constraints: Constraints, mobile_only: Cost
) -> float:
    """The number ``objective`` minimises for ``cost`` (``inf`` for a ``deadline`` plan
    that misses the deadline).  ``mobile_only`` gives the weighted objective's scale."""
    return _scorer(objective, constraints, mobile_only)(cost)


# ------------------------------------------------------------------------- the search


# A way to cross: (ms, mJ, codec option name).
_Crossing = tuple[float, float, str]


@dataclass(frozen=True)
class _Edges:
    """Edge costs, indexed by platform 0 (M) / 1 (C).

    ``comp_ms[i][q]``: unit i on q (the same for mJ).  ``xfer[b][p]``: the ways boundary
    b can leave p (p=0 is "up", p=1 is "down"), one per codec option that no other
    option beats in both ms and mJ, fastest first.  Each option is a parallel edge, so
    choosing a codec per crossing is part of the shortest path: for an objective linear
    in (ms, mJ) the best parallel edge is the one that minimises it (:meth:`pick`),
    and the deadline search keeps every option's label.
    """

    comp_ms: list[tuple[float, float]]
    comp_mj: list[tuple[float, float]]
    xfer: list[tuple[tuple[_Crossing, ...], tuple[_Crossing, ...]]]

    @classmethod
    def build(cls, inp: PlanInput, link: Link, power: PowerModel, cloud_load: float) -> _Edges:
        mobile, cloud = PLATFORMS
        comp = [
            (compute_cost(u, mobile, power, cloud_load), compute_cost(u, cloud, power, cloud_load))
            for u in inp.units
        ]

        def ways(b: Boundary, direction: str) -> tuple[_Crossing, ...]:
            priced = [
                (*transfer_cost(o, direction, link, power, cloud_load), o.name) for o in b.options()
            ]
            return tuple(_pareto_crossings(priced))

        return cls(
            comp_ms=[(m[0], c[0]) for m, c in comp],
            comp_mj=[(m[1], c[1]) for m, c in comp],
            xfer=[(ways(b, "up"), ways(b, "down")) for b in inp.boundaries],
        )

    def pick(self, a: float, b: float, a2: float, b2: float) -> _Edges:
        """The same graph with one crossing per boundary and direction: the one with the
        least ``a*ms + b*mJ``, ties broken by ``a2*ms + b2*mJ`` (then the first)."""

        def best(ways: tuple[_Crossing, ...]) -> tuple[_Crossing, ...]:
            return (min(ways, key=lambda w: (a * w[0] + b * w[1], a2 * w[0] + b2 * w[1])),)

        xfer = [(best(up), best(down)) for up, down in self.xfer]
        return _Edges(self.comp_ms, self.comp_mj, xfer)

    @property
    def n(self) -> int:
        return len(self.comp_ms)

    def edge(self, i: int, p: int, q: int) -> tuple[float, float]:
        """(ms, mJ) of edge (i, p) -> (i+1, q) (its first crossing: the only one after
        :meth:`pick`)."""
        ms, mj = self.comp_ms[i][q], self.comp_mj[i][q]
        if p != q:
            ms += self.xfer[i][p][0][0]
            mj += self.xfer[i][p][0][1]
        return ms, mj

    def edges(self, i: int, p: int, q: int) -> list[_Crossing]:
        """Every parallel edge (i, p) -> (i+1, q): (ms, mJ, codec; "" when no crossing)."""
        ms, mj = self.comp_ms[i][q], self.comp_mj[i][q]
        if p == q:
            return [(ms, mj, "")]
        return [(ms + x_ms, mj + x_mj, codec) for x_ms, x_mj, codec in self.xfer[i][p]]

    def back(self) -> tuple[float, float]:
        """(ms, mJ) of the final edge (N, C) -> (N, M)."""
        ms, mj, _ = self.xfer[self.n][1][0]
        return ms, mj

    def codecs(self, platforms: Sequence[int]) -> dict[int, str]:
        """The codec of every crossing of ``platforms`` (after :meth:`pick`)."""
        out = {}
        where = 0
        for i, q in enumerate((*platforms, 0)):
            if q != where:
                out[i] = self.xfer[i][where][0][2]
                where = q
        return out


def _pareto_crossings(priced: list[_Crossing]) -> list[_Crossing]:
    """The options no other beats in both ms and mJ, by ms (ties: less mJ, first)."""
    front: list[_Crossing] = []
    for way in sorted(priced, key=_BY_MS_MJ):
        if not front or way[1] < front[-1][1]:
            front.append(way)
    return front


def _shortest(edges: _Edges, a: float, b: float, a2: float, b2: float) -> tuple[int, ...]:
    """Placement (0/1 per unit) minimising ``a*ms + b*mJ``, ties broken by ``a2*ms + b2*mJ``.

    Dynamic programming over the layered DAG, layer by layer (every edge goes from layer
    i to i+1, so this is Dijkstra's order without the heap).
    """
    n = edges.n
    best: list[tuple[float, float]] = [(0.0, 0.0), (_INF, _INF)]
    pred: list[tuple[int, int]] = []
    for i in range(n):
        new: list[tuple[float, float]] = [(_INF, _INF), (_INF, _INF)]
        choice = [0, 0]
        for q in (0, 1):
            for p in (0, 1):
                if best[p][0] == _INF:
                    continue
                ms, mj = edges.edge(i, p, q)
                cand = (best[p][0] + a * ms + b * mj, best[p][1] + a2 * ms + b2 * mj)
                if cand < new[q]:
                    new[q], choice[q] = cand, p
        best = new
        pred.append((choice[0], choice[1]))
    ms, mj = edges.back()
    via_cloud = (best[1][0] + a * ms + b * mj, best[1][1] + a2 * ms + b2 * mj)
    q = 1 if via_cloud < best[0] else 0
    return _backtrack(pred, q)


def _backtrack(pred: list[tuple[int, int]], last: int) -> tuple[int, ...]:
    platforms = []
    q = last
    for i in range(len(pred) - 1, -1, -1):
        platforms.append(q)
        q = pred[i][q]
    return tuple(reversed(platforms))


@dataclass(frozen=True)
class _ToSink:
    """Exact optimal completions from every node to the sink, by one metric.

    ``value[i][p]``: least metric from (i, p) to the sink; ``other[i][p]``: the other
    metric along that completion; ``next[i][p]``: the platform of unit i on it.
    ``edges``: the graph with, per crossing, the codec least by that metric (then the
    other), so the value is exact over every codec option too.
    """

    value: list[list[float]]
    other: list[list[float]]
    next: list[list[int]]
    edges: _Edges

    @classmethod
    def build(cls, edges: _Edges, by_energy: bool) -> _ToSink:
        edges = edges.pick(0.0, 1.0, 1.0, 0.0) if by_energy else edges.pick(1.0, 0.0, 0.0, 1.0)
        n = edges.n
        k = 1 if by_energy else 0
        back = edges.back()
        value = [[0.0, 0.0] for _ in range(n + 1)]
        other = [[0.0, 0.0] for _ in range(n + 1)]
        nxt = [[0, 0] for _ in range(n)]
        value[n] = [0.0, back[k]]
        other[n] = [0.0, back[1 - k]]
        for i in range(n - 1, -1, -1):
            for p in (0, 1):
                options = []
                for q in (0, 1):
                    cost = edges.edge(i, p, q)
                    options.append((cost[k] + value[i + 1][q], cost[1 - k] + other[i + 1][q], q))
                v, o, q = min(options)
                value[i][p], other[i][p], nxt[i][p] = v, o, q
        return cls(value, other, nxt, edges)

    def completion(self, i: int, p: int) -> list[int]:
        """Platforms of units i..N-1 along the optimal completion from (i, p)."""
        out = []
        for j in range(i, len(self.next)):
            p = self.next[j][p]
            out.append(p)
        return out


# A Pareto label: (latency ms, energy mJ, platform of the last unit, parent label, codec
# of the crossing on the edge into it, "" for none).
_Label = tuple[float, float, int, Any, str]
# A placement (0/1 per unit) and the codec of each crossing, by boundary.
_Path = tuple[tuple[int, ...], dict[int, str]]


def _label_path(label: _Label | None) -> tuple[list[int], dict[int, str]]:
    """The platforms of the units along ``label``'s path, and its crossings' codecs."""
    steps = []
    while label is not None and label[3] is not None:
        steps.append((label[2], label[4]))
        label = label[3]
    steps.reverse()
    return [q for q, _ in steps], {i: codec for i, (_, codec) in enumerate(steps) if codec}


def _completed(head: list[int], head_codecs: dict[int, str], table: _ToSink, last: int) -> _Path:
    """``head`` (the first units' platforms, ending on ``last``) completed optimally by
    ``table``, with the codecs of the head's crossings and of the table's."""
    platforms = tuple(head + table.completion(len(head), last))
    codecs = table.edges.codecs(platforms)
    codecs.update(head_codecs)
    return platforms, codecs


def _deadline_search(edges: _Edges, deadline: float) -> _Path | None:
    """Least-energy placement (and codecs) with latency <= ``deadline``, or None when
    none exists.

    Label-setting over the layered DAG: each node keeps its Pareto front of (ms, mJ)
    labels (sorted by ms, mJ strictly decreasing); every codec option of a crossing is
    a parallel edge and extends each label.  A label is dropped when
    ``ms + least ms to the sink > D`` (cannot meet the deadline) or when
    ``mJ + least mJ to the sink > best feasible energy known`` (cannot win).  The best
    feasible energy (the incumbent) starts at the fastest plan's and improves whenever a
    label's fastest or least-energy completion is feasible.  All bounds are exact
    optima to the sink, so no optimal path is ever dropped: the result is exact.
    """
    fast = _ToSink.build(edges, by_energy=False)
    lean = _ToSink.build(edges, by_energy=True)
    if fast.value[0][0] > deadline:
        return None
    if lean.other[0][0] <= deadline:  # the least-energy plan already meets D
        return _completed([], {}, lean, 0)
    # Incumbent: the fastest plan to start with.
    inc = _Incumbent(fast.other[0][0], None, fast)
    fronts: list[list[_Label]] = [[(0.0, 0.0, 0, None, "")], []]
    for i in range(edges.n):
        fronts = [_extend(edges, fronts, i, q, deadline, fast, lean, inc) for q in (0, 1)]
    best = _best_final(fronts, edges, deadline)
    if best is not None and best[0] <= inc.mj:
        platforms, codecs = _label_path(best[1])
        if best[2]:
            codecs[edges.n] = best[2]
        return tuple(platforms), codecs
    if inc.label is None:
        return _completed([], {}, inc.table, 0)
    return _completed(*_label_path(inc.label), inc.table, inc.label[2])


@dataclass
class _Incumbent:
    """Best feasible plan known during the label search: its energy, and where it is
    (a label plus that label's optimal completion by ``table``; no label: from source)."""

    mj: float
    label: _Label | None
    table: _ToSink

    def cap(self, least_mj_to_sink: float) -> float:
        """Labels with more mJ than this cannot beat the incumbent (float slack kept)."""
        return self.mj + _SEARCH_TOL * max(1.0, self.mj) - least_mj_to_sink


_SEARCH_TOL = 1e-9


def _extend(
    edges: _Edges,
    fronts: list[list[_Label]],
    i: int,
    q: int,
    deadline: float,
    fast: _ToSink,
    lean: _ToSink,
    inc: _Incumbent,
) -> list[_Label]:
    """The Pareto front of node (i+1, q) from the fronts of layer i, updating ``inc``.

    Extensions that cannot meet D even on the fastest completion, or cannot beat the
    incumbent even on the least-energy completion, are dropped.  Each kept label offers
    a feasible plan: its least-energy completion when that meets D, else its fastest.
    """
    least_ms, least_mj = fast.value[i + 1][q], lean.value[i + 1][q]
    fast_mj = fast.other[i + 1][q]
    ms_cap = deadline - least_ms
    lean_ok = deadline - lean.other[i + 1][q]  # ms <= this: least-energy completion fits
    mj_cap = inc.cap(least_mj)
    cands: list[_Label] = []
    for p in (0, 1):
        for e_ms, e_mj, codec in edges.edges(i, p, q):
            for lab in fronts[p]:
                ms = lab[0] + e_ms
                if ms > ms_cap:
                    break  # the front is sorted by ms: the rest are later still
                mj = lab[1] + e_mj
                if mj > mj_cap:
                    continue
                label = (ms, mj, q, lab, codec)
                cands.append(label)
                lean_fits = ms <= lean_ok
                total = mj + (least_mj if lean_fits else fast_mj)
                if total < inc.mj:
                    inc.mj, inc.label, inc.table = total, label, lean if lean_fits else fast
                    mj_cap = inc.cap(least_mj)
    return _pareto(cands)


_BY_MS_MJ = itemgetter(0, 1)


def _pareto(cands: list[_Label]) -> list[_Label]:
    """Non-dominated labels sorted by ms (mJ strictly decreasing)."""
    cands.sort(key=_BY_MS_MJ)
    front: list[_Label] = []
    least = _INF
    for lab in cands:
        if lab[1] < least:
            front.append(lab)
            least = lab[1]
    return front


def _best_final(
    fronts: list[list[_Label]], edges: _Edges, deadline: float
) -> tuple[float, _Label, str] | None:
    """The least-energy label at the sink that meets the deadline (ties: faster), and
    the codec of the logits' trip back ("" when it ends on the phone)."""
    best: tuple[float, float, _Label, str] | None = None
    ends = [(0, 0.0, 0.0, "")] + [(1, *way) for way in edges.xfer[edges.n][1]]
    for p, extra_ms, extra_mj, codec in ends:
        for lab in fronts[p]:
            ms, mj = lab[0] + extra_ms, lab[1] + extra_mj
            if ms <= deadline and (best is None or (mj, ms) < best[:2]):
                best = (mj, ms, lab, codec)
    return None if best is None else (best[0], best[2], best[3])


# ---------------------------------------------------------------------- the planner


def plan(
    inp: PlanInput,
    link: Link,
    power: PowerModel,
    objective: str = "latency",
    constraints: Constraints | None = None,
) -> Plan:
    """Place every unit for ``objective`` under ``constraints`` (see the module doc)."""
    constraints = constraints or Constraints()
    _check_inputs(inp, link, power)
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; choose one of {', '.join(OBJECTIVES)}")
    if objective == "deadline" and constraints.deadline_ms is None:
        raise ValueError("the deadline objective needs a deadline (deadline_ms)")
    used, reason = _objective_used(objective, constraints)
    k = constraints.cloud_load
    n = len(inp.units)

    def cost_of(platforms: Sequence[int], codecs: Mapping[int, str] | None = None) -> Cost:
        return evaluate(inp, link, power, tuple(PLATFORMS[p] for p in platforms), k, codecs)

    mobile_only = cost_of([0] * n)
    edges = _Edges.build(inp, link, power, k)
    solved = _solve(edges, used, constraints, mobile_only)
    infeasible = solved is None
    # deadline objective, nobody meets D: report the fastest plan
    platforms, codecs = _linear(edges, 1.0, 0.0, 0.0, 1.0) if solved is None else solved
    cost = cost_of(platforms, codecs)
    deadline = constraints.deadline_ms
    feasible = not infeasible and constraints.meets_deadline(cost.latency_ms)
    if infeasible:
        reason = _join(
            reason,
            f"no placement meets the deadline of {deadline:g} ms; the "
            f"fastest plan takes {cost.latency_ms:.3f} ms",
        )
    elif not feasible:
        reason = _join(reason, f"this {used} plan misses the deadline of {deadline:g} ms")
    score = objective_value(used, cost, constraints, mobile_only)
    value = score if math.isfinite(score) and not infeasible else None  # JSON has no inf
    return Plan(
        objective=objective,
        objective_used=used,
        reason=reason,
        units=inp.names,
        placement=tuple(PLATFORMS[p] for p in platforms),
        cost=cost,
        feasible=feasible,
        objective_value=value,
        baselines=_baselines(inp, link, power, edges, used, constraints, mobile_only),
        link=link,
        power=power,
        constraints=constraints,
    )


def _solve(
    edges: _Edges, objective: str, constraints: Constraints, mobile_only: Cost
) -> _Path | None:
    """The optimal platforms (0/1 per unit) and codec per crossing, or None for an
    infeasible deadline."""
    if objective == "deadline":
        assert constraints.deadline_ms is not None
        return _deadline_search(edges, constraints.deadline_bound_ms)
    return _linear(edges, *_coefficients(objective, constraints, mobile_only))


def _coefficients(
    objective: str, constraints: Constraints, mobile_only: Cost
) -> tuple[float, float, float, float]:
    """``(a, b, a2, b2)``: the linear objective minimises ``a*ms + b*mJ``, ties broken by
    ``a2*ms + b2*mJ`` (the deadline objective: the fastest, for its baselines)."""
    if objective == "energy":
        return 0.0, 1.0, 1.0, 0.0
    if objective == "weighted":
        a, b = _weights(constraints.weight, mobile_only)
        return a, b, 1.0, 0.0
    return 1.0, 0.0, 0.0, 1.0


def _linear(edges: _Edges, a: float, b: float, a2: float, b2: float) -> _Path:
    """The shortest path by ``a*ms + b*mJ`` (ties: ``a2*ms + b2*mJ``): each crossing's
    best codec is the one minimising that, so the codecs are picked first."""
    picked = edges.pick(a, b, a2, b2)
    platforms = _shortest(picked, a, b, a2, b2)
    return platforms, picked.codecs(platforms)


def _weights(w: float, mobile_only: Cost) -> tuple[float, float]:
    """Coefficients of ms and mJ in the weighted objective, normalised by the
    mobile-only figures (a zero figure, a degenerate model, normalises by 1)."""
    l0 = mobile_only.latency_ms if mobile_only.latency_ms > 0 else 1.0
    e0 = mobile_only.mobile_energy_mj if mobile_only.mobile_energy_mj > 0 else 1.0
    return w / l0, (1.0 - w) / e0


def _scorer(objective: str, constraints: Constraints, mobile_only: Cost) -> Callable[[Cost], float]:
    """``cost -> the number objective minimises``."""
    score = _pair_scorer(objective, constraints, mobile_only)
    return lambda c: score(c.latency_ms, c.mobile_energy_mj)


def _pair_scorer(
    objective: str, constraints: Constraints, mobile_only: Cost
) -> Callable[[float, float], float]:
    """``(ms, mJ) -> the number objective minimises`` (inf: misses the deadline)."""
    if objective == "latency":
        return lambda ms, mj: ms
    if objective == "energy":
        return lambda ms, mj: mj
    if objective == "weighted":
        a, b = _weights(constraints.weight, mobile_only)
        return lambda ms, mj: a * ms + b * mj
    if objective == "deadline":
        if constraints.deadline_ms is None:
            raise ValueError("the deadline objective needs a deadline (deadline_ms)")
        meets = constraints.meets_deadline
        return lambda ms, mj: mj if meets(ms) else _INF
    raise ValueError(f"unknown objective {objective!r}; choose one of {', '.join(OBJECTIVES)}")


def _objective_used(objective: str, constraints: Constraints) -> tuple[str, str]:
    """Apply the battery rule: below the threshold, save energy."""
    battery, threshold = constraints.battery_fraction, constraints.battery_threshold
    if battery >= threshold:
        return objective, ""
    low = f"battery at {battery:.0%} is below the threshold of {threshold:.0%}"
    if objective == "deadline":
        return objective, f"{low}; the deadline objective already minimises energy"
    if constraints.deadline_ms is not None:
        return "deadline", (
            f"{low}: switched from {objective} to deadline (least energy "
            f"within {constraints.deadline_ms:g} ms)"
        )
    if objective == "energy":
        return objective, f"{low}; the energy objective already minimises energy"
    return "energy", f"{low}: switched from {objective} to energy"


def _baselines(
    inp: PlanInput,
    link: Link,
    power: PowerModel,
    edges: _Edges,
    objective: str,
    constraints: Constraints,
    mobile_only: Cost,
) -> dict[str, Baseline]:
    """All-mobile, all-cloud and the best single cut for ``objective``.

    The best cut k in 0..N puts units [0, k) on the phone and [k, N) in the cloud
    (Neurosurgeon).  Cloud-only ships boundary 0 with its own codec (the photo): a
    ``crop:*`` codec has the phone run preprocessing's crop stage, which makes it a cut
    (inside unit 0), not a single platform.  For ``deadline`` the best cut is the
    least-energy one that meets D,
    or the fastest cut when none does.  Cuts are scored in O(N) from prefix sums; only
    the winner is priced in full by :func:`evaluate`.  Each crossing takes the codec
    that is best for the objective (the fastest for ``deadline``).
    """
    n = len(inp.units)
    picked = edges.pick(*_coefficients(objective, constraints, mobile_only))

    def baseline(name: str, cut: int | None, placement: tuple[Side, ...]) -> Baseline:
        codecs = picked.codecs([PLATFORMS.index(side) for side in placement])
        if name == "cloud_only":  # the phone does nothing: it ships boundary 0 as it is
            codecs[0] = inp.boundaries[0].options()[0].name
        cost = evaluate(inp, link, power, placement, constraints.cloud_load, codecs)
        return Baseline(name, placement, cost, constraints.meets_deadline(cost.latency_ms), cut)

    score = _pair_scorer(objective, constraints, mobile_only)
    cuts = _cut_costs(picked)
    ranked = [(score(ms, mj), ms, mj, k) for k, (ms, mj) in enumerate(cuts)]
    best = min(ranked)
    if best[0] == _INF:  # no cut meets the deadline: the fastest one
        best = min((ms, mj, math.inf, k) for _, ms, mj, k in ranked)
    k = best[3]
    return {
        "mobile_only": baseline("mobile_only", None, (Side.MOBILE,) * n),
        "cloud_only": baseline("cloud_only", None, (Side.CLOUD,) * n),
        "best_single_cut": baseline(
            "best_single_cut", k, (Side.MOBILE,) * k + (Side.CLOUD,) * (n - k)
        ),
    }


def _cut_costs(edges: _Edges) -> list[tuple[float, float]]:
    """(ms, mJ) of every single cut k = 0..N: units [0, k) on M, then boundary k goes
    up, units [k, N) run on C and boundary N comes back (k = N: all on the phone);
    ``edges`` has one crossing per boundary and direction (:meth:`_Edges.pick`)."""
    n = edges.n
    # suffix[k]: cloud compute of units [k, N) plus the logits' trip back
    back_ms, back_mj = edges.back()
    suffix = [(back_ms, back_mj)] * (n + 1)
    for i in range(n - 1, -1, -1):
        ms, mj = suffix[i + 1]
        suffix[i] = (ms + edges.comp_ms[i][1], mj + edges.comp_mj[i][1])
    out = []
    head_ms = head_mj = 0.0
    for k in range(n + 1):
        if k == n:
            out.append((head_ms, head_mj))
        else:
            up_ms, up_mj, _ = edges.xfer[k][0][0]
            out.append((head_ms + up_ms + suffix[k][0], head_mj + up_mj + suffix[k][1]))
            head_ms += edges.comp_ms[k][0]
            head_mj += edges.comp_mj[k][0]
    return out


# --------------------------------------------------------------------------- helpers


def _check_inputs(inp: PlanInput, link: Link, power: PowerModel) -> None:
    if not isinstance(inp, PlanInput):
        raise ValueError(f"expected a PlanInput, got {type(inp).__name__}")
    if not isinstance(link, Link):
        raise ValueError(f"expected a Link, got {type(link).__name__}")
    if not isinstance(power, PowerModel):
        raise ValueError(f"expected a PowerModel, got {type(power).__name__}")


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _pct(reference: float, value: float) -> float | None:
    return None if reference <= 0 else 100.0 * (reference - value) / reference


def _join(first: str, second: str) -> str:
    return f"{first}; {second}" if first else second
