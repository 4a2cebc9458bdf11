"""The scheduler's re-planning rules, on an AlexNet-shaped instance."""

from __future__ import annotations

from collabdnn.planning.link import Link
from collabdnn.planning.planner import Constraints
from collabdnn.planning.profiles import Boundary, PlanInput, UnitCost
from collabdnn.planning.scheduling import PlanKeeper, relative_change

NAMES = [
    "preprocess",
    "conv1",
    "pool1",
    "conv2",
    "pool2",
    "conv3",
    "conv4",
    "conv5",
    "pool3",
    "fc1",
    "fc2",
    "fc3",
]
BYTES = [
    110_000,
    380_000,
    117_000,
    270_000,
    77_000,
    126_000,
    82_000,
    86_000,
    21_000,
    9_000,
    9_000,
    3_800,
    3_800,
]
CLOUD_MS = [2.0, 3.0, 0.3, 5.0, 0.2, 2.0, 2.5, 1.8, 0.1, 3.0, 1.2, 0.3]


def alexnet_like() -> PlanInput:
    units = tuple(UnitCost(n, "conv", 10 * c, c) for n, c in zip(NAMES, CLOUD_MS, strict=True))
    boundaries = tuple(Boundary(b, 0.3, 0.2, 0.1, 0.1) for b in BYTES)
    return PlanInput(units, boundaries)


FAST = Link(100.0, 100.0, 5.0)
SLOW = Link(0.5, 1.0, 100.0, "3g")


def test_fast_link_offloads_and_slow_link_stays_on_the_phone():
    keeper = PlanKeeper(alexnet_like(), FAST)
    assert "C" in keeper.history[-1].new_spec
    switch = keeper.update_link(SLOW)
    assert switch is not None and switch.changed
    assert switch.new_spec == "M" * 12
    assert keeper.current.placement == ("mobile",) * 12


def test_small_link_changes_do_not_replan():
    keeper = PlanKeeper(alexnet_like(), FAST, replan_threshold=0.2)
    assert keeper.update_link(Link(90.0, 95.0, 5.5)) is None
    assert len(keeper.history) == 1
    # Drift accumulates against the link the plan was made for, not the last report.
    assert keeper.update_link(Link(70.0, 95.0, 5.5)) is not None
    assert relative_change(FAST, Link(70.0, 95.0, 5.5)) == 0.3


def test_battery_crossing_switches_to_energy():
    keeper = PlanKeeper(alexnet_like(), FAST, constraints=Constraints(battery_threshold=0.2))
    assert keeper.current.objective_used == "latency"
    assert keeper.update_battery(0.5) is None
    switch = keeper.update_battery(0.1)
    assert switch is not None and switch.plan.objective_used == "energy"


def test_cloud_load_moves_work_to_the_phone():
    keeper = PlanKeeper(alexnet_like(), Link(20.0, 40.0, 20.0))
    before = keeper.current.placement.count("mobile")
    keeper.update_cloud_load(50.0)
    assert keeper.current.placement.count("mobile") >= before
    assert keeper.current.placement.count("mobile") > 1 or before == 12
