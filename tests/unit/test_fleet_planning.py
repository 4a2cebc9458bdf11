"""The fleet-aware planner (collabdnn.planning.fleet): a pure function, no torch."""

from __future__ import annotations

import math

import pytest

from collabdnn.placement import Side
from collabdnn.planning.energy import power_model
from collabdnn.planning.fleet import (
    CloudCapacity,
    FleetAgent,
    cloud_ms,
    erlang_c,
    plan_fleet,
    queue_factor,
)
from collabdnn.planning.link import Link
from collabdnn.planning.profiles import Boundary, PlanInput, UnitCost

WIFI = Link(50.0, 50.0, 5.0, "wifi")
SLOW = Link(4.0, 4.0, 60.0, "3g")


def phone(slowdown: float) -> PlanInput:
    """A small chain: a big input, heavy middle units (10x faster in the cloud), a
    tiny output; a phone ``slowdown`` times slower than the reference."""
    units = tuple(
        UnitCost(f"u{i}", "conv", mobile_ms=ms * slowdown, cloud_ms=ms / 10)
        for i, ms in enumerate([2.0, 40.0, 40.0, 20.0, 5.0])
    )
    sizes = [150_000, 600_000, 200_000, 80_000, 20_000, 4_000]
    return PlanInput(units, tuple(Boundary(b) for b in sizes))


def agent(name: str, slowdown: float, link: Link = WIFI, rate: float = 5.0) -> FleetAgent:
    return FleetAgent(name, phone(slowdown), link, power_model(link.network), rate_hz=rate)


def test_erlang_c_and_the_queue_factor() -> None:
    assert erlang_c(1, 0.5) == pytest.approx(0.5)  # M/M/1: P(wait) = rho
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert erlang_c(4, 0.0) == 0.0 and erlang_c(2, 2.5) == 1.0
    one = CloudCapacity(replicas=1)
    assert queue_factor(0.5, one) == pytest.approx(2.0)  # M/M/1: 1 / (1 - rho)
    assert queue_factor(0.0, one) == 1.0
    assert queue_factor(1.0, one) == queue_factor(7.0, one) == 50.0  # saturated: k_max
    two = CloudCapacity(replicas=2)
    assert queue_factor(1.0, two) < queue_factor(1.0, one)  # a second replica helps
    half = CloudCapacity(replicas=1, per_replica=0.5)  # half as fast: twice the time
    assert queue_factor(0.0, half) == pytest.approx(2.0)
    with pytest.raises(ValueError):
        CloudCapacity(replicas=0)


def test_below_saturation_every_agent_keeps_its_own_plan() -> None:
    agents = [agent(f"p{i}", 10.0, rate=1.0) for i in range(3)]
    fleet = plan_fleet(agents, CloudCapacity(replicas=1))
    assert fleet.utilisation_alone < 0.8 and fleet.rounds == 0 and fleet.converged
    assert not fleet.moves
    for a in agents:
        assert fleet.plans[a.id].placement == fleet.independent[a.id].placement
        assert Side.CLOUD in fleet.plans[a.id].placement  # a slow phone offloads


def test_saturation_moves_work_back_where_it_costs_least() -> None:
    # Slow phones gain most from the cloud; fast phones least.
    agents = [agent(f"slow{i}", 20.0, rate=30.0) for i in range(4)]
    agents += [agent(f"fast{i}", 2.0, rate=30.0) for i in range(4)]
    fleet = plan_fleet(agents, CloudCapacity(replicas=1))
    assert fleet.utilisation_alone > 1.0, "the independent plans saturate the cloud"
    assert fleet.converged and fleet.rounds >= 1
    assert fleet.utilisation < 1.0 and fleet.offered < fleet.offered_alone
    assert fleet.moves and all(m.reason for m in fleet.moves)
    moved = {m.agent for m in fleet.moves}
    assert any(name.startswith("fast") for name in moved)
    # work went back to the phones: less cloud work in total, never more for anyone
    for a in agents:
        assert cloud_ms(a.inputs, fleet.plans[a.id].placement) <= cloud_ms(
            a.inputs, fleet.independent[a.id].placement
        )
    # those who gain most from the cloud keep more of it than those who gain least
    kept = {a.id: cloud_ms(a.inputs, fleet.plans[a.id].placement) for a in agents}
    assert min(kept[f"slow{i}"] for i in range(4)) >= max(kept[f"fast{i}"] for i in range(4))
    assert fleet.cloud_load > 1.0  # a queue forms, and every prediction includes it
    for a in agents:
        assert fleet.predicted_ms[a.id] >= fleet.independent[a.id].latency_ms


def test_a_second_replica_takes_back_work_and_order_does_not_matter() -> None:
    agents = [agent(f"p{i}", 6.0, rate=8.0) for i in range(6)]
    one = plan_fleet(agents, CloudCapacity(replicas=1))
    two = plan_fleet(list(reversed(agents)), CloudCapacity(replicas=2))
    assert two.offered >= one.offered  # more capacity: more offloaded
    again = plan_fleet(list(reversed(agents)), CloudCapacity(replicas=1))
    assert {k: p.placement for k, p in again.plans.items()} == {
        k: p.placement for k, p in one.plans.items()
    }
    assert one.converged and two.converged
    assert math.isfinite(one.cloud_load) and one.to_dict()["replicas"] == 1


def test_idle_agents_put_nothing_on_the_cloud() -> None:
    fleet = plan_fleet([agent("idle", 10.0, rate=0.0)], CloudCapacity())
    assert fleet.offered == 0.0 and fleet.cloud_load == 1.0
    with pytest.raises(ValueError):
        agent("bad", 1.0, rate=-1.0)


def test_best_responses_converge_when_an_agent_moves_the_queue_itself() -> None:
    # One agent whose own offloading nearly saturates the cloud: a best response that
    # ignored its own demand would flip between cloud and phone forever.
    for rate in (60.0, 85.0, 120.0, 400.0):
        fleet = plan_fleet([agent("solo", 10.0, rate=rate)], CloudCapacity(replicas=1))
        assert fleet.converged and fleet.rounds <= 3, rate
        assert fleet.utilisation <= 0.9 + 1e-9
    crowd = [agent(f"p{i:02d}", 4.0 + i % 5, rate=10.0 + 7 * i) for i in range(16)]
    fleet = plan_fleet(crowd, CloudCapacity(replicas=2))
    assert fleet.converged and fleet.utilisation <= 0.9 + 1e-9
