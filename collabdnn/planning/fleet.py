"""Plans for many phones that share one cloud fleet: best responses against a queue.

Each phone's own plan (:func:`collabdnn.planning.planner.plan`) assumes the cloud is
its alone. With many phones the offloaded work adds up; once it approaches the fleet's
capacity, requests queue and every phone that offloads waits. This module is the pure,
torch-free step the scheduler runs over all its agents:

* **Demand.** Agent *i* sends ``rate_hz`` requests per second; its plan puts
  ``cloud_ms(plan)`` of cloud compute (the profiled cloud unit times of the units it
  places there) on the fleet per request. The offered load is
  ``a = sum(rate_i * cloud_ms_i) / 1000`` busy servers (Erlangs).
* **Capacity.** ``servers`` requests run in parallel at the profiled speed:
  replicas times what one replica serves at once (:class:`CloudCapacity`).
* **Queueing.** The cloud is an M/M/c queue with ``c = servers``: the mean response
  time divided by the mean service time is ``K = 1 + C(c, a) / (c - a)`` (Erlang C,
  the probability of waiting), which multiplies every cloud unit's time, exactly what
  the planner's ``cloud_load`` does. At or beyond saturation (``a >= c``) the queue
  grows without bound; ``K`` is then ``k_max`` (the planner needs a finite figure).
* **Best responses.** While the independent plans would load the fleet past
  ``saturation`` (utilisation ``a / c``), each agent in turn re-plans for the ``K``
  the others' load and each of its candidate plans give (its planner's answers for a
  doubling ``K``, and all on the phone; its own demand moves ``K`` too), the agents
  that gain least from the cloud (per unit of cloud work they put there) first, so
  that work moves back to the phones where that costs least; rounds repeat until no
  plan changes (or ``max_rounds``). Below saturation the independent plans are kept:
  a queue that rarely forms is not worth a phone's time.
* **Capacity is a hard limit.** A phone that gains enough from the cloud offloads even
  at ``K = k_max`` (a 20 times slower phone), but past saturation the queue grows
  without bound and the cloud refuses calls. So while the plans still load the fleet
  past ``max_utilisation``, the agent that loses least latency per Erlang it frees
  (priced at the fleet's ``K``) takes its next candidate with less cloud work, one
  move at a time.

:func:`plan_fleet` returns every agent's plan, the fleet's ``K`` and utilisation, and
why each plan differs from the agent's independent one (:class:`FleetMove`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from collabdnn.placement import Side
from collabdnn.planning.energy import PowerModel
from collabdnn.planning.link import Link
from collabdnn.planning.planner import Constraints, Plan, evaluate, objective_value, plan
from collabdnn.planning.profiles import PlanInput

__all__ = [
    "CloudCapacity",
    "FleetAgent",
    "FleetMove",
    "FleetPlan",
    "cloud_ms",
    "erlang_c",
    "plan_fleet",
    "queue_factor",
]

K_MAX = 50.0  # the slowdown assumed at or past saturation (finite: the planner needs it)


@dataclass(frozen=True)
class CloudCapacity:
    """How many requests the cloud fleet serves in parallel at the profiled speed.

    ``replicas`` (from DNS or the clouds' Info), ``per_replica`` (1: a replica's
    profiled unit times already use all its threads, so concurrent requests share
    them), ``speed``: the measured service rate relative to the profile (from the
    clouds' counters; 0.5 = units take twice their profiled time)."""

    replicas: int = 1
    per_replica: float = 1.0
    speed: float = 1.0

    def __post_init__(self) -> None:
        if self.replicas < 1:
            raise ValueError(f"a fleet has at least one replica, got {self.replicas}")
        for name in ("per_replica", "speed"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")

    @property
    def servers(self) -> float:
        """Requests served in parallel, in units of profiled speed."""
        return self.replicas * self.per_replica * self.speed


@dataclass(frozen=True)
class FleetAgent:
    """One phone as the fleet planner sees it: its planner inputs and its request rate."""

    id: str
    inputs: PlanInput
    link: Link
    power: PowerModel
    objective: str = "latency"
    constraints: Constraints = field(default_factory=Constraints)
    rate_hz: float = 1.0  # requests per second this phone sends

    def __post_init__(self) -> None:
        if not (math.isfinite(self.rate_hz) and self.rate_hz >= 0):
            raise ValueError(f"rate_hz must be a finite number >= 0, got {self.rate_hz!r}")


@dataclass(frozen=True)
class FleetMove:
    """An agent whose fleet plan differs from the plan it would make alone, and why."""

    agent: str
    alone: str  # the independent placement
    planned: str  # the fleet-aware one
    reason: str


@dataclass(frozen=True)
class FleetPlan:
    """Every agent's plan and what the fleet is predicted to see with them."""

    plans: Mapping[str, Plan]
    independent: Mapping[str, Plan]
    capacity: CloudCapacity
    offered: float  # Erlangs (busy servers) the plans put on the cloud
    offered_alone: float  # ... and the independent plans
    cloud_load: float  # K with these plans
    rounds: int  # best-response rounds run (0: below saturation)
    converged: bool
    moves: tuple[FleetMove, ...]
    predicted_ms: Mapping[str, float] = field(default_factory=dict)  # latency at cloud_load

    @property
    def utilisation(self) -> float:
        return self.offered / self.capacity.servers

    @property
    def utilisation_alone(self) -> float:
        return self.offered_alone / self.capacity.servers

    def to_dict(self) -> dict[str, object]:
        return {
            "servers": self.capacity.servers,
            "replicas": self.capacity.replicas,
            "utilisation": self.utilisation,
            "utilisation_alone": self.utilisation_alone,
            "cloud_load": self.cloud_load,
            "rounds": self.rounds,
            "converged": self.converged,
            "moves": [m.__dict__ for m in self.moves],
        }


def cloud_ms(inputs: PlanInput, placement: Sequence[Side]) -> float:
    """Profiled cloud compute per request of a placement (what it puts on the fleet)."""
    return sum(
        unit.cloud_ms
        for unit, side in zip(inputs.units, placement, strict=True)
        if side == Side.CLOUD
    )


def erlang_c(servers: int, offered: float) -> float:
    """Erlang C: the probability that a request waits in an M/M/c queue
    (``servers`` = c, ``offered`` = a in Erlangs); 1 at or past saturation."""
    if offered <= 0:
        return 0.0
    if offered >= servers:
        return 1.0
    b = 1.0  # Erlang B by its stable recursion
    for k in range(1, servers + 1):
        b = offered * b / (k + offered * b)
    return servers * b / (servers - offered * (1.0 - b))


def queue_factor(offered: float, capacity: CloudCapacity, k_max: float = K_MAX) -> float:
    """K: mean response time over profiled service time for ``offered`` Erlangs.

    A fractional capacity is ``n = max(1, floor(servers))`` servers, each
    ``servers / n`` times the profiled speed (so that the total is kept)."""
    total = capacity.servers
    n = max(1, math.floor(total))
    speed = total / n
    a = offered / speed  # Erlangs at those servers' speed
    if a >= n:
        return k_max
    k = (1.0 + erlang_c(n, a) / (n - a)) / speed
    return min(max(k, 1.0 / speed), k_max)


def _plan(agent: FleetAgent, k: float) -> Plan:
    return plan(
        agent.inputs,
        agent.link,
        agent.power,
        agent.objective,
        replace(agent.constraints, cloud_load=k),
    )


def _demand(agent: FleetAgent, p: Plan) -> float:
    return agent.rate_hz * cloud_ms(agent.inputs, p.placement) / 1000.0


def _candidates(agent: FleetAgent, alone: Plan) -> list[Plan]:
    """The plans worth considering for an agent: its planner's answers for K doubling
    from its own up to 10^4, and all on the phone (distinct placements, most cloud
    work first). Best responses pick among them; they do not depend on the others."""
    found = {alone.placement: alone}
    k = agent.constraints.cloud_load
    while k < 1e4:
        k *= 2.0
        p = _plan(agent, k)
        found.setdefault(p.placement, p)
    p = _plan(agent, 1e12)  # a cloud no plan would use: the phone only
    found.setdefault(p.placement, p)
    return sorted(found.values(), key=lambda c: -_demand(agent, c))


def _score(agent: FleetAgent, p: Plan, k: float) -> float:
    """The agent's objective for plan ``p`` when the cloud's factor is ``k``."""
    cost = evaluate(agent.inputs, agent.link, agent.power, p.placement, k, p.codecs)
    constraints = replace(agent.constraints, cloud_load=k)
    mobile_only = p.baselines["mobile_only"].cost
    return objective_value(p.objective_used, cost, constraints, mobile_only)


def plan_fleet(
    agents: Sequence[FleetAgent],
    capacity: CloudCapacity,
    saturation: float = 0.8,
    max_rounds: int = 20,
    k_max: float = K_MAX,
    max_utilisation: float = 0.9,
) -> FleetPlan:
    """Every agent's plan, fleet-aware (see the module doc). Pure: same inputs, same
    plans; the agents' order does not matter (they are taken by gain, then id)."""
    agents = sorted(agents, key=lambda a: a.id)
    alone = {a.id: _plan(a, a.constraints.cloud_load) for a in agents}
    offered_alone = sum(_demand(a, alone[a.id]) for a in agents)
    plans = dict(alone)
    rounds, converged = 0, True
    if offered_alone > saturation * capacity.servers:
        converged = False
        options = {a.id: _candidates(a, alone[a.id]) for a in agents}
        demand = {a.id: _demand(a, plans[a.id]) for a in agents}
        order = sorted(agents, key=lambda a: (_gain(a, alone[a.id]), a.id))
        for rounds in range(1, max_rounds + 1):  # noqa: B007 (reported)
            changed = False
            for agent in order:
                others = sum(demand.values()) - demand[agent.id]

                def score(c: Plan, agent: FleetAgent = agent, others: float = others) -> float:
                    k = queue_factor(others + _demand(agent, c), capacity, k_max)
                    return _score(agent, c, k)

                current = plans[agent.id]
                best = min(options[agent.id], key=score)
                if best.placement != current.placement and score(best) < score(current):
                    plans[agent.id], changed = best, True
                    demand[agent.id] = _demand(agent, best)
            if not changed:
                converged = True
                break
        _within_capacity(agents, plans, options, capacity, max_utilisation, k_max)
    offered = sum(_demand(a, plans[a.id]) for a in agents)
    k_final = queue_factor(offered, capacity, k_max)
    moves = tuple(
        _move(a, alone[a.id], plans[a.id], offered_alone, capacity, k_final)
        for a in agents
        if plans[a.id].placement != alone[a.id].placement
    )
    return FleetPlan(
        plans=plans,
        independent=alone,
        capacity=capacity,
        offered=offered,
        offered_alone=offered_alone,
        cloud_load=k_final,
        rounds=rounds,
        converged=converged,
        moves=moves,
        predicted_ms={a.id: _latency(a, plans[a.id], k_final) for a in agents},
    )


def _within_capacity(
    agents: Sequence[FleetAgent],
    plans: dict[str, Plan],
    options: Mapping[str, list[Plan]],
    capacity: CloudCapacity,
    max_utilisation: float,
    k_max: float,
) -> None:
    """Move work back until the plans load the fleet to at most ``max_utilisation``
    (see the module doc); changes ``plans`` in place."""
    limit = max_utilisation * capacity.servers
    while (offered := sum(_demand(a, plans[a.id]) for a in agents)) > limit:
        k = queue_factor(offered, capacity, k_max)
        best: tuple[float, str] | None = None
        lighter: dict[str, Plan] = {}
        for agent in agents:
            current = plans[agent.id]
            now = _demand(agent, current)
            nxt = next((c for c in options[agent.id] if _demand(agent, c) < now), None)
            if nxt is None:
                continue
            lighter[agent.id] = nxt
            freed = now - _demand(agent, nxt)
            loss = _latency(agent, nxt, k) - _latency(agent, current, k)
            if best is None or (loss / freed, agent.id) < best:
                best = (loss / freed, agent.id)
        if best is None:
            return  # every agent runs on its phone already
        plans[best[1]] = lighter[best[1]]


def _latency(agent: FleetAgent, p: Plan, k: float) -> float:
    return evaluate(agent.inputs, agent.link, agent.power, p.placement, k, p.codecs).latency_ms


def _gain(agent: FleetAgent, own: Plan) -> float:
    """What the agent's own plan saves over running on the phone, per Erlang of cloud
    work it puts on the fleet (small: cheap to move back)."""
    demand = _demand(agent, own)
    if demand <= 0:
        return math.inf  # it puts nothing there; nothing to move
    saved = own.baselines["mobile_only"].cost.latency_ms - own.latency_ms
    return saved / demand


def _move(
    agent: FleetAgent,
    alone: Plan,
    planned: Plan,
    offered_alone: float,
    capacity: CloudCapacity,
    k: float,
) -> FleetMove:
    freed = cloud_ms(agent.inputs, alone.placement) - cloud_ms(agent.inputs, planned.placement)
    reason = (
        f"the independent plans would load the cloud to {offered_alone / capacity.servers:.0%} "
        f"of {capacity.servers:g} servers; at queueing factor K={k:.2f} this agent's best "
        f"response {'frees' if freed >= 0 else 'adds'} {abs(freed):.1f} ms of cloud work per "
        f"request at {agent.rate_hz:g} req/s, predicted {_latency(agent, planned, k):.1f} ms "
        f"(alone on an idle cloud {alone.latency_ms:.1f} ms)"
    )
    return FleetMove(agent.id, alone.spec, planned.spec, reason)
