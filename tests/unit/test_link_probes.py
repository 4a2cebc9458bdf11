"""The agent's link monitor: probe ladders, probe deadlines as evidence, contention."""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import pytest

from collabdnn.planning.link import Link
from collabdnn.transport.channels import open_channel
from collabdnn.transport.probe import serve
from mobile_agent.link_monitor import LinkMonitor, LinkSettings, Span, _Activity

FAST = Link(up_mbps=100.0, down_mbps=100.0, rtt_ms=2.0)


@pytest.fixture
def probe_server(request: pytest.FixtureRequest) -> Iterator[tuple[str, grpc.Channel]]:
    delay_ms = getattr(request, "param", 0.0)
    server, port = serve("127.0.0.1:0", extra_delay_ms=delay_ms)
    address = f"127.0.0.1:{port}"
    channel = open_channel(address)
    try:
        yield address, channel
    finally:
        channel.close()
        server.stop(0)


def monitor_for(server: tuple[str, grpc.Channel], **settings: object) -> LinkMonitor:
    address, channel = server
    return LinkMonitor(
        LinkSettings(probe_idle_s=0.0, **settings),  # type: ignore[arg-type]
        channel_for=lambda _: channel,
        cloud=address,
    )


def seed(monitor: LinkMonitor, link: Link) -> None:
    """Observations as if the monitor had probed ``link`` for a while."""
    for up, down in [(64, 64), (16384, 64), (64, 16384), (1 << 20, 64), (64, 1 << 20)] * 3:
        ms = link.rtt_ms + up * 8 / (link.up_mbps * 1e3) + down * 8 / (link.down_mbps * 1e3)
        monitor.estimator.observe(up, down, ms, 0.0)


def test_a_round_climbs_and_keeps_to_its_share_of_time(
    probe_server: tuple[str, grpc.Channel],
) -> None:
    monitor = monitor_for(probe_server, probe_share=0.1)
    begin = time.monotonic()
    sent = monitor.probe_if_idle()
    took = time.monotonic() - begin
    assert sent >= 3, "the RTT probe and a canary each way at least"
    assert monitor.estimator.observations == sent
    assert monitor.probe_if_idle() == 0, "quiet for 9x the round's time"
    assert monitor._probe_quiet_until - time.monotonic() > 5 * took


def test_a_dropped_link_costs_a_canary_and_is_learnt_in_one_round(
    probe_server: tuple[str, grpc.Channel],
) -> None:
    # The estimate says 100 Mbit/s; the (emulated) link now carries 1 Mbit/s.
    slow = Link(up_mbps=1.0, down_mbps=1.0, rtt_ms=2.0)
    monitor = monitor_for(probe_server, emulate=slow)
    seed(monitor, FAST)
    assert monitor.estimator.probe_ladder(force=True)[-1].bytes_down > 500_000
    assert monitor.probe_if_idle() == 3, "RTT probe and two canaries; no larger step"
    got = monitor.current()
    assert got.up_mbps == pytest.approx(1.0, rel=0.3)
    assert got.down_mbps == pytest.approx(1.0, rel=0.3)


@pytest.mark.parametrize("probe_server", [900.0], indirect=True)
def test_a_probe_past_its_deadline_is_evidence(probe_server: tuple[str, grpc.Channel]) -> None:
    # Every probe now takes 0.9 s (a cloud far away, or stalled); the estimate expects a
    # few ms. Each probe misses its deadline (the 0.5 s floor), and each miss bounds the
    # figure it tests: the canaries each direction's rate, the tiny probe the RTT.
    monitor = monitor_for(probe_server)
    seed(monitor, FAST)
    assert monitor.probe_if_idle() == 3
    got = monitor.current()
    assert got.up_mbps < 0.3 and got.down_mbps < 0.3, got
    assert got.rtt_ms >= 450, got
    for size in (64, monitor.estimator.canary_bytes):
        assert monitor.estimator.expected_s(size, 64) >= 0.45
    assert monitor.estimator.changes == 3


def test_spans_see_competing_work() -> None:
    activity = _Activity()
    alone = Span(activity, "call")
    alone.close()
    assert not alone.contended

    first = Span(activity, "call")
    second = Span(activity, "call")  # began while the first ran
    first.close()
    second.close()
    assert first.contended and second.contended

    probe = Span(activity, None)
    probe.close()
    assert not probe.contended, "a probe alone is not work of its own"

    # A call past its budget while its request, then the client's next ones, run
    # locally one at a time: no competition for the network's time.
    late = Span(activity, "call")
    for _ in range(3):
        Span(activity, "local").close()
    late.close()
    assert not late.contended
    # Concurrent requests running local units side by side crowd the CPUs.
    probe = Span(activity, None)
    one, two = Span(activity, "local"), Span(activity, "local")
    one.close()
    two.close()
    probe.close()
    assert probe.contended
    assert Span(activity, None).contended is False, "nothing runs now"
    # A probe cut by a cloud call: that call is not what delayed the probe.
    probe = Span(activity, None)
    cutter = Span(activity, "call")
    assert probe.contended and not probe.contended_but(1)
    cutter.close()


def test_busy_and_computing_mark_calls_contended() -> None:
    monitor = LinkMonitor(LinkSettings(probe=False))
    with monitor.busy() as span:
        pass
    assert not span.contended
    with monitor.busy() as span, monitor.computing():
        pass
    assert not span.contended, "one run of local units at a time"
    with monitor.busy() as span, monitor.computing(), monitor.computing():
        pass
    assert span.contended
    with monitor.busy() as span, monitor.busy():
        pass
    assert span.contended
