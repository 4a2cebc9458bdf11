"""Call budgets and idle link probes, in process: each cloud call gets a deadline from
its segment's recent times, and probes give way to real traffic and keep to their share
of airtime."""

from __future__ import annotations

import pytest

from mobile_agent.budget import CallBudget


def test_budget_is_the_flat_timeout_before_a_segment_was_seen() -> None:
    budget = CallBudget(factor=3, floor_ms=250, cap_s=30)
    assert budget.deadline_s(3, 9, 1000) == 30
    budget.observe(3, 9, 1000, 40.0)
    assert budget.deadline_s(0, 3, 1000) == 30  # another segment: still unknown


def test_budget_is_factor_times_expected_with_a_floor_and_a_cap() -> None:
    budget = CallBudget(factor=3, floor_ms=250, cap_s=2)
    budget.observe(3, 9, 1000, 40.0)
    assert budget.deadline_s(3, 9, 1000) == pytest.approx(0.25)  # 120 ms < floor
    budget.observe(5, 12, 1000, 200.0)
    assert budget.deadline_s(5, 12, 1000) == pytest.approx(0.6)
    budget.observe(0, 12, 1000, 5000.0)
    assert budget.deadline_s(0, 12, 1000) == 2  # capped by the flat timeout


def test_budget_grows_with_the_bytes_sent_and_after_a_miss() -> None:
    budget = CallBudget(factor=2, floor_ms=0, cap_s=30, alpha=0.5)
    budget.observe(0, 5, 100_000, 100.0)
    assert budget.deadline_s(0, 5, 300_000) == pytest.approx(0.6)  # 3x the bytes
    assert budget.deadline_s(0, 5, 50_000) == pytest.approx(0.2)  # never below usual
    budget.missed(0, 5, 100_000, 0.2)  # counted as 200 ms (a lower bound)
    assert budget.expected_ms(0, 5, 100_000) == pytest.approx(150.0)
    budget.observe(0, 5, 100_000, 50.0)
    assert budget.expected_ms(0, 5, 100_000) == pytest.approx(100.0)


def test_budget_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        CallBudget(factor=0)


def test_a_probe_is_cancelled_when_real_traffic_starts() -> None:
    import time

    from collabdnn.transport.probe import ProbeCancelled, ProbeClient, serve

    server, port = serve("127.0.0.1:0", extra_delay_ms=3000)  # a probe that takes 3 s
    try:
        with ProbeClient(f"127.0.0.1:{port}", timeout_s=10) as client:
            begin = time.monotonic()
            with pytest.raises(ProbeCancelled):
                client.probe(64, 64, cancel_if=lambda: time.monotonic() - begin > 0.2)
            assert time.monotonic() - begin < 2.0
    finally:
        server.stop(0)
