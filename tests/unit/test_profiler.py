"""Profiler, latency predictor and ``collabdnn profile``: lean runs of AlexNet (seed:0)."""

from __future__ import annotations

import json
import math
import random
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import pytest

from collabdnn.codec import CodecConfig, encode
from collabdnn.measure.profiler import latency_stats, make_batches, profile_model
from collabdnn.planning.predictor import (
    LatencyPredictor,
    Sample,
    fit,
    fit_latency_models,
    holdout_error,
    predict_profile,
)
from collabdnn.planning.profiles import (
    LatencyStats,
    Profile,
    ProfileError,
    UnitProfile,
    load_profile,
    plan_input_from_profiles,
    save_profile,
)
from collabdnn.samples import read_images, sample_images
from tests.common import SAMPLES

FAST = {"repeats": 2, "warmup": 1}


@pytest.fixture(scope="module")
def mobile_profile(alexnet, cat_bytes) -> Profile:
    return profile_model(alexnet, "mobile", [cat_bytes], **FAST)


@pytest.fixture(scope="module")
def resnet18():
    from collabdnn.model.split_model import load_model

    return load_model("resnet18", "seed:0")


# ------------------------------------------------------------------------------ profiler


def test_profile_has_every_unit_with_ordered_latencies(alexnet, mobile_profile):
    assert len(mobile_profile.units) == 12
    assert mobile_profile.unit_names == tuple(u.name for u in alexnet.units)
    for unit in mobile_profile.units:
        stats = unit.latency_ms
        assert stats.median > 0
        assert stats.p10 <= stats.median <= stats.p90
        assert stats.repeats == FAST["repeats"]
        assert unit.encode_ms > 0 and unit.decode_ms > 0


def test_profile_sizes_are_those_of_the_real_activations(alexnet, cat_bytes, mobile_profile):
    x: object = cat_bytes
    for info, unit in zip(alexnet.units, mobile_profile.units, strict=True):
        x = alexnet.run(info.index, info.index + 1, x)
        assert unit.output_bytes == info.output_bytes
        assert unit.encoded_bytes == len(encode(x, CodecConfig()))
    assert mobile_profile.input_bytes == len(cat_bytes)


def test_profile_records_where_it_was_measured(alexnet, mobile_profile):
    import torch

    assert mobile_profile.model == "alexnet"
    assert mobile_profile.weights_hash == alexnet.weights_hash
    assert mobile_profile.threads == torch.get_num_threads()
    assert mobile_profile.device == "cpu"
    assert datetime.fromisoformat(mobile_profile.created).tzinfo is not None
    for key in ("cpu", "cores", "device_name", "torch"):
        assert mobile_profile.host[key]


def test_profile_round_trips_and_feeds_the_planner(alexnet, cat_bytes, mobile_profile, tmp_path):
    path = tmp_path / "mobile.json"
    save_profile(mobile_profile, path)
    assert load_profile(path) == mobile_profile
    cloud = profile_model(alexnet, "cloud", [cat_bytes], repeats=1, warmup=0)
    plan_input = plan_input_from_profiles(load_profile(path), cloud)
    assert len(plan_input.units) == 12
    assert plan_input.boundaries[0].bytes == len(cat_bytes)


def test_batch_of_two_carries_twice_the_data(alexnet, cat_bytes, mobile_profile):
    batched = profile_model(alexnet, "mobile", [cat_bytes], batch_size=2, repeats=1, warmup=0)
    assert batched.batch_size == 2
    assert batched.input_bytes == 2 * len(cat_bytes)
    for one, two in zip(mobile_profile.units, batched.units, strict=True):
        assert two.output_bytes == 2 * one.output_bytes
        assert two.encoded_bytes > one.encoded_bytes


def test_profiling_runs_in_a_worker_thread_and_reports_progress(alexnet, cat_bytes):
    seen: list[tuple[int, int]] = []

    def job() -> Profile:
        return profile_model(
            alexnet,
            "cloud",
            [cat_bytes],
            repeats=1,
            warmup=0,
            progress=lambda d, t: seen.append((d, t)),
        )

    with ThreadPoolExecutor(1) as pool:
        profile = pool.submit(job).result()
    assert profile.side == "cloud"
    assert seen[-1][0] == seen[-1][1] == len(seen)


@pytest.mark.parametrize(
    "kwargs",
    [{"side": "phone"}, {"images": []}, {"repeats": 0}, {"warmup": -1}, {"batch_size": 0}],
)
def test_profile_refuses_bad_arguments(alexnet, cat_bytes, kwargs):
    args = {"side": "mobile", "images": [cat_bytes], **kwargs}
    with pytest.raises(ValueError):
        profile_model(alexnet, args.pop("side"), args.pop("images"), **args)


def test_batches_cycle_through_the_photos():
    assert make_batches([b"a", b"b", b"c"], 2) == [[b"a", b"b"], [b"b", b"c"], [b"c", b"a"]]


def test_profile_records_each_units_mean_and_cpu_time(mobile_profile):
    assert "cpu_quota" in mobile_profile.host  # None: this process has no quota
    assert "cpu_period_ms" in mobile_profile.host
    for unit in mobile_profile.units:
        stats = unit.latency_ms
        assert stats.mean is not None and stats.mean > 0
        assert stats.cpu is not None and stats.cpu >= 0


def test_a_side_profiled_under_a_cpu_quota_is_planned_with_its_means(mobile_profile):
    """Under a quota each throttling pause lands in one unit, which its median drops;
    a busy process runs no faster than its CPU time over the quota, which the planner
    uses where the quota binds. Without a binding quota the planner keeps the medians;
    an older profile without CPU times gives its means, or its medians."""
    import dataclasses

    def skewed(profile: Profile, quota: float | None, with_mean: bool = True) -> Profile:
        units = tuple(
            dataclasses.replace(
                u,
                latency_ms=LatencyStats(
                    1.0, 1.0, 9.0, 10, 3.0 if with_mean else None, 0.9 if with_mean else None
                ),
            )
            for u in profile.units
        )
        return dataclasses.replace(profile, units=units, host={"cpu_quota": quota})

    cloud = dataclasses.replace(mobile_profile, side="cloud")
    # CPU 0.9 ms over the quota; the median (1.0) under a quota that does not bind.
    cases = ((0.5, True, 1.8), (0.25, True, 3.6), (2.0, True, 1.0), (None, True, 1.0))
    assert mobile_profile.threads <= 2
    for quota, with_mean, expected in cases:
        mobile = skewed(mobile_profile, quota, with_mean)
        assert mobile.cpu_quota == quota
        inp = plan_input_from_profiles(mobile, cloud)
        assert {u.mobile_ms for u in inp.units} == {expected}
        assert Profile.from_dict(json.loads(json.dumps(mobile.to_dict()))) == mobile
    assert (
        plan_input_from_profiles(skewed(mobile_profile, 0.5, False), cloud).units[0].mobile_ms
        == 1.0
    )
    older = dataclasses.replace(mobile_profile.units[0].latency_ms, cpu=None)
    assert older.expected(0.5) == older.mean  # means, where CPU times were not recorded
    old = mobile_profile.to_dict()
    for unit in old["units"]:
        del unit["latency_ms"]["mean"], unit["latency_ms"]["cpu"]
    assert Profile.from_dict(old).units[0].latency_ms.mean is None  # older files still load


def test_latency_stats_are_ordered():
    stats = latency_stats([3.0, 1.0, 2.0, 10.0])
    assert stats.p10 <= stats.median == 2.5 <= stats.p90 and stats.repeats == 4


def test_sample_images_are_found_and_read():
    paths = sample_images()
    assert {p.name for p in paths} >= {"chelsea.png", "rocket.jpg"}
    assert read_images(paths[:1])[0] == paths[0].read_bytes()


# ----------------------------------------------------------------------------- predictor

TRUE = {"conv": (2e-8, 1e-7, 3e-8, 0.05), "fc": (1e-7, 0.0, 4e-6, 0.02)}


def _synthetic_profile(model: str, seed: int, side: str = "mobile") -> Profile:
    """A profile whose latencies are exactly linear in the features, per kind."""
    rng = random.Random(seed)
    units, previous = [], 150_000
    for index in range(12):
        kind = "conv" if index < 7 else "fc"
        flops, out = rng.randint(10**6, 10**9), rng.randint(10**3, 10**6)
        a, b, c, d = TRUE[kind]
        ms = a * flops + b * out + c * previous + d
        units.append(
            UnitProfile(
                index,
                f"u{index}",
                kind,
                flops,
                0,
                LatencyStats(ms, ms, ms, 1),
                out,
                out // 2,
                1e-6 * out,
                5e-7 * out,
            )
        )
        previous = out
    return Profile(side=side, model=model, units=tuple(units), input_bytes=150_000)


def test_predictor_recovers_exactly_linear_data():
    profiles = [_synthetic_profile("m1", 1), _synthetic_profile("m2", 2)]
    predictor = fit(profiles)
    for kind, coef in TRUE.items():
        assert predictor.kinds[kind].source == "fit"
        assert predictor.kinds[kind].coef == pytest.approx(coef, rel=1e-6, abs=1e-12)
    errors = holdout_error(profiles, by="model")
    assert set(errors) == {"conv", "fc", "all"}
    assert errors["all"]["units"] == 24
    assert errors["all"]["mean_ape"] < 1e-6


def test_predictor_coefficients_are_never_negative():
    samples = [
        Sample("m", f"u{i}", "conv", float(f), 1000.0, 1000.0, max(0.01, 5.0 - 1e-9 * f))
        for i, f in enumerate(range(10**8, 10**9 + 1, 10**8))
    ]
    kinds, global_model = fit_latency_models(samples)
    assert all(c >= 0 for c in kinds["conv"].coef + global_model.coef)


def test_predictor_falls_back_for_rare_and_unseen_kinds():
    profile = _synthetic_profile("m1", 1)
    predictor = fit([profile], min_points=6)
    assert predictor.kinds["conv"].source == "fit"
    assert predictor.kinds["fc"].source == "scaled-global"  # 5 points < 6
    assert predictor.model_for("block") is predictor.global_model


def test_predictor_round_trips_through_json():
    predictor = fit([_synthetic_profile("m1", 1)])
    again = LatencyPredictor.from_dict(json.loads(json.dumps(predictor.to_dict())))
    assert again == predictor
    with pytest.raises(ProfileError):
        LatencyPredictor.from_dict({"schema": "other"})


def test_predictor_refuses_mixed_sides():
    with pytest.raises(ProfileError, match="side"):
        fit([_synthetic_profile("m1", 1), _synthetic_profile("m2", 2, side="cloud")])


def test_predicted_resnet18_profile_from_alexnet(mobile_profile, resnet18, tmp_path):
    predictor = fit([mobile_profile])
    errors = holdout_error([mobile_profile], by="unit")
    assert errors["all"]["units"] == 12 and math.isfinite(errors["all"]["median_ape"])
    predicted = predict_profile(resnet18, predictor, batch_size=2)
    assert len(predicted.units) == resnet18.num_units == 13
    assert predicted.host["predicted"] is True and predicted.batch_size == 2
    for unit in predicted.units:
        assert math.isfinite(unit.latency_ms.median) and unit.latency_ms.median > 0
        assert unit.latency_ms.repeats == 0
        assert unit.encoded_bytes > 0
    save_profile(predicted, tmp_path / "p.json")
    assert load_profile(tmp_path / "p.json") == predicted
    with pytest.raises(ProfileError):
        predict_profile(resnet18, predictor, side="cloud")


# ----------------------------------------------------------------------------------- CLI


def test_cli_profile_writes_a_valid_file(tmp_path, capsys):
    from collabdnn.cli import main

    out = tmp_path / "alexnet.json"
    chelsea = SAMPLES / "chelsea.png"
    argv = [
        "profile",
        "--side",
        "mobile",
        "--model",
        "alexnet",
        "--repeats",
        "1",
        "--warmup",
        "0",
        "--images",
        str(chelsea),
        "--no-progress",
        "-o",
        str(out),
    ]
    assert main(argv) == 0
    profile = load_profile(out)
    assert profile.side == "mobile" and len(profile.units) == 12
    printed = capsys.readouterr().out
    assert "conv1" in printed and "encoded bytes" in printed

    predicted_out = tmp_path / "resnet18.json"
    argv = [
        "profile",
        "--model",
        "resnet18",
        "--predict-from",
        str(out),
        "--json",
        "-o",
        str(predicted_out),
    ]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["host"]["predicted"] is True
    assert "leave-one-unit-out" in captured.err
    assert len(load_profile(predicted_out).units) == 13


def test_cli_profile_reports_errors_plainly(tmp_path):
    from collabdnn.cli import main

    with pytest.raises(SystemExit, match="--side"):
        main(["profile", "--model", "alexnet", "--no-progress"])
    with pytest.raises(SystemExit, match="collabdnn profile"):
        main(["profile", "--model", "alexnet", "--predict-from", str(tmp_path / "none.json")])


def test_a_kind_seen_in_one_model_only_borrows_the_global_model():
    samples = [s for seed, name in ((1, "m1"), (2, "m2")) for s in _samples(name, seed)]
    blocks = [Sample("m3", f"b{i}", "block", 1e8 * (i + 1), 1e4, 1e4, 1.0 + i) for i in range(6)]
    kinds, _ = fit_latency_models(samples + blocks)
    assert kinds["conv"].source == "fit"
    assert kinds["block"].source == "scaled-global"


def _samples(model: str, seed: int) -> list[Sample]:
    from collabdnn.planning.predictor import samples_from_profile

    return samples_from_profile(_synthetic_profile(model, seed))
