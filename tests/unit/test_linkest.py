"""LinkEstimator on synthetic observations generated from a known link (with noise)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from collabdnn.measure.linkest import LinkEstimator
from collabdnn.planning.link import LINK_PRESETS, Link

TRUTH = Link(up_mbps=5.0, down_mbps=12.0, rtt_ms=40.0, network="4g")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def network_ms(link: Link, up: int, down: int) -> float:
    return link.rtt_ms + up * 8 / (link.up_mbps * 1e3) + down * 8 / (link.down_mbps * 1e3)


def feed(
    est: LinkEstimator,
    link: Link,
    sizes: list[tuple[int, int]],
    rng: np.random.Generator,
    noise: float = 0.02,
    clock: FakeClock | None = None,
) -> None:
    for up, down in sizes:
        server_ms = float(rng.uniform(1, 30))
        net = network_ms(link, up, down) * (1 + rng.normal(0, noise))
        est.observe(up, down, net + server_ms, server_ms)
        if clock is not None:
            clock.now += 1.0


def log_uniform(rng: np.random.Generator, low: float, high: float) -> int:
    """Call sizes spread over orders of magnitude, as different splits produce."""
    return int(np.exp(rng.uniform(np.log(low), np.log(high))))


def assert_close(est: Link | None, truth: Link, tol: float, rtt_tol: float | None = None) -> None:
    assert est is not None
    assert est.up_mbps == pytest.approx(truth.up_mbps, rel=tol)
    assert est.down_mbps == pytest.approx(truth.down_mbps, rel=tol)
    assert est.rtt_ms == pytest.approx(truth.rtt_ms, rel=rtt_tol or tol)


def test_no_estimate_before_observations() -> None:
    est = LinkEstimator()
    assert est.estimate() is None
    assert est.changed_relative(TRUTH) == 0.0


def test_recovers_link_from_varied_calls() -> None:
    rng = np.random.default_rng(1)
    est = LinkEstimator(window=32)
    sizes = [(log_uniform(rng, 10e3, 2e6), log_uniform(rng, 1e3, 2e6)) for _ in range(60)]
    feed(est, TRUTH, sizes, rng)
    assert_close(est.estimate(), TRUTH, tol=0.05, rtt_tol=0.1)


def test_recovers_link_from_probes_alone() -> None:
    rng = np.random.default_rng(2)
    clock = FakeClock()
    est = LinkEstimator(clock=clock)
    for _ in range(8):
        plan = est.probe_plan(force=True)
        assert [p.purpose for p in plan] == ["uplink", "downlink", "rtt"]
        feed(est, TRUTH, [(p.bytes_up, p.bytes_down) for p in plan], rng, clock=clock)
    assert_close(est.estimate(), TRUTH, tol=0.04, rtt_tol=0.06)


def test_constant_sizes_attribute_to_dominant_direction() -> None:
    # The same split every call: only the uplink (dominant airtime) can be learnt.
    rng = np.random.default_rng(3)
    truth = Link(up_mbps=3.0, down_mbps=40.0, rtt_ms=20.0)
    est = LinkEstimator(prior=LINK_PRESETS["wifi"])
    feed(est, truth, [(200_000, 4_000)] * 30, rng, noise=0.02)
    got = est.estimate()
    assert got is not None
    assert got.up_mbps == pytest.approx(3.0, rel=0.04)
    # Not identifiable: kept at the prior.
    assert got.down_mbps == LINK_PRESETS["wifi"].down_mbps
    assert got.rtt_ms == LINK_PRESETS["wifi"].rtt_ms


def test_tiny_constant_calls_measure_rtt() -> None:
    rng = np.random.default_rng(4)
    truth = Link(up_mbps=18.88, down_mbps=40.0, rtt_ms=80.0)
    est = LinkEstimator()
    feed(est, truth, [(64, 64)] * 20, rng, noise=0.02)
    got = est.estimate()
    assert got is not None
    assert got.rtt_ms == pytest.approx(80.0, rel=0.04)


def test_only_uplink_varies() -> None:
    rng = np.random.default_rng(5)
    est = LinkEstimator()
    sizes = [(log_uniform(rng, 50e3, 1e6), 2_000) for _ in range(30)]
    feed(est, TRUTH, sizes, rng)
    got = est.estimate()
    assert got is not None
    assert got.up_mbps == pytest.approx(TRUTH.up_mbps, rel=0.04)
    # RTT absorbs the (constant, small) downlink airtime: 2 kB at 12 Mbit/s vs wifi prior.
    assert got.rtt_ms == pytest.approx(TRUTH.rtt_ms, rel=0.1)


def test_collinear_sizes_learn_dominant_direction() -> None:
    rng = np.random.default_rng(6)
    est = LinkEstimator(prior=Link(5.0, 12.0, 40.0))
    sizes = [(s, s // 50) for s in rng.integers(50_000, 1_000_000, 30).tolist()]
    slower = Link(2.5, 12.0, 40.0)
    feed(est, slower, sizes, rng)
    got = est.estimate()
    assert got is not None
    assert got.up_mbps == pytest.approx(2.5, rel=0.05)
    assert got.down_mbps == 12.0


def test_follows_a_step_change_and_reports_it() -> None:
    rng = np.random.default_rng(7)
    clock = FakeClock()
    est = LinkEstimator(window=12, clock=clock)
    sizes = [(log_uniform(rng, 10e3, 1e6), log_uniform(rng, 1e3, 2e6)) for _ in range(40)]
    feed(est, TRUTH, sizes[:20], rng, clock=clock)
    before = est.estimate()
    assert before is not None
    assert est.changed_relative(before) == 0.0
    worse = Link(up_mbps=1.5, down_mbps=4.0, rtt_ms=120.0)
    feed(est, worse, sizes[20:], rng, clock=clock)
    assert_close(est.estimate(), worse, tol=0.06, rtt_tol=0.1)
    assert est.changed_relative(before) > 0.6


def test_old_observations_age_out() -> None:
    rng = np.random.default_rng(8)
    clock = FakeClock()
    est = LinkEstimator(window=50, max_age_s=10.0, alpha=1.0, clock=clock)
    sizes = [(log_uniform(rng, 10e3, 1e6), log_uniform(rng, 1e3, 2e6)) for _ in range(30)]
    feed(est, TRUTH, sizes[:15], rng, clock=clock)
    clock.now += 60
    worse = Link(1.0, 3.0, 100.0)
    feed(est, worse, sizes[15:], rng, clock=clock)
    assert_close(est.estimate(), worse, tol=0.05, rtt_tol=0.1)


def test_outlier_is_rejected() -> None:
    rng = np.random.default_rng(9)
    est = LinkEstimator(window=30, alpha=1.0)
    sizes = [(log_uniform(rng, 10e3, 1e6), log_uniform(rng, 1e3, 2e6)) for _ in range(29)]
    feed(est, TRUTH, sizes, rng, noise=0.01)
    est.observe(500_000, 10_000, 10 * network_ms(TRUTH, 500_000, 10_000), 0.0)  # GC pause
    assert_close(est.estimate(), TRUTH, tol=0.05, rtt_tol=0.1)


def test_probe_plan_waits_for_idle_and_sizes_from_estimate() -> None:
    clock = FakeClock()
    est = LinkEstimator(idle_s=10.0, clock=clock)
    first = est.probe_plan()
    assert len(first) == 3, "no traffic yet: probe"
    # Unmeasured directions start small, whatever the prior says.
    assert first[0].bytes_up <= est.initial_probe_bytes
    assert first[1].bytes_down <= est.initial_probe_bytes
    assert first[2].bytes_up == first[2].bytes_down == est.tiny_bytes
    est.observe(1000, 1000, 50, 10)
    assert est.probe_plan() == []
    clock.now += 5
    assert est.probe_plan() == []
    assert len(est.probe_plan(force=True)) == 3
    clock.now += 11
    assert len(est.probe_plan()) == 3
    # Once measured, sizes follow the rates: a faster uplink gets a bigger probe.
    rng = np.random.default_rng(10)
    for _ in range(4):
        feed(est, TRUTH, [(p.bytes_up, p.bytes_down) for p in est.probe_plan(force=True)], rng)
    plan = [est.probe_plan(force=True) for _ in range(2)]
    full = max(plan, key=lambda p: p[0].bytes_up)
    airtime_up = full[0].bytes_up * 8 / (TRUTH.up_mbps * 1e6)
    assert airtime_up == pytest.approx(est.probe_target_s, rel=0.1)
    assert full[1].bytes_down > full[0].bytes_up  # downlink is faster


def test_invalid_observations() -> None:
    est = LinkEstimator()
    with pytest.raises(ValueError):
        est.observe(-1, 0, 10, 1)
    est.observe(100, 100, 5, 10)  # server time > wall: clock skew, ignored
    assert est.estimate() is None
    assert est.observations == 0


def test_concurrent_observers() -> None:
    est = LinkEstimator(window=64)
    errors: list[BaseException] = []

    def worker(seed: int) -> None:
        rng = np.random.default_rng(seed)
        try:
            sizes = [(log_uniform(rng, 1e4, 1e6), log_uniform(rng, 1e3, 2e6)) for _ in range(50)]
            feed(est, TRUTH, sizes, rng)
            est.estimate()
            est.probe_plan(force=True)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    assert est.observations == 200
    assert_close(est.estimate(), TRUTH, tol=0.05, rtt_tol=0.15)


def test_background_fits_give_exactly_the_in_line_estimates() -> None:
    """Calls fitted off the request path (BackgroundFits) end with the same estimate,
    bit for bit, as calls fitted in line: same observations, same stamps, same order,
    contended ones and a link change included."""
    from collabdnn.measure.linkest import BackgroundFits

    rng = np.random.default_rng(7)
    clock_a, clock_b = FakeClock(), FakeClock()
    inline = LinkEstimator(LINK_PRESETS["wifi"], window=8, alpha=0.5, clock=clock_a)
    later = LinkEstimator(LINK_PRESETS["wifi"], window=8, alpha=0.5, clock=clock_b)
    fits = BackgroundFits(later)
    slow = Link(up_mbps=0.5, down_mbps=2.0, rtt_ms=80.0, network="3g")
    for index in range(60):
        link = TRUTH if index < 30 else slow
        up, down = [(89_052, 3_769), (20_614, 3_769), (150_528, 3_769)][index % 3]
        server_ms = float(rng.uniform(1, 30))
        wall_ms = network_ms(link, up, down) * (1 + rng.normal(0, 0.05)) + server_ms
        contended = index % 7 == 3
        inline.observe(up, down, wall_ms, server_ms, contended=contended)
        fits.observe(up, down, wall_ms, server_ms, contended=contended)
        clock_a.now += 0.25
        clock_b.now += 0.25  # the fit itself runs later: the stamp is what counts
        if index % 10 == 9:
            fits.flush()
            assert later.estimate() == inline.estimate()
    fits.flush()
    assert later.estimate() == inline.estimate() and later.observations == inline.observations
    assert later.changes == inline.changes > 0


def test_background_fits_wait_while_requests_are_in_flight() -> None:
    """A fit holds the GIL: it waits until no request is in flight, except for a flush
    (which then fits at once) or when the observation is ``max_defer_s`` old."""
    from collabdnn.measure.linkest import BackgroundFits

    estimator = LinkEstimator(LINK_PRESETS["wifi"], window=8, alpha=0.5, clock=FakeClock())
    fits = BackgroundFits(estimator, max_defer_s=60.0)
    with fits.request():
        fits.observe(89_052, 3_769, 5.0, 1.0)
        time.sleep(0.05)  # time for the fit thread to run, were it not held back
        assert estimator.observations == 0
        fits.flush()  # does not wait for the request
        assert estimator.observations == 1
        fits.observe(20_614, 3_769, 2.0, 1.0)
    fits.flush()
    assert estimator.observations == 2
    eager = BackgroundFits(estimator, max_defer_s=0.0)  # never held back
    with eager.request():
        eager.observe(150_528, 3_769, 7.0, 1.0)
        for _ in range(500):  # no flush: the fit goes on its own
            if estimator.observations == 3:
                break
            time.sleep(0.01)
    assert estimator.observations == 3


def test_a_call_faster_than_the_prior_scales_every_figure() -> None:
    # A 1 ms loopback measured against the wifi prior (20 ms, 19 Mbit/s): the first
    # call takes less than the prior's RTT alone. Blaming the RTT would zero it for
    # good and read the calls' fixed cost as a slow rate.
    est = LinkEstimator(prior=LINK_PRESETS["wifi"])
    est.observe(16_384, 64, 1.06 + 5.0, 5.0)
    got = est.estimate()
    assert got is not None
    assert 0.5 < got.rtt_ms < 1.06
    assert got.up_mbps > 10 * LINK_PRESETS["wifi"].up_mbps


def test_a_fast_link_is_found_from_probes_after_the_prior() -> None:
    rng = np.random.default_rng(9)
    clock = FakeClock()
    truth = Link(up_mbps=4000.0, down_mbps=3000.0, rtt_ms=1.0)
    est = LinkEstimator(prior=LINK_PRESETS["wifi"], clock=clock)
    for _ in range(8):
        plan = est.probe_plan(force=True)
        feed(est, truth, [(p.bytes_up, p.bytes_down) for p in plan], rng, clock=clock)
    assert_close(est.estimate(), truth, tol=0.1, rtt_tol=0.1)
