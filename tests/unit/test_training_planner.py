"""The training planner: exact against brute force, and the patterns it must find.

A training step costs the forward pass plus the backward pass on the same placement;
brute force prices every placement with :func:`evaluate_training` (a walk over the
chain) and with the inference pricer applied twice, and the search must find the
optimum of each objective.
"""

from __future__ import annotations

import math
import random
from itertools import product

import pytest

from collabdnn.placement import Side
from collabdnn.planning.energy import power_model
from collabdnn.planning.link import LINK_PRESETS
from collabdnn.planning.planner import Constraints, evaluate, objective_value
from collabdnn.planning.profiles import Boundary, PlanInput, UnitCost
from collabdnn.planning.training import TrainingInput, evaluate_training, plan_training
from collabdnn.planning.training_profiles import (
    TrainingProfile,
    TrainingUnitProfile,
    training_input_from_profiles,
)
from tests.unit.test_planner import random_instance

M, C = Side.MOBILE, Side.CLOUD


def _training_instance(rng: random.Random, n: int):
    forward, link, power, load = random_instance(rng, n)
    backward = tuple(
        UnitCost(u.name, u.kind, rng.uniform(0, 3) * u.mobile_ms, rng.uniform(0, 3) * u.cloud_ms)
        for u in forward.units
    )
    first = rng.randrange(1, n + 1)  # no gradient crosses before the first parameter
    gradients = tuple(
        None if b < first else replace_bytes(forward.boundaries[b], rng) for b in range(n + 1)
    )
    return TrainingInput(forward, backward, gradients, rng.randint(1, 8)), link, power, load


def replace_bytes(boundary: Boundary, rng: random.Random) -> Boundary:
    from dataclasses import replace

    return replace(boundary, bytes=int(boundary.bytes * rng.uniform(0.2, 3)))


def _gradient_pass(inp: TrainingInput) -> PlanInput:
    """The backward pass as an inference problem run backwards: the same crossings in
    the other direction. Used to price a placement independently of the planner."""
    zero = Boundary(0)
    return PlanInput(inp.backward, tuple(g or zero for g in inp.gradients))


def _independent_price(inp, link, power, sides, load) -> tuple[float, float]:
    """Forward as inference prices it, plus every gradient crossing priced by hand."""
    fwd = evaluate(inp.forward, link, power, sides, load)
    bwd_compute = evaluate(_gradient_pass(inp), link, power, (M,) * len(sides), 1.0)
    ms = fwd.latency_ms
    mj = fwd.mobile_energy_mj
    for i, side in enumerate(sides):
        cost = inp.backward[i].mobile_ms if side == M else load * inp.backward[i].cloud_ms
        ms += cost
        mj += (power.busy_mw if side == M else power.wait_mw) * cost / 1000
    assert bwd_compute.transfers == ()
    where = (M, *sides, M)
    for b in range(len(sides) + 1):
        if where[b] != where[b + 1] and inp.gradients[b] is not None:
            g = inp.gradients[b]
            up = where[b + 1] == M  # the gradient goes back the other way
            bits = 8 * g.bytes
            half = link.rtt_ms / 2
            if up:
                air = bits / (link.up_mbps * 1e3)
                ms += g.mobile_encode_ms + air + half + g.cloud_decode_ms
                mj += (
                    power.busy_mw * g.mobile_encode_ms
                    + power.radio.upload_mw(link.up_mbps) * air
                    + power.wait_mw * (half + g.cloud_decode_ms)
                ) / 1000
            else:
                air = bits / (link.down_mbps * 1e3)
                ms += g.cloud_encode_ms + half + air + g.mobile_decode_ms
                mj += (
                    power.wait_mw * (g.cloud_encode_ms + half)
                    + power.radio.download_mw(link.down_mbps) * air
                    + power.busy_mw * g.mobile_decode_ms
                ) / 1000
    return ms, mj


@pytest.mark.parametrize("seed", range(40))
def test_the_training_plan_is_optimal_for_every_objective(seed: int) -> None:
    rng = random.Random(seed)
    inp, link, power, load = _training_instance(rng, rng.randint(1, 9))
    n = len(inp.backward)
    prices = {}
    for sides in product((M, C), repeat=n):
        cost = evaluate_training(inp, link, power, sides, load)
        ms, mj = _independent_price(inp, link, power, sides, load)
        assert math.isclose(cost.latency_ms, ms, rel_tol=1e-9, abs_tol=1e-9)
        assert math.isclose(cost.mobile_energy_mj, mj, rel_tol=1e-9, abs_tol=1e-9)
        prices[sides] = cost
    mobile_only = prices[(M,) * n]
    deadline = rng.uniform(0.5, 1.5) * min(c.latency_ms for c in prices.values())
    for objective, constraints in [
        ("latency", Constraints(cloud_load=load)),
        ("energy", Constraints(cloud_load=load)),
        ("weighted", Constraints(cloud_load=load, weight=rng.random())),
        ("deadline", Constraints(cloud_load=load, deadline_ms=deadline)),
    ]:
        plan = plan_training(inp, link, power, objective, constraints)
        scores = [objective_value(objective, c, constraints, mobile_only) for c in prices.values()]
        best = min(scores)
        if math.isinf(best):  # no placement meets the deadline
            assert not plan.feasible
            continue
        mine = objective_value(objective, plan.cost, constraints, mobile_only)
        assert math.isclose(mine, best, rel_tol=1e-9, abs_tol=1e-9), (objective, plan.spec)
        assert plan.feasible


def _alexnet_like(fc_backward_mobile_ms: float) -> TrainingInput:
    """AlexNet-shaped costs: big early activations, small late ones, the phone 10x
    slower except on the fully connected layers when ``fc_backward_mobile_ms`` is small."""
    names = ["pre", "conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool3"]
    names += ["fc1", "fc2", "fc3"]
    fwd_cloud = [0, 4, 1, 6, 1, 5, 5, 4, 1, 2, 1, 0.2]
    sizes = [3_000_000, 1_500_000, 150_000, 400_000, 100_000, 170_000, 170_000, 110_000, 30_000]
    sizes += [12_000, 12_000, 3_000, 3_000]
    fwd = tuple(
        UnitCost(n, "x", 10 * c if i < 9 else 0.5, c)
        for i, (n, c) in enumerate(zip(names, fwd_cloud, strict=True))
    )
    bwd = tuple(
        UnitCost(n, "x", 20 * c if i < 9 else fc_backward_mobile_ms, 2 * c)
        for i, (n, c) in enumerate(zip(names, fwd_cloud, strict=True))
    )
    forward = PlanInput(fwd, tuple(Boundary(s) for s in sizes))
    gradients = (None, None, *(Boundary(s) for s in sizes[2:]))
    return TrainingInput(forward, bwd, gradients, batch_size=1)


def test_mobile_cloud_mobile_wins_training_where_the_phone_keeps_the_classifier() -> None:
    inp = _alexnet_like(fc_backward_mobile_ms=1.0)
    loaded = Constraints(cloud_load=4.0)  # as in inference: the cloud is busy
    plan = plan_training(inp, LINK_PRESETS["wifi"], power_model("wifi"), "latency", loaded)
    assert plan.spec.startswith("M") and "C" in plan.spec and plan.spec.endswith("M")
    # a step on the slow link stays on the phone
    slow = plan_training(inp, LINK_PRESETS["3g"], power_model("3g"), "latency", loaded)
    assert slow.spec == "M" * 12
    # every transfer of the winning plan comes with its gradient, the other way
    kinds = [t.after_unit for t in plan.cost.transfers]
    assert sum("(gradient)" in k for k in kinds) == sum("(gradient)" not in k for k in kinds)


def test_training_profiles_make_the_planner_input() -> None:
    def unit(i: int, side_factor: float, grad: int) -> TrainingUnitProfile:
        return TrainingUnitProfile(
            i,
            f"u{i}",
            "conv",
            10,
            2.0 * side_factor,
            2.0 * side_factor,  # backward
            1.0 * side_factor,  # update
            400,
            100 + i,
            0.1,
            0.2,
            grad,
            0.3,
            0.4,
        )

    mobile = TrainingProfile(
        M, "m", 4, 999, tuple(unit(i, 5.0, 0 if i == 0 else 50) for i in range(3))
    )
    cloud = TrainingProfile(
        C, "m", 4, 999, tuple(unit(i, 1.0, 0 if i == 0 else 50) for i in range(3))
    )
    assert TrainingProfile.from_dict(mobile.to_dict()) == mobile
    inp = training_input_from_profiles(mobile, cloud)
    assert inp.batch_size == 4 and inp.forward.boundaries[0].bytes == 999
    assert [g is None for g in inp.gradients] == [True, True, False, False]
    assert inp.backward[1].mobile_ms == 15.0 and inp.backward[1].cloud_ms == 3.0
    plan = plan_training(inp, LINK_PRESETS["4g"], power_model("4g"))
    assert plan.to_dict()["placement_spec"] == plan.spec
