"""The shared back-off (collabdnn.backoff): alone, as the scheduler's pushers use it,
and in the agent's heartbeat loop."""

from __future__ import annotations

import logging
import socket
import time

import grpc
import pytest

from collabdnn.backoff import Backoff
from mobile_agent.heartbeat import AgentFacts, Heartbeat, HeartbeatSettings
from mobile_agent.link_monitor import LinkMonitor
from scheduler.core import push_backoff


def test_backoff_doubles_up_to_its_cap_and_resets() -> None:
    backoff = Backoff(cap=3.0)
    assert backoff.ready(0.0)
    assert [backoff.failed(10.0) for _ in range(4)] == [0.5, 1.0, 2.0, 3.0]
    assert backoff.failures == 4 and not backoff.ready(12.9) and backoff.ready(13.0)
    backoff.ok()
    assert backoff.ready(0.0) and backoff.failed(0.0) == 0.5


def test_backoff_starts_from_first() -> None:
    backoff = Backoff(cap=1.0, first=0.1)
    assert [backoff.failed(0.0) for _ in range(5)] == [0.1, 0.2, 0.4, 0.8, 1.0]
    assert backoff.until == 1.0 and backoff.failures == 5
    backoff.ok()
    assert backoff.failed(0.0) == 0.1


def test_the_schedulers_push_backoff_is_a_quarter_second_doubling_to_ten() -> None:
    backoff = push_backoff()
    delays = [backoff.failed(0.0) for _ in range(8)]
    assert delays == [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_a_heartbeat_to_an_absent_scheduler_backs_off(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{sock.getsockname()[1]}"
    channels: list[grpc.Channel] = []

    def channel_for(target: str) -> grpc.Channel:
        channels.append(grpc.insecure_channel(target))
        return channels[-1]

    caplog.set_level(logging.DEBUG, logger="mobile_agent.heartbeat")
    beat = Heartbeat(HeartbeatSettings(address, timeout_s=1.0), channel_for, LinkMonitor())
    beat.start(AgentFacts("alexnet", "h", 8, lambda: "", lambda: 0), "127.0.0.1:1")
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            waits = [m for m in caplog.messages if "failed (UNAVAILABLE)" in m]
            if len(waits) >= 3:
                break
            time.sleep(0.05)
    finally:
        beat.stop()
        for channel in channels:
            channel.close()
    assert [m.rsplit("next try in ", 1)[1] for m in waits[:3]] == ["0.5 s", "1.0 s", "2.0 s"]
    assert beat.beats == 0 and not beat.monitor.fleet


def test_thousands_of_failures_stay_at_the_cap() -> None:
    # an agent away for hours: the doubling must not overflow a float (2.0**1024)
    backoff = Backoff(cap=10.0, first=0.25)
    delays = [backoff.failed(0.0) for _ in range(5000)]
    assert delays[-1] == 10.0 and backoff.failures == 5000 and backoff.until == 10.0
