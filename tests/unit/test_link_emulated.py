"""The in-process token-bucket shaper (the non-root fallback), on a fake clock."""

from __future__ import annotations

import threading

import pytest

from collabdnn.measure.emulated import TokenBucketShaper
from collabdnn.planning.link import Link

LINK = Link(up_mbps=8.0, down_mbps=16.0, rtt_ms=40.0)
MB = 1_000_000


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def shaper(link: Link = LINK, burst: int = 0) -> tuple[TokenBucketShaper, FakeTime]:
    t = FakeTime()
    return TokenBucketShaper(link, burst_bytes=burst, clock=t.clock, sleep=t.sleep), t


def test_labelled_emulated() -> None:
    assert TokenBucketShaper.label == "emulated"
    assert shaper()[0].label == "emulated"


def test_airtime_plus_half_rtt_per_direction() -> None:
    s, _ = shaper()
    assert s.transmit_delay_s(MB, "up") == pytest.approx(1.0 + 0.02)
    assert s.transmit_delay_s(MB, "down") == pytest.approx(0.5 + 0.02)


def test_back_to_back_sends_queue_and_idle_drains() -> None:
    s, t = shaper()
    assert s.transmit_delay_s(MB, "up") == pytest.approx(1.02)
    assert s.transmit_delay_s(MB, "up") == pytest.approx(2.02)  # behind the first
    t.now += 10.0
    assert s.transmit_delay_s(MB, "up") == pytest.approx(1.02)  # backlog gone, no credit


def test_reserve_false_only_asks() -> None:
    s, _ = shaper()
    assert s.transmit_delay_s(MB, "up", reserve=False) == pytest.approx(1.02)
    assert s.transmit_delay_s(MB, "up", reserve=False) == pytest.approx(1.02)


def test_burst_passes_small_sends_after_idle() -> None:
    s, t = shaper(burst=100_000)
    assert s.transmit_delay_s(50_000, "up") == pytest.approx(0.02)
    assert s.transmit_delay_s(100_000, "up") == pytest.approx(0.05 + 0.02)
    t.now += 1.0
    assert s.transmit_delay_s(100_000, "up") == pytest.approx(0.02)


def test_wait_sleeps_the_delay() -> None:
    s, t = shaper()
    assert s.wait(500_000, "down") == pytest.approx(0.27)
    assert t.slept == [pytest.approx(0.27)]


def test_set_link_changes_rate() -> None:
    s, _ = shaper()
    s.set_link(Link(1.0, 1.0, 0.0))
    assert s.transmit_delay_s(125_000, "up") == pytest.approx(1.0)


def test_bad_arguments() -> None:
    s, _ = shaper()
    with pytest.raises(ValueError):
        s.transmit_delay_s(10, "sideways")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        s.transmit_delay_s(-1, "up")
    with pytest.raises(ValueError):
        TokenBucketShaper(LINK, burst_bytes=-1)


def test_concurrent_senders_share_the_link() -> None:
    s, _ = shaper(Link(8.0, 8.0, 0.0))
    delays: list[float] = []
    lock = threading.Lock()

    def send() -> None:
        for _ in range(10):
            d = s.transmit_delay_s(100_000, "up")
            with lock:
                delays.append(d)

    threads = [threading.Thread(target=send) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=10)
    # 40 sends of 0.1 s each on a frozen clock: each queues behind all the earlier ones.
    assert sorted(delays) == pytest.approx([0.1 * (i + 1) for i in range(40)])


def test_real_clock_wait_is_bounded() -> None:
    s = TokenBucketShaper(Link(80.0, 80.0, 2.0))
    assert s.wait(10_000, "up") == pytest.approx(0.002, abs=0.002)
