"""The planner against brute force, on realistic instances, and through the CLI.

Pure Python (numpy for the vectorised brute force); no torch.
"""

from __future__ import annotations

import io
import json
import math
import random
from contextlib import redirect_stdout
from dataclasses import replace
from itertools import product
from pathlib import Path

import numpy as np
import pytest

from collabdnn.placement import Placement, Side, spec_of
from collabdnn.planning.energy import RADIO_MODELS, PowerModel, RadioModel, power_model
from collabdnn.planning.link import LINK_PRESETS, Link, link_from_args
from collabdnn.planning.planner import (
    DEADLINE_RTOL,
    Constraints,
    evaluate,
    plan,
)
from collabdnn.planning.profiles import (
    SCHEMA,
    Boundary,
    Codec,
    LatencyStats,
    PlanInput,
    Profile,
    ProfileError,
    UnitCost,
    UnitProfile,
    load_profile,
    plan_input_from_profiles,
    save_profile,
)

REL = 1e-9


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=REL, abs_tol=1e-12)


# ------------------------------------------------------------------ random instances


def random_instance(rng: random.Random, n: int) -> tuple[PlanInput, Link, PowerModel, float]:
    """Costs spread over orders of magnitude so that every pattern occurs."""

    def ms(scale: float) -> float:
        return 0.0 if rng.random() < 0.05 else rng.uniform(0, scale)

    units = tuple(
        UnitCost(f"u{i}", "conv", ms(rng.choice([1, 10, 100])), ms(rng.choice([1, 10, 50])))
        for i in range(n)
    )
    boundaries = tuple(
        Boundary(
            bytes=int(10 ** rng.uniform(1, 6.5)),
            mobile_encode_ms=ms(3),
            mobile_decode_ms=ms(3),
            cloud_encode_ms=ms(1),
            cloud_decode_ms=ms(1),
        )
        for _ in range(n + 1)
    )
    link = Link(
        up_mbps=10 ** rng.uniform(-1, 2.5),
        down_mbps=10 ** rng.uniform(-1, 2.5),
        rtt_ms=rng.uniform(0, 200),
        network=rng.choice(["3g", "4g", "wifi"]),
    )
    power = PowerModel(
        busy_mw=rng.uniform(500, 4000),
        wait_mw=rng.uniform(0, 800),
        radio=RadioModel(rng.uniform(0, 1000), rng.uniform(0, 300), rng.uniform(0, 1500)),
    )
    return PlanInput(units, boundaries), link, power, rng.uniform(1.0, 5.0)


def brute_force(
    inp: PlanInput, link: Link, power: PowerModel, k: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Latency and energy of all 2^N placements, vectorised with the cost formulas
    written out again here (independently of the planner's code).

    Returns (bits, latency, energy); bit 1 = cloud, rows in itertools.product order.
    """
    n = len(inp.units)
    bits = np.array(list(product((0, 1), repeat=n)), dtype=bool)
    t_m = np.array([u.mobile_ms for u in inp.units])
    t_c = np.array([u.cloud_ms for u in inp.units]) * k
    s = np.array([b.bytes for b in inp.boundaries], dtype=float)
    air_up = s * 8 / (link.up_mbps * 1000)
    air_dn = s * 8 / (link.down_mbps * 1000)
    h = link.rtt_ms / 2
    e_m = np.array([b.mobile_encode_ms for b in inp.boundaries])
    d_m = np.array([b.mobile_decode_ms for b in inp.boundaries])
    e_c = np.array([b.cloud_encode_ms for b in inp.boundaries])
    d_c = np.array([b.cloud_decode_ms for b in inp.boundaries])
    p_up = power.radio.alpha_up_mw_per_mbps * link.up_mbps + power.radio.beta_mw
    p_dn = power.radio.alpha_down_mw_per_mbps * link.down_mbps + power.radio.beta_mw
    busy, wait = power.busy_mw, power.wait_mw
    up_ms = e_m + air_up + h + d_c
    dn_ms = e_c + h + air_dn + d_m
    up_mj = (busy * e_m + p_up * air_up + wait * (h + d_c)) / 1000
    dn_mj = (wait * (e_c + h) + p_dn * air_dn + busy * d_m) / 1000
    # before[:, i]: platform holding boundary i (i = 0..N); the data starts and ends on M.
    before = np.concatenate([np.zeros((len(bits), 1), bool), bits], axis=1)
    after = np.concatenate([bits, np.zeros((len(bits), 1), bool)], axis=1)
    ups = ~before & after
    downs = before & ~after
    lat = np.where(bits, t_c, t_m).sum(1) + (ups * up_ms).sum(1) + (downs * dn_ms).sum(1)
    mj = (np.where(bits, wait * t_c, busy * t_m) / 1000).sum(1)
    mj = mj + (ups * up_mj).sum(1) + (downs * dn_mj).sum(1)
    return bits, lat, mj


def to_placement(row: np.ndarray) -> tuple[Side, ...]:
    return tuple(Side.CLOUD if b else Side.MOBILE for b in row)


def test_brute_force_matches_evaluate() -> None:
    """The vectorised brute force and evaluate() agree placement by placement."""
    rng = random.Random(7)
    for n in (1, 2, 5, 8):
        inp, link, power, k = random_instance(rng, n)
        bits, lat, mj = brute_force(inp, link, power, k)
        for row, lat_i, mj_i in zip(bits, lat, mj, strict=True):
            cost = evaluate(inp, link, power, to_placement(row), k)
            assert close(cost.latency_ms, lat_i) and close(cost.mobile_energy_mj, mj_i)


def test_planner_equals_brute_force_for_every_objective() -> None:
    """240 random instances, N = 1..14, all four objectives, infeasible deadlines too."""
    rng = random.Random(2024)
    for case in range(240):
        n = 1 + case % 14
        inp, link, power, k = random_instance(rng, n)
        _, lat, mj = brute_force(inp, link, power, k)
        # row 0 is all-mobile: the weighted objective's scale (1 when degenerate, as in
        # the planner)
        l0, e0 = (lat[0] if lat[0] > 0 else 1.0), (mj[0] if mj[0] > 0 else 1.0)
        w = rng.random()
        # Deadlines between the fastest plan and the least-energy plan's latency are the
        # hard ones (the label search runs); the others check the easy exits.
        lean_lat = lat[mj.argmin()]
        deadlines = [
            lat.min() * rng.uniform(0.5, 0.999),  # infeasible
            rng.uniform(lat.min(), lean_lat),
            rng.uniform(lat.min(), lean_lat),
            lat.min() + (lean_lat - lat.min()) * 1e-3,
            rng.uniform(lat.min(), lat.max()),
            lat.max() * 1.01,
        ]
        expected = {
            "latency": lat.min(),
            "energy": mj.min(),
            "weighted": (w * lat / l0 + (1 - w) * mj / e0).min(),
        }
        for objective, best in expected.items():
            c = Constraints(cloud_load=k, weight=w)
            result = plan(inp, link, power, objective, c)
            assert close(result.objective_value, best), (case, objective)
            check_consistent(result, inp, link, power, k)
        for d in deadlines:
            c = Constraints(cloud_load=k, deadline_ms=d)
            result = plan(inp, link, power, "deadline", c)
            ok = lat <= d * (1 + DEADLINE_RTOL)
            if not ok.any():
                assert not result.feasible and result.objective_value is None
                assert close(result.latency_ms, lat.min())
                assert "no placement meets" in result.reason
            else:
                assert result.feasible, (case, d)
                assert close(result.mobile_energy_mj, mj[ok].min()), (case, d)
                assert result.latency_ms <= d * (1 + REL)
            check_consistent(result, inp, link, power, k)


def check_consistent(result, inp, link, power, k) -> None:
    """The plan's figures are evaluate()'s for its placement; baselines match their
    brute-force definitions."""
    cost = evaluate(inp, link, power, result.placement, k)
    assert cost == result.cost
    n = len(inp.units)
    mobile = evaluate(inp, link, power, (Side.MOBILE,) * n, k)
    cloud = evaluate(inp, link, power, (Side.CLOUD,) * n, k)
    assert result.baselines["mobile_only"].cost == mobile
    assert result.baselines["cloud_only"].cost == cloud
    cuts = [
        evaluate(inp, link, power, (Side.MOBILE,) * c + (Side.CLOUD,) * (n - c), k)
        for c in range(n + 1)
    ]
    best = result.baselines["best_single_cut"]
    assert best.placement == (Side.MOBILE,) * best.cut + (Side.CLOUD,) * (n - best.cut)
    c = result.constraints
    used = result.objective_used
    if used == "latency":
        assert close(best.cost.latency_ms, min(x.latency_ms for x in cuts))
    elif used == "energy":
        assert close(best.cost.mobile_energy_mj, min(x.mobile_energy_mj for x in cuts))
    elif used == "weighted":

        def score(x):
            l0 = mobile.latency_ms if mobile.latency_ms > 0 else 1.0
            e0 = mobile.mobile_energy_mj if mobile.mobile_energy_mj > 0 else 1.0
            return c.weight * x.latency_ms / l0 + (1 - c.weight) * x.mobile_energy_mj / e0

        assert close(score(best.cost), min(score(x) for x in cuts))
    else:
        ok = [x for x in cuts if x.latency_ms <= c.deadline_ms * (1 + DEADLINE_RTOL)]
        if ok:
            assert close(best.cost.mobile_energy_mj, min(x.mobile_energy_mj for x in ok))
        else:
            assert close(best.cost.latency_ms, min(x.latency_ms for x in cuts))
    # The optimum is never worse than any baseline for the objective it optimised.
    if used == "latency":
        assert result.latency_ms <= min(x.latency_ms for x in cuts) * (1 + REL)
    if used == "energy":
        assert result.mobile_energy_mj <= min(x.mobile_energy_mj for x in cuts) * (1 + REL)


# ------------------------------------------------------------------ the cost model


def test_evaluate_by_hand() -> None:
    """One M->C->M placement priced by hand, term by term."""
    inp = PlanInput(
        units=(UnitCost("a", "conv", 10.0, 2.0), UnitCost("b", "fc", 4.0, 1.0)),
        boundaries=(Boundary(1000), Boundary(2500, 1.0, 0.5, 0.2, 0.3), Boundary(100)),
    )
    link = Link(up_mbps=2.0, down_mbps=4.0, rtt_ms=20.0)
    power = PowerModel(1000.0, 100.0, RadioModel(10.0, 5.0, 200.0))
    cost = evaluate(inp, link, power, (Side.CLOUD, Side.MOBILE), cloud_load=2.0)
    # input up: 1000 B = 8000 bit at 2 Mbit/s = 4 ms air, +10 ms half RTT
    up_ms = 4.0 + 10.0
    up_mj = (220.0 * 4.0 + 100.0 * 10.0) / 1000
    # unit a on cloud at K=2: 4 ms, phone waits
    a_ms, a_mj = 4.0, 100.0 * 4.0 / 1000
    # boundary 1 down: e_C 0.2 + 10 + 2500 B*8/4000 = 5 ms air + d_M 0.5
    dn_ms = 0.2 + 10.0 + 5.0 + 0.5
    dn_mj = (100.0 * 10.2 + 220.0 * 5.0 + 1000.0 * 0.5) / 1000
    b_ms, b_mj = 4.0, 4.0
    assert close(cost.latency_ms, up_ms + a_ms + dn_ms + b_ms)
    assert close(cost.mobile_energy_mj, up_mj + a_mj + dn_mj + b_mj)
    assert [(t.boundary, t.after_unit, t.direction, t.bytes) for t in cost.transfers] == [
        (0, "input", "up", 1000),
        (1, "a", "down", 2500),
    ]
    assert [u.platform for u in cost.units] == [Side.CLOUD, Side.MOBILE]


# ------------------------------------------------------------- AlexNet-like instance

ALEX_NAMES = [
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
# float32 bytes of each unit's output (torchvision AlexNet shapes)
ALEX_RAW = [
    3 * 224 * 224 * 4,
    64 * 55 * 55 * 4,
    64 * 27 * 27 * 4,
    192 * 27 * 27 * 4,
    192 * 13 * 13 * 4,
    384 * 13 * 13 * 4,
    256 * 13 * 13 * 4,
    256 * 13 * 13 * 4,
    9216 * 4,
    4096 * 4,
    4096 * 4,
    1000 * 4,
]
# Server CPU latency per unit, ms.
ALEX_CLOUD = [2.0, 1.5, 0.2, 2.0, 0.1, 1.0, 1.2, 0.8, 0.05, 3.0, 1.3, 0.3]


def alexnet_like(
    mobile_factor: float = 10.0, fc_factor: float | None = None, input_bytes: int = 300_000
) -> PlanInput:
    """A 12-unit AlexNet: the phone ``mobile_factor`` times slower than the cloud
    (``fc_factor`` for the fully connected layers if given); activations compress to
    about half; encoding costs ~2 ms/MB on the phone, decoding ~1 ms/MB.  The photo is a
    300 kB JPEG."""
    units = tuple(
        UnitCost(
            name,
            name.rstrip("0123456789"),
            c * (fc_factor if fc_factor and name.startswith("fc") else mobile_factor),
            c,
        )
        for name, c in zip(ALEX_NAMES, ALEX_CLOUD, strict=True)
    )
    boundaries = [Boundary(input_bytes)]
    for raw in ALEX_RAW:
        mb = raw / 2 / 1e6
        boundaries.append(Boundary(raw // 2, 2.0 * mb, 1.0 * mb, 0.5 * mb, 0.3 * mb))
    return PlanInput(units, tuple(boundaries))


def test_alexnet_link_speed_moves_the_cut() -> None:
    """Slow link: everything on the phone.  Fast link: (nearly) everything in the cloud.
    A Wi-Fi link in between: preprocess and the first layers on the phone, then the
    cloud (preprocessed and pooled activations are smaller than the photo's upload
    cost is worth), and the planner matches Neurosurgeon's best cut there."""
    inp = alexnet_like()
    power = power_model("wifi")
    slow = plan(inp, Link(0.5, 1.0, 150.0, "3g"), power, "latency")
    assert slow.placement == (Side.MOBILE,) * 12
    fast = plan(inp, Link(200.0, 400.0, 2.0), power, "latency")
    assert fast.placement.count(Side.CLOUD) >= 11
    assert fast.latency_ms < 0.5 * slow.latency_ms
    mid = plan(inp, LINK_PRESETS["wifi"], power, "latency")
    spec = mid.spec
    assert spec[0] == "M" and spec[-1] == "C" and "CM" not in spec, spec  # one M->C cut
    assert mid.latency_ms < mid.baselines["mobile_only"].cost.latency_ms
    assert mid.latency_ms < mid.baselines["cloud_only"].cost.latency_ms
    assert close(mid.latency_ms, mid.baselines["best_single_cut"].cost.latency_ms)


def test_alexnet_mobile_cloud_mobile_wins_latency() -> None:
    """A realistic setting where mobile->cloud->mobile beats every single cut.

    At batch size 1 the fully connected layers are memory-bandwidth bound (each weight
    is read once), so a phone is only ~2.5x slower than a server there, while on the
    compute-bound convolutions it is ~10x slower.  The cloud is busy (it reports a 4x
    slowdown, K = 4) and the link is good Wi-Fi (50/100 Mbit/s, 10 ms RTT).  Then the
    phone preprocesses (the photo is bigger than the preprocessed tensor is worth
    uploading... almost), the cloud runs the convolutions (still 2.5x faster than the
    phone under load), and the pooled 18 kB activation comes back for the phone to run
    the FC layers, which it does faster than the loaded cloud, and which would cost a
    downlink trip anyway.
    """
    inp = alexnet_like(fc_factor=2.5)
    link = Link(50.0, 100.0, 10.0)
    result = plan(inp, link, power_model("wifi"), "latency", Constraints(cloud_load=4.0))
    spec = result.spec
    assert "MC" in spec and "CM" in spec and spec.index("MC") < spec.index("CM"), spec
    assert spec.endswith("MMM")  # the FC layers come home
    best_cut = result.baselines["best_single_cut"].cost.latency_ms
    assert result.latency_ms < best_cut * 0.99


def test_cloud_load_shifts_work_to_the_phone() -> None:
    inp = alexnet_like()
    link = LINK_PRESETS["wifi"]
    power = power_model("wifi")
    counts = []
    for k in (1.0, 2.0, 4.0, 8.0, 50.0):
        result = plan(inp, link, power, "latency", Constraints(cloud_load=k))
        counts.append(result.placement.count(Side.MOBILE))
    assert counts == sorted(counts)
    assert counts[0] < 12 and counts[-1] == 12


# --------------------------------------------------------------- objectives & battery


def test_weighted_extremes_equal_latency_and_energy() -> None:
    rng = random.Random(11)
    for _ in range(30):
        inp, link, power, k = random_instance(rng, rng.randint(1, 10))
        lat = plan(inp, link, power, "latency", Constraints(cloud_load=k))
        w1 = plan(inp, link, power, "weighted", Constraints(cloud_load=k, weight=1.0))
        assert close(w1.latency_ms, lat.latency_ms)
        en = plan(inp, link, power, "energy", Constraints(cloud_load=k))
        w0 = plan(inp, link, power, "weighted", Constraints(cloud_load=k, weight=0.0))
        assert close(w0.mobile_energy_mj, en.mobile_energy_mj)


def test_low_battery_switches_to_energy() -> None:
    inp = alexnet_like()
    link, power = LINK_PRESETS["4g"], power_model("4g")
    full = plan(inp, link, power, "latency", Constraints(battery_fraction=0.9))
    assert full.objective_used == "latency" and full.reason == ""
    low = plan(inp, link, power, "latency", Constraints(battery_fraction=0.1))
    assert low.objective == "latency" and low.objective_used == "energy"
    assert "battery" in low.reason and "switched" in low.reason
    energy = plan(inp, link, power, "energy")
    assert close(low.mobile_energy_mj, energy.mobile_energy_mj)
    with_deadline = plan(
        inp, link, power, "weighted", Constraints(battery_fraction=0.1, deadline_ms=200.0)
    )
    assert with_deadline.objective_used == "deadline"
    assert with_deadline.to_dict()["objective_used"] == "deadline"
    kept = plan(inp, link, power, "deadline", Constraints(battery_fraction=0.1, deadline_ms=200))
    assert kept.objective_used == "deadline"
    # exactly at the threshold: no switch
    edge = plan(inp, link, power, "latency", Constraints(battery_fraction=0.2))
    assert edge.objective_used == "latency"


def test_deadline_trades_latency_for_energy() -> None:
    """Looser deadlines never cost more energy; an impossible one says so."""
    inp = alexnet_like()
    link, power = LINK_PRESETS["wifi"], power_model("wifi")
    fastest = plan(inp, link, power, "latency").latency_ms
    energies = []
    for d in (fastest, fastest * 1.2, fastest * 2, fastest * 10):
        result = plan(inp, link, power, "deadline", Constraints(deadline_ms=d))
        assert result.feasible and result.latency_ms <= d * (1 + REL)
        energies.append(result.mobile_energy_mj)
    assert energies == sorted(energies, reverse=True)
    impossible = plan(inp, link, power, "deadline", Constraints(deadline_ms=fastest / 2))
    assert not impossible.feasible
    assert close(impossible.latency_ms, fastest)
    out = impossible.to_dict()
    assert out["feasible"] is False and out["objective_value"] is None
    assert "no placement meets the deadline" in out["reason"]


# ------------------------------------------------------------------- invalid inputs


def test_invalid_inputs_raise_value_error() -> None:
    inp = alexnet_like()
    link, power = LINK_PRESETS["wifi"], power_model("wifi")
    with pytest.raises(ValueError, match="up_mbps"):
        Link(-1.0, 10.0, 10.0)
    with pytest.raises(ValueError, match="down_mbps"):
        Link(1.0, 0.0, 10.0)
    with pytest.raises(ValueError, match="rtt_ms"):
        Link(1.0, 1.0, -5.0)
    with pytest.raises(ValueError, match="unknown objective"):
        plan(inp, link, power, "speed")
    with pytest.raises(ValueError, match="needs a deadline"):
        plan(inp, link, power, "deadline")
    with pytest.raises(ValueError, match="weight"):
        Constraints(weight=1.5)
    with pytest.raises(ValueError, match="cloud_load"):
        Constraints(cloud_load=0)
    with pytest.raises(ValueError, match="battery_fraction"):
        Constraints(battery_fraction=-0.1)
    with pytest.raises(ValueError, match="deadline_ms"):
        Constraints(deadline_ms=float("nan"))
    with pytest.raises(ValueError, match="busy_mw"):
        PowerModel(-1.0, 1.0, RADIO_MODELS["wifi"])
    with pytest.raises(ValueError, match="unknown network"):
        power_model("5g")
    with pytest.raises(ValueError, match="unknown network"):
        link_from_args("satellite")
    with pytest.raises(ValueError, match="boundaries"):
        PlanInput(inp.units, inp.boundaries[:-1])
    with pytest.raises(ValueError, match="mobile_ms"):
        UnitCost("x", "conv", -1.0, 1.0)
    with pytest.raises(ValueError, match="entries"):
        evaluate(inp, link, power, (Side.MOBILE,) * 11)
    with pytest.raises(ValueError, match="'mobile' or 'cloud'"):
        evaluate(inp, link, power, ("phone",) * 12)


def test_placement_specs() -> None:
    placement = (Side.MOBILE, Side.MOBILE, Side.CLOUD, Side.MOBILE)
    assert spec_of(placement) == "MMCM"
    assert Placement.parse("MMCM").per_unit == placement
    assert Placement.parse("mmcm").resolve(4) == placement
    assert Placement.parse("cloud").resolve(3) == (Side.CLOUD,) * 3
    assert Placement.parse("mobile").resolve(2) == (Side.MOBILE,) * 2
    for bad, n in (("MXC", 3), ("", 0), ("MC", 3)):
        with pytest.raises(ValueError):
            Placement.parse(bad).resolve(n)
    with pytest.raises(ValueError):
        spec_of(("mobile", "edge"))  # type: ignore[arg-type]


def test_link_and_power_overrides() -> None:
    link = link_from_args("4g", up=None, down=20.0, rtt=None)
    assert link == Link(5.85, 20.0, 70.0, "4g")
    assert LINK_PRESETS["3g"].up_mbps == 1.1 and LINK_PRESETS["wifi"].up_mbps == 18.88
    p = power_model("4g", busy_mw=2000, alpha_up=400.0, beta=1000.0)
    assert p.busy_mw == 2000 and p.radio.alpha_up_mw_per_mbps == 400.0
    assert p.radio.alpha_down_mw_per_mbps == 51.97 and p.radio.beta_mw == 1000.0
    assert p.radio.upload_mw(2.0) == 1800.0


# --------------------------------------------------------------------------- profiles


def make_profile(side: str, factor: float, model: str = "tiny") -> Profile:
    names = ["preprocess", "conv1", "pool1", "fc1"]
    sizes = [602112, 774400, 186624, 4000]
    units = tuple(
        UnitProfile(
            index=i,
            name=name,
            kind=name.rstrip("0123456789"),
            flops=1000 * i,
            params=10 * i,
            latency_ms=LatencyStats(
                median=factor * (i + 1),
                p10=factor * (i + 1) * 0.9,
                p90=factor * (i + 1) * 1.2,
                repeats=20,
            ),
            output_bytes=size,
            encoded_bytes=size // 2,
            encode_ms=0.1 * factor,
            decode_ms=0.05 * factor,
        )
        for i, (name, size) in enumerate(zip(names, sizes, strict=True))
    )
    return Profile(
        side=side,
        model=model,
        units=units,
        input_bytes=100_000,
        weights_hash="abc",
        created="2025-01-01T00:00:00+00:00",
        host={"cpu": "test"},
        codec=Codec(level=1, shuffle=False),
    )


def test_profile_round_trip(tmp_path: Path) -> None:
    profile = make_profile("mobile", 5.0)
    path = tmp_path / "mobile.json"
    save_profile(profile, path)
    assert load_profile(path) == profile
    data = json.loads(path.read_text())
    assert data["schema"] == SCHEMA and data["units"][1]["latency_ms"]["repeats"] == 20


def test_plan_input_from_profiles() -> None:
    mobile, cloud = make_profile("mobile", 5.0), make_profile("cloud", 1.0)
    inp = plan_input_from_profiles(mobile, cloud)
    assert inp.names == ("preprocess", "conv1", "pool1", "fc1")
    assert inp.units[1].mobile_ms == 10.0 and inp.units[1].cloud_ms == 2.0
    assert len(inp.boundaries) == 5
    assert inp.boundaries[0] == Boundary(100_000, codec="photo")
    assert inp.boundaries[2].bytes == 774400 // 2
    assert close(inp.boundaries[2].mobile_encode_ms, 0.5)
    assert close(inp.boundaries[2].cloud_decode_ms, 0.05)
    with pytest.raises(ProfileError, match="different models"):
        plan_input_from_profiles(mobile, make_profile("cloud", 1.0, model="other"))
    with pytest.raises(ProfileError, match="side"):
        plan_input_from_profiles(cloud, mobile)
    shorter = replace(cloud, units=cloud.units[:3])
    with pytest.raises(ProfileError, match="different units"):
        plan_input_from_profiles(mobile, shorter)
    with pytest.raises(ProfileError, match="codecs"):
        plan_input_from_profiles(mobile, replace(cloud, codec=Codec(level=3)))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(schema="collabdnn.profile/99"), "schema"),
        (lambda d: d.update(side="edge"), "side"),
        (lambda d: d.pop("units"), "missing 'units'"),
        (lambda d: d.update(units=[]), "at least one unit"),
        (lambda d: d["units"][1].update(index=5), "index"),
        (lambda d: d["units"][0].update(encoded_bytes=-1), "encoded_bytes"),
        (lambda d: d["units"][0]["latency_ms"].update(median="fast"), "median"),
        (lambda d: d["units"][0]["latency_ms"].update(p10=100.0), "p10 <= median"),
        (lambda d: d["units"][0].pop("name"), "missing 'name'"),
        (lambda d: d.update(input_bytes=1.5), "input_bytes"),
    ],
)
def test_bad_profiles_raise_profile_error(tmp_path: Path, mutate, message: str) -> None:
    data = make_profile("mobile", 5.0).to_dict()
    mutate(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ProfileError, match=message):
        load_profile(path)


def test_unreadable_profiles(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="cannot read"):
        load_profile(tmp_path / "missing.json")
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(ProfileError, match="not valid JSON"):
        load_profile(path)


# -------------------------------------------------------------------------------- CLI


def run_cli(argv: list[str]) -> tuple[int, str]:
    from collabdnn.cli import main

    buffer = io.StringIO()
    with redirect_stdout(buffer):
        rc = main(argv)
    return rc, buffer.getvalue()


def write_profiles(tmp_path: Path) -> tuple[str, str]:
    mobile, cloud = tmp_path / "m.json", tmp_path / "c.json"
    save_profile(make_profile("mobile", 5.0), mobile)
    save_profile(make_profile("cloud", 1.0), cloud)
    return str(mobile), str(cloud)


def test_plan_cli_json(tmp_path: Path) -> None:
    mobile, cloud = write_profiles(tmp_path)
    rc, out = run_cli(
        [
            "plan",
            "--model",
            "tiny",
            "--mobile-profile",
            mobile,
            "--cloud-profile",
            cloud,
            "--network",
            "4g",
            "--up-mbps",
            "3",
            "--objective",
            "weighted",
            "--weight",
            "0.7",
            "--battery",
            "0.9",
            "--json",
        ]
    )
    assert rc == 0
    data = json.loads(out)
    for key in ("objective", "units", "placement", "predicted", "baselines"):
        assert key in data
    assert data["objective"] == "weighted"
    assert data["units"] == ["preprocess", "conv1", "pool1", "fc1"]
    assert all(p in ("mobile", "cloud") for p in data["placement"])
    assert set(data["predicted"]) >= {"latency_ms", "mobile_energy_mj"}
    for name in ("mobile_only", "cloud_only", "best_single_cut"):
        assert set(data["baselines"][name]["predicted"]) >= {"latency_ms", "mobile_energy_mj"}
    assert data["link"]["up_mbps"] == 3.0 and data["link"]["down_mbps"] == 13.0


def test_plan_cli_table_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mobile, cloud = write_profiles(tmp_path)
    rc, out = run_cli(
        [
            "plan",
            "--model",
            "tiny",
            "--mobile-profile",
            mobile,
            "--cloud-profile",
            cloud,
            "--objective",
            "deadline",
            "--deadline-ms",
            "1000",
            "--battery",
            "0.05",
        ]
    )
    assert rc == 0
    assert "best_single_cut" in out and "conv1" in out and "battery" in out
    rc, _ = run_cli(
        ["plan", "--model", "alexnet", "--mobile-profile", mobile, "--cloud-profile", cloud]
    )
    assert rc == 2
    assert "tiny" in capsys.readouterr().err
    rc, _ = run_cli(
        [
            "plan",
            "--model",
            "tiny",
            "--mobile-profile",
            mobile,
            "--cloud-profile",
            cloud,
            "--objective",
            "deadline",
        ]
    )
    assert rc == 2
    assert "deadline" in capsys.readouterr().err
