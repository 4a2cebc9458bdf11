"""LinkEstimator after an abrupt change: surprises, bounds, contention, the probe ladder."""

from __future__ import annotations

import itertools

import pytest

from collabdnn.measure.linkest import LinkEstimator
from collabdnn.planning.link import Link

FAST = Link(up_mbps=100.0, down_mbps=100.0, rtt_ms=2.0)
SLOW = Link(up_mbps=1.0, down_mbps=1.0, rtt_ms=2.0)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def wall_ms(link: Link, up: int, down: int) -> float:
    return link.rtt_ms + up * 8 / (link.up_mbps * 1e3) + down * 8 / (link.down_mbps * 1e3)


def settled(clock: FakeClock | None = None) -> LinkEstimator:
    """An estimator that has probed a 100 Mbit/s link for a while."""
    est = LinkEstimator(clock=clock or FakeClock())
    for _ in range(6):
        for p in est.probe_ladder(force=True):
            est.observe(p.bytes_up, p.bytes_down, wall_ms(FAST, p.bytes_up, p.bytes_down), 0.0)
    got = est.estimate()
    assert got is not None and got.up_mbps == pytest.approx(100, rel=0.1)
    return est


def test_two_surprising_canaries_replace_the_old_estimate_at_once() -> None:
    est = settled()
    canary = est.canary_bytes
    # The link dropped to 1 Mbit/s: the next round's two canaries take 100x what the
    # estimate predicts, its RTT probe looks normal.
    assert est.observe(canary, 64, wall_ms(SLOW, canary, 64), 0.0) == "slower"
    assert est.observe(64, canary, wall_ms(SLOW, 64, canary), 0.0) == "slower"
    assert est.observe(64, 64, wall_ms(SLOW, 64, 64), 0.0) is None
    got = est.estimate()
    assert got is not None
    assert got.up_mbps == pytest.approx(1.0, rel=0.2)
    assert got.down_mbps == pytest.approx(1.0, rel=0.2)
    assert got.rtt_ms < 10, "the bandwidth is blamed, not the RTT"
    assert est.changes == 1


def test_a_canary_past_its_deadline_bounds_the_rate_not_the_rtt() -> None:
    est = settled()
    # 16 KB at the old 100 Mbit/s is 1.3 ms, less than the RTT; not through in 0.5 s.
    assert est.slower_than(est.canary_bytes, 64, 0.5)
    got = est.estimate()
    assert got is not None
    assert got.up_mbps <= est.canary_bytes * 8 / 0.5 / 1e6 * 1.01
    assert got.rtt_ms < 10


def test_one_call_as_far_off_as_a_missed_deadline_is_a_change() -> None:
    est = settled()
    # The 240 KB photo took 2 s (1 Mbit/s) where 100 Mbit/s predicts 20 ms: a call past
    # its budget, answered late; no second call is needed to believe it.
    n = 240_000
    assert est.observe(n, 64, wall_ms(SLOW, n, 64), 0.0) == "slower"
    got = est.estimate()
    assert got is not None and got.up_mbps == pytest.approx(1.0, rel=0.1)
    assert est.changes == 1


def test_one_slow_call_is_not_a_change() -> None:
    est = settled()
    before = est.estimate()
    assert before is not None
    # A 300 ms stall of one canary (GC, a descheduled thread), then normal probes.
    canary = est.canary_bytes
    assert est.observe(canary, 64, 300.0, 0.0) == "slower"
    for p in est.probe_ladder(force=True):
        est.observe(p.bytes_up, p.bytes_down, wall_ms(FAST, p.bytes_up, p.bytes_down), 0.0)
    got = est.estimate()
    assert got is not None and est.changes == 0
    assert got.up_mbps == pytest.approx(before.up_mbps, rel=0.25)


def test_a_timed_out_probe_bounds_the_rate_from_above() -> None:
    est = settled()
    full = max(p.bytes_up for p in est.probe_ladder(force=True))
    # Sized for 100 Mbit/s (0.1 s of airtime), not through after 1 s: < full / 1 s.
    assert est.slower_than(full, 64, 1.0)
    got = est.estimate()
    assert got is not None
    assert got.up_mbps <= full * 8 / 1e6 * 1.01
    assert got.down_mbps == pytest.approx(100, rel=0.1), "the other direction is kept"
    # What the estimate already expects is no evidence.
    assert not est.slower_than(64, 64, 0.001)
    # Nor is a probe cut before it could have finished.
    assert not est.slower_than(full, 64, 0.02)


def test_a_timed_out_tiny_probe_bounds_the_rtt() -> None:
    est = settled()
    assert est.slower_than(64, 64, 0.5)
    got = est.estimate()
    assert got is not None and got.rtt_ms >= 490
    assert got.up_mbps == pytest.approx(100, rel=0.1)


def test_contended_calls_never_lower_the_estimate() -> None:
    est = settled()
    before = est.estimate()
    assert before is not None
    n = 240_000
    # 16 requests share two cores: every call takes 100x its airtime, for CPU reasons.
    for _ in range(30):
        est.observe(n, 4000, 100 * wall_ms(FAST, n, 4000), 5.0, contended=True)
    assert est.estimate() == before
    # ... but a contended call that was fast proves the link at least that fast.
    slow = LinkEstimator()
    for _ in range(4):
        slow.observe(n, 64, wall_ms(SLOW, n, 64), 0.0)
    assert slow.observe(n, 64, wall_ms(FAST, n, 64) * 2, 0.0, contended=True) == "faster"
    got = slow.estimate()
    assert got is not None and got.up_mbps >= 40


def test_probe_ladder_starts_with_canaries_and_the_rtt_and_climbs() -> None:
    est = settled()
    full_plan = est.probe_plan(force=True)
    ladder = est.probe_ladder(force=True)
    assert [p.purpose for p in ladder[:3]] == ["uplink", "downlink", "rtt"]
    assert all(p.canary for p in ladder[:2]) and not any(p.canary for p in ladder[2:])
    ups = [p.bytes_up for p in ladder if p.purpose == "uplink"]
    assert ups[0] == est.canary_bytes
    assert ups == sorted(ups) and len(ups) >= 3
    # the top of the ladder is what probe_plan sizes (full or half, alternately)
    assert ups[-1] in {full_plan[0].bytes_up, 2 * full_plan[0].bytes_up, full_plan[0].bytes_up // 2}
    for low, high in itertools.pairwise(ups):
        assert high <= 16 * low, "no step is much larger than the one before"
    # On a slow link the ladder is a canary per direction, nothing larger.
    slow = LinkEstimator()
    for p in [(64, 64), (16384, 64), (64, 16384)] * 3:
        slow.observe(*p, wall_ms(SLOW, *p), 0.0)
    assert len(slow.probe_ladder(force=True)) == 3
