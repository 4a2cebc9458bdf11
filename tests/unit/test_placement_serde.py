"""Placement specs and proto conversions (no servers)."""

from __future__ import annotations

import pytest

from collabdnn.placement import (
    AssignedPlan,
    Placement,
    PlacementError,
    Segment,
    Side,
    describe,
    segments,
    spec_of,
)
from collabdnn.results import ClassifyResult, Prediction, Transfer, UnitTiming
from collabdnn.wire import serde

M, C = Side.MOBILE, Side.CLOUD


def test_side_words_letters_and_parsing() -> None:
    assert [s.value for s in Side] == ["mobile", "cloud"]
    assert [s.letter for s in Side] == ["M", "C"]
    for text, side in (("M", M), ("c", C), ("Mobile", M), (" CLOUD ", C)):
        assert Side.parse(text) is side
    for bad in ("", "phone", "MC"):
        with pytest.raises(PlacementError):
            Side.parse(bad)
    assert Side.coerce("cloud") is C
    with pytest.raises(PlacementError):
        Side.coerce("C")  # letters belong to specs only


def test_parse_and_resolve() -> None:
    assert Placement.parse("mobile").resolve(3) == (M, M, M)
    assert Placement.parse("Cloud").resolve(2) == (C, C)
    assert Placement.parse("mcM").resolve(3) == (M, C, M)
    assert str(Placement.parse("MCM")) == "MCM"
    assert str(Placement.parse("cloud")) == "cloud"
    assert spec_of((M, C, C)) == "MCC"
    assert Placement.of(["mobile", C]) == Placement.parse("MC")
    with pytest.raises(PlacementError, match="4 letters but the model has 3 units"):
        Placement.parse("MCMC").resolve(3)
    for bad in ("", "MXC", "phone"):
        with pytest.raises(PlacementError):
            Placement.parse(bad)


def test_segments_are_maximal_half_open_runs() -> None:
    sides = Placement.parse("MMCCM").resolve(5)
    assert segments(sides) == [Segment(M, 0, 2), Segment(C, 2, 4), Segment(M, 4, 5)]
    assert segments((C,)) == [Segment(C, 0, 1)]
    assert describe((M, M)) == "mobile" and describe((C, M)) == "CM"


@pytest.mark.parametrize("spec", ["mobile", "cloud", "MCCM"])
def test_placement_and_assigned_plan_round_trip(spec: str) -> None:
    placement = Placement.parse(spec)
    assert serde.placement_from_proto(serde.placement_to_proto(placement)) == placement
    plan = AssignedPlan(placement, "id-1", "scheduler")
    assert serde.assigned_plan_from_proto(serde.assigned_plan_to_proto(plan)) == plan


def test_result_round_trip_and_its_json() -> None:
    result = ClassifyResult(
        top=[Prediction(3, "tiger shark", 0.5)],
        placement=(M, C),
        latency_ms=12.5,
        bytes_up=10,
        bytes_down=4,
        fallback=False,
        units=[
            UnitTiming(0, "preprocess", M, 1.0, 0.1, 0.2, 0.3, 10),
            UnitTiming(1, "fc", C, 2.0, 0.1, 0.0, 0.2, 4),
        ],
        transfers=[Transfer(0, True, 10, 0.1, 0.2, 0.3), Transfer(1, False, 4, 0.1, 0.0, 0.2)],
        logits_frame=b"frame",
    )
    back = serde.result_from_proto(serde.result_to_proto(result))
    assert back == result
    out = back.to_json()
    assert out["placement"] == ["mobile", "cloud"] and out["placement_spec"] == "MC"
    assert out["mobile_energy_mj"] is None
    assert [u["platform"] for u in out["units"]] == ["mobile", "cloud"]
    assert all(type(u["platform"]) is str for u in out["units"])  # plain words, not Sides
