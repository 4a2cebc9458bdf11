"""The planner chooses the codec of every crossing (pure: no torch, no timings).

Each codec option of a boundary is a parallel edge of the planner's graph, so the
choice is exact: checked here against enumerating every placement with every codec of
every crossing, for all four objectives; and on AlexNet-shaped costs, raw frames win on
a fast link, zstd on a slow one, and the lossless crop beats the photo for the first
hop on a slow uplink.
"""

from __future__ import annotations

import math
import random
from itertools import product

import pytest

from collabdnn.crossing import PHOTO, TENSOR_CODECS, check_codec, parse_tensor_codec
from collabdnn.placement import Side
from collabdnn.planning.energy import PowerModel, RadioModel, power_model
from collabdnn.planning.link import Link
from collabdnn.planning.planner import Constraints, evaluate, objective_value, plan
from collabdnn.planning.profiles import Boundary, CodecOption, PlanInput, UnitCost

REL = 1e-9


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=REL, abs_tol=1e-12)


def random_instance(rng: random.Random, n: int) -> tuple[PlanInput, Link, PowerModel, float]:
    def ms(scale: float) -> float:
        return rng.uniform(0, scale)

    def option(name: str, saved: float = 0.0) -> CodecOption:
        return CodecOption(
            name, int(10 ** rng.uniform(1, 6)), ms(3), ms(3), ms(1), ms(1), cloud_saved_ms=saved
        )

    units = tuple(UnitCost(f"u{i}", "conv", ms(50), ms(10)) for i in range(n))
    boundaries = []
    for b in range(n + 1):
        names = rng.sample(["a", "b", "c", "d"], rng.randint(0, 3))
        saved = units[0].cloud_ms if b == 0 else 0.0
        alternatives = tuple(option(x, rng.uniform(0, saved)) for x in names)
        boundaries.append(
            Boundary(int(10 ** rng.uniform(1, 6)), ms(3), ms(3), ms(1), ms(1), "own", alternatives)
        )
    link = Link(10 ** rng.uniform(-1, 2.5), 10 ** rng.uniform(-1, 2.5), rng.uniform(0, 100))
    power = PowerModel(
        rng.uniform(500, 4000),
        rng.uniform(0, 800),
        RadioModel(rng.uniform(0, 1000), rng.uniform(0, 300), rng.uniform(0, 1500)),
    )
    return PlanInput(units, tuple(boundaries)), link, power, rng.uniform(1.0, 3.0)


def every_plan(inp: PlanInput, link: Link, power: PowerModel, k: float) -> list:
    """Every placement with every codec of each of its crossings, priced by evaluate()."""
    n = len(inp.units)
    out = []
    for sides in product((Side.MOBILE, Side.CLOUD), repeat=n):
        chain = (Side.MOBILE, *sides, Side.MOBILE)
        crossings = [b for b in range(n + 1) if chain[b] != chain[b + 1]]
        choices = [[o.name for o in inp.boundaries[b].options()] for b in crossings]
        for names in product(*choices):
            codecs = dict(zip(crossings, names, strict=True))
            out.append(evaluate(inp, link, power, sides, k, codecs))
    return out


def test_planner_chooses_codecs_exactly() -> None:
    """60 random instances, N = 1..6, up to four codecs per boundary: every objective's
    optimum equals the enumeration's, and the plan's figures are its codecs'."""
    rng = random.Random(18)
    for case in range(60):
        inp, link, power, k = random_instance(rng, 1 + case % 6)
        costs = every_plan(inp, link, power, k)
        lat = [c.latency_ms for c in costs]
        mj = [c.mobile_energy_mj for c in costs]
        mobile_only = evaluate(inp, link, power, (Side.MOBILE,) * len(inp.units), k)
        w = rng.random()
        for objective in ("latency", "energy", "weighted"):
            c = Constraints(cloud_load=k, weight=w)
            result = plan(inp, link, power, objective, c)
            best = min(objective_value(objective, cost, c, mobile_only) for cost in costs)
            assert close(result.objective_value, best), (case, objective)
            again = evaluate(inp, link, power, result.placement, k, result.codecs)
            assert close(again.latency_ms, result.latency_ms)
        lean = min(range(len(costs)), key=lambda i: (mj[i], lat[i]))
        for d in (rng.uniform(min(lat), lat[lean]), min(lat) * 0.9, max(lat)):
            c = Constraints(cloud_load=k, deadline_ms=d)
            result = plan(inp, link, power, "deadline", c)
            ok = [m for m, t in zip(mj, lat, strict=True) if t <= d * (1 + 1e-9)]
            if ok:
                assert result.feasible and close(result.mobile_energy_mj, min(ok)), (case, d)
            else:
                assert not result.feasible and close(result.latency_ms, min(lat))
            again = evaluate(inp, link, power, result.placement, k, result.codecs)
            assert close(again.mobile_energy_mj, result.mobile_energy_mj)


# AlexNet's units and raw output bytes (batch 1), and its activations' figures per codec
# on this kind of machine: (size fraction, encode ms/MB, decode ms/MB).
NAMES = ("preprocess", "conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5",
         "pool3", "fc1", "fc2", "fc3")  # fmt: skip
CLOUD_MS = (4.0, 3.0, 0.3, 5.0, 0.2, 3.0, 4.0, 3.0, 0.1, 6.0, 2.5, 0.6)
RAW = (602112, 774400, 186624, 746496, 173056, 259584, 259584, 173056, 36864, 16384, 16384,
       4000)  # fmt: skip
FIGURES = {"raw": (1.0, 0.05, 0.05), "zstd:1": (0.45, 2.0, 1.0), "zstd:3": (0.42, 4.0, 1.0)}
# The photo (300 kB) and its lossless crops: (bytes, phone encode ms, cloud decode ms);
# the phone's crop time is 8 ms, the cloud's 2 ms.
CROPS = {"crop:webp": (60_000, 8.0 + 3.0, 1.2), "crop:zstd": (120_000, 8.0 + 0.5, 0.3)}


def alexnet(slowdown: float = 5.0) -> PlanInput:
    units = tuple(UnitCost(n, "x", c * slowdown, c) for n, c in zip(NAMES, CLOUD_MS, strict=True))
    photo = tuple(CodecOption(n, b, e, 0.0, 0.0, d, 2.0) for n, (b, e, d) in CROPS.items())
    boundaries = [Boundary(300_000, codec=PHOTO, alternatives=photo)]
    for raw in RAW:
        mb = raw / 1e6

        def option(name: str, raw: int = raw, mb: float = mb) -> CodecOption:
            frac, enc, dec = FIGURES[name]
            e, d = enc * mb, dec * mb
            return CodecOption(name, int(raw * frac), slowdown * e, slowdown * d, e, d)

        own = option("zstd:1")
        boundaries.append(
            Boundary(
                own.bytes,
                own.mobile_encode_ms,
                own.mobile_decode_ms,
                own.cloud_encode_ms,
                own.cloud_decode_ms,
                "zstd:1",
                (option("raw"), option("zstd:3")),
            )
        )
    return PlanInput(units, tuple(boundaries))


def test_raw_frames_win_on_a_fast_link_zstd_on_a_slow_one() -> None:
    inp = alexnet()
    power = power_model("wifi")
    fast = plan(inp, Link(1000.0, 1000.0, 0.2), power)
    tensor_codecs = {b: c for b, c in fast.codecs.items() if b > 0}
    assert tensor_codecs and set(tensor_codecs.values()) == {"raw"}, fast.codecs
    slow = plan(inp, Link(8.0, 20.0, 30.0), power)
    assert slow.spec != "mobile" and Side.CLOUD in slow.placement
    assert all(c.startswith("zstd:") for b, c in slow.codecs.items() if b > 0), slow.codecs
    # Forcing zstd on the fast link costs time: the choice is worth it.
    forced = {b: "zstd:1" for b in tensor_codecs}
    zstd = evaluate(inp, fast.link, power, fast.placement, 1.0, {**fast.codecs, **forced})
    assert fast.latency_ms < zstd.latency_ms


def test_the_crop_wins_the_first_hop_on_a_slow_uplink() -> None:
    """Cloud-only on a 3G-like uplink: the 60 kB lossless WebP crop beats the 300 kB
    photo by far more than the phone's crop and encode time."""
    inp = alexnet(slowdown=20.0)
    power = power_model("3g")
    link = Link(1.1, 3.0, 100.0)
    result = plan(inp, link, power)
    assert result.placement[0] == Side.CLOUD, result.spec
    assert result.codecs[0] == "crop:webp"
    photo = evaluate(inp, link, power, result.placement, 1.0, {**result.codecs, 0: PHOTO})
    assert result.latency_ms < photo.latency_ms - 1000
    first = result.cost.transfers[0]
    assert first.boundary == 0 and first.codec == "crop:webp" and first.bytes == 60_000
    # Cloud-only means the phone does nothing: it ships the photo, and the crop (a cut
    # inside unit 0) beats it, as it does the phone alone.
    cloud_only = result.baselines["cloud_only"].cost
    assert cloud_only.transfers[0].codec == PHOTO and cloud_only.transfers[0].bytes == 300_000
    assert result.improvement_pct()["latency"] > 0


def test_evaluate_refuses_a_codec_the_boundary_lacks() -> None:
    inp = alexnet()
    with pytest.raises(ValueError, match="no codec option 'zstd:9'"):
        evaluate(inp, Link(10, 10, 10), power_model("wifi"), ("cloud",) * 12, 1.0, {0: "zstd:9"})


def test_codec_names() -> None:
    assert [parse_tensor_codec(n) for n in TENSOR_CODECS] == [
        (0, False),
        (1, False),
        (3, False),
        (1, True),
    ]
    for bad in ("zstd:0", "zstd:x", "lz4", "zstd:99", "crop:webp"):
        with pytest.raises(ValueError):
            parse_tensor_codec(bad)
    check_codec("crop:png", 0)
    with pytest.raises(ValueError):
        check_codec("raw", 0)
    with pytest.raises(ValueError):
        check_codec("photo", 3)


def test_profiles_carry_every_codec_option_to_the_planner(tmp_path) -> None:
    """Codec figures survive the profile file, and both sides' become the options of
    each boundary: sizes from the phone, times per side, the cloud's crop time saved
    (at most its whole unit 0); a codec one side lacks is not offered."""
    from dataclasses import replace

    from collabdnn.planning.profiles import (
        CodecFigures,
        load_profile,
        plan_input_from_profiles,
        save_profile,
    )
    from tests.unit.test_planner import make_profile

    def with_codecs(profile, factor: float, crop_ms: float):
        units = list(profile.units)
        units[1] = replace(
            units[1],
            codecs=(
                CodecFigures("raw", 774_452, 0.01 * factor, 0.01 * factor),
                CodecFigures("zstd:1", 1, 1.0, 1.0),  # the profile's own: not repeated
            ),
        )
        photo = (CodecFigures("crop:webp", 60_000, 5.0 * factor, 1.0 * factor, crop_ms),)
        if factor > 2:
            photo += (CodecFigures("crop:png", 80_000, 9.0, 2.0, 4.0),)  # the phone only
        return replace(profile, units=tuple(units), input_codecs=photo)

    mobile = with_codecs(make_profile("mobile", 5.0), 5.0, 4.0)
    cloud = with_codecs(make_profile("cloud", 1.0), 1.0, 3.0)  # unit 0 takes 1 ms there
    save_profile(mobile, tmp_path / "m.json")
    assert load_profile(tmp_path / "m.json") == mobile
    inp = plan_input_from_profiles(mobile, cloud)
    photo = inp.boundaries[0].options()
    assert [o.name for o in photo] == ["photo", "crop:webp"]
    assert photo[1] == CodecOption("crop:webp", 60_000, 25.0, 5.0, 5.0, 1.0, cloud_saved_ms=1.0)
    conv1 = inp.boundaries[2].options()
    assert [o.name for o in conv1] == ["zstd:1", "raw"]
    assert conv1[1].bytes == 774_452 and close(conv1[1].cloud_decode_ms, 0.01)


def test_a_slower_phone_is_slower_with_every_codec() -> None:
    """--mobile-slowdown scales every codec option's times, not the profile's own only
    (else the alternatives would look cheap next to it on a slowed phone)."""
    from dataclasses import replace

    from collabdnn.planning.profiles import CodecFigures, slower_profile
    from tests.unit.test_planner import make_profile

    profile = make_profile("mobile", 1.0)
    units = (replace(profile.units[0], codecs=(CodecFigures("raw", 10, 1.0, 2.0),)),)
    photo = (CodecFigures("crop:webp", 5, 3.0, 1.0, 2.0),)
    profile = replace(profile, units=units + profile.units[1:], input_codecs=photo)
    slow = slower_profile(profile, 4.0)
    assert slow.units[0].codecs == (CodecFigures("raw", 10, 4.0, 8.0),)
    assert slow.input_codecs == (CodecFigures("crop:webp", 5, 12.0, 4.0, 8.0),)
