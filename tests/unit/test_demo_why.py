"""The demo's "why this plan" and its weaker phone, from a plan alone (no services)."""

from __future__ import annotations

import argparse

import pytest

from collabdnn.cli import demo
from collabdnn.planning.energy import power_model
from collabdnn.planning.link import Link
from collabdnn.planning.planner import plan
from tests.unit.test_codec_choice import alexnet


def test_why_names_the_crop_and_the_gain_over_both_single_platforms() -> None:
    chosen = plan(alexnet(slowdown=20.0), Link(1.1, 3.0, 100.0), power_model("3g"))
    reasons = demo.why(chosen.to_dict())
    rows = reasons["rows"]
    assert rows["this plan"]["crossings"][0] == "up 60,000 B after input (crop:webp)"
    assert rows["cloud only"]["crossings"][0] == "up 300,000 B after input (photo)"
    assert rows["mobile only"]["crossings"] == [] and rows["mobile only"]["cloud_ms"] == 0
    verdict = reasons["verdict"]
    assert "less latency than mobile only, the better single platform" in verdict
    assert "less than cloud only" in verdict
    assert "as webp (60,000 B instead of the photo's 300,000 B)" in verdict


def test_why_says_when_splitting_does_not_pay() -> None:
    chosen = plan(alexnet(slowdown=1.0), Link(0.1, 0.2, 300.0), power_model("3g"))
    assert chosen.spec == "M" * 12
    assert "splitting does not pay" in demo.why(chosen.to_dict())["verdict"]


@pytest.mark.parametrize(
    "available, cpus, slowdown, expected",
    [
        (True, None, None, (demo.DEFAULT_MOBILE_CPUS, 1.0, "cgroup quota")),
        (False, None, None, (0.0, demo.DEFAULT_SLOWDOWN, "4x slower than measured")),
        (True, 0.0, None, (0.0, demo.DEFAULT_SLOWDOWN, "4x slower")),
        (True, 0.0, 1.0, (0.0, 1.0, "full speed")),
    ],
)
def test_the_weaker_phone_is_a_quota_else_the_planners_slowdown(
    monkeypatch: pytest.MonkeyPatch, available: bool, cpus, slowdown, expected
) -> None:
    from collabdnn.netem import throttle

    monkeypatch.setattr(throttle, "quota_available", lambda: (available, "no cgroup here"))
    args = argparse.Namespace(mobile_cpus=cpus, mobile_slowdown=slowdown)
    got_cpus, got_slowdown, note = demo.weaker_phone(args)
    assert (got_cpus, got_slowdown) == expected[:2] and expected[2] in note
    assert note.startswith("phone:")
