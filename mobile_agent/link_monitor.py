"""The agent's view of its link: estimate it, emulate it if asked, price energy, report it.

Why here and not in the scheduler: only the phone sees the link. Every cloud Execute
call is an observation for free (bytes each way, wall time, the server's own time from
the reply): :meth:`LinkMonitor.after_call` feeds it to a
:class:`~collabdnn.measure.linkest.LinkEstimator`. When no traffic has flowed for a while the
monitor's thread sends the estimator's probe calls to the cloud's probe service: every
``probe_idle_s`` while the plan uses the cloud (so a request finds the right plan
waiting), every ``probe_mobile_s`` while it does not (so a link that recovers is
noticed although nothing is offloaded). The estimate (and the battery) is reported to
the scheduler every ``report_s`` seconds, and at once when it moved by
``report_change``; a scheduler that is away costs a debug line and a growing back-off,
never a failed request.

Only the link's share of a call's time is fed to the estimator: the call's wall time
less the server's own time (``server_ms`` in the reply); the agent's encoding and
decoding are outside the timed part. What neither side can subtract is waiting for a
core, a worker thread or a turn on the link while other requests run, so every
measured call or probe is a :class:`Span` that says whether other work overlapped it
(another cloud call or profiling, or local units of concurrent requests): such a *contended*
observation only ever raises the estimate (see :mod:`collabdnn.measure.linkest`), so that
CPU contention is not read as a slow link.

Probes climb a ladder (:meth:`~collabdnn.measure.linkest.LinkEstimator.probe_ladder`): each
round starts with small canaries and grows towards ``probe_target_s`` of airtime at the
current estimate only while each step takes what the estimate predicts; every probe's
deadline is ``probe_deadline_factor`` times its expected time (at least
``probe_min_deadline_s``), and a probe that times out or is cut is evidence too (the
link is slower than its bytes over the time it had). A link that dropped while idle is
thus seen by the next round's canaries and reported at once (a change of
``report_change``), and probing takes at most ``probe_share`` of the time.

With ``emulate`` set, every cloud call and probe is delayed by a
:class:`~collabdnn.measure.emulated.TokenBucketShaper` (the link's airtime plus RTT), for runs
that cannot shape a real link with tc; results then say ``emulated_link``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import grpc

from collabdnn.backoff import Backoff
from collabdnn.measure.emulated import TokenBucketShaper
from collabdnn.measure.linkest import BackgroundFits, LinkEstimator, Probe
from collabdnn.planning.energy import PowerModel, battery_fraction, power_model, result_energy_mj
from collabdnn.planning.link import LINK_PRESETS, Link, LinkEstimate
from collabdnn.planning.scheduling import relative_change
from collabdnn.services import LinkReport
from collabdnn.wire.stubs import SchedulerStub

if TYPE_CHECKING:
    from collabdnn.results import Transfer, UnitTiming
    from collabdnn.transport.probe import ProbeClient
    from mobile_agent.cloud_client import CloudCall

log = logging.getLogger(__name__)

__all__ = ["LinkMonitor", "LinkSettings", "Span"]


@dataclass(frozen=True)
class LinkSettings:
    """How the agent estimates, emulates and reports its link (see the module doc)."""

    network: str = "wifi"  # radio power model, and the prior's preset
    prior: Link | None = None  # assumed before measuring; default: the network's preset
    power: PowerModel | None = None  # default: power_model(network)
    emulate: Link | None = None  # in-process shaper on cloud sends; None = real link
    scheduler: str = ""  # HOST:PORT; "" = no reports
    report_s: float = 2.0
    report_change: float = 0.1  # relative change that is reported at once
    report_timeout_s: float = 2.0
    probe: bool = True
    probe_idle_s: float = 1.0
    probe_mobile_s: float = 10.0
    # Airtime of the largest probe at the current estimate. Small: a link that drops
    # while it is in flight still carries its bytes (already in the socket buffers) at
    # the new rate, 5 s at 1/100 of it, delaying whatever follows.
    probe_target_s: float = 0.05
    probe_timeout_s: float = 10.0  # upper bound of a probe's deadline
    probe_deadline_factor: float = 10.0  # deadline: this times the expected time ...
    probe_min_deadline_s: float = 0.5  # ... and at least this
    probe_share: float = 0.1  # at most this share of the time is spent probing
    window: int = 8  # observations fitted: small, so that a new link shows within calls
    alpha: float = 0.5  # EWMA weight of each new fit
    max_age_s: float = 30.0
    battery: float | None = None  # configured battery fraction (a real battery wins)
    tick_s: float = 0.1
    max_backoff_s: float = 30.0

    def prior_link(self) -> Link:
        return self.prior or replace(LINK_PRESETS[self.network], network=self.network)


class _Activity:
    """The agent's work in progress: cloud calls (and profiling), and runs of local
    units; ``crowded`` counts the times local runs reached ``crowd`` at once."""

    def __init__(self, crowd: int = 2) -> None:
        self._lock = threading.Lock()
        self.crowd = crowd
        self.calls = 0
        self.call_starts = 0
        self.local = 0
        self.crowded = 0

    def snapshot(self) -> tuple[int, int, int, int]:
        with self._lock:
            return self.calls, self.call_starts, self.local, self.crowded

    def enter(self, kind: str) -> tuple[int, int, int, int]:
        with self._lock:
            before = (self.calls, self.call_starts, self.local, self.crowded)
            if kind == "call":
                self.calls += 1
                self.call_starts += 1
            else:
                self.local += 1
                if self.local >= self.crowd:
                    self.crowded += 1
            return before

    def leave(self, kind: str) -> None:
        with self._lock:
            if kind == "call":
                self.calls -= 1
            else:
                self.local -= 1


class Span:
    """One measured stretch (a cloud call, a probe): did other work compete with it?

    Contended when another cloud call (or profiling) overlapped it, which shares the
    link, the cloud's threads and the agent's CPUs, or when local units ran at least
    ``crowd`` (2) at once meanwhile (concurrent requests crowding the CPUs). One run of
    local units at a time does not count: a request that finishes locally while its
    call past the budget is still out, or a client's sequential requests, leave the
    network's time alone. ``kind``: ``"call"``, ``"local"`` (the span is such work
    itself) or None (a probe: measured, not work). Frozen by :meth:`close`.
    """

    def __init__(self, activity: _Activity, kind: str | None) -> None:
        self._activity, self._kind = activity, kind
        before = activity.enter(kind) if kind else activity.snapshot()
        self._calls, self._starts, self._local, self._crowded = before
        self._closed: bool | None = None

    @property
    def contended(self) -> bool:
        if self._closed is not None:
            return self._closed
        return self.contended_but(0)

    def contended_but(self, calls_started: int) -> bool:
        """Contended, not counting ``calls_started`` calls that began meanwhile (the call
        that cut a probe)."""
        _, starts, _, crowded = self._activity.snapshot()
        own = int(self._kind == "call") + calls_started
        return (
            self._calls > 0
            or starts - self._starts > own
            or self._local >= self._activity.crowd
            or crowded > self._crowded
        )

    def close(self) -> None:
        if self._closed is None:
            self._closed = self.contended
            if self._kind:
                self._activity.leave(self._kind)


@dataclass
class LinkMonitor:
    """Estimator, optional emulated shaper, energy pricing and the reporting thread."""

    settings: LinkSettings = field(default_factory=LinkSettings)
    # channel_for(address) -> a channel (the agent's pool: TLS, token, limits)
    channel_for: Callable[[str], grpc.Channel] | None = None
    cloud: str = ""

    def __post_init__(self) -> None:
        s = self.settings
        self.prior = s.prior_link()
        self.power = s.power or power_model(s.network)
        self.shaper = TokenBucketShaper(s.emulate) if s.emulate else None
        self.estimator = LinkEstimator(
            self.prior, window=s.window, alpha=s.alpha, idle_s=s.probe_idle_s,
            max_age_s=s.max_age_s, probe_target_s=s.probe_target_s,
        )  # fmt: skip
        self.fits = BackgroundFits(self.estimator)  # calls are fitted off the request path
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._uses_cloud: Callable[[], bool] = lambda: True
        self._last_probe = -float("inf")
        self._probed_once = False
        self._probe_backoff = Backoff(s.max_backoff_s)
        self._activity = _Activity()  # what makes an observation contended
        self._probe_quiet_until = -float("inf")  # keeps probing within probe_share
        self._report_backoff = Backoff(s.max_backoff_s)
        self._reported: Link | None = None
        self._next_report = 0.0
        self._logged: Link | None = None
        self.reports = 0  # successful link reports (tests, Info)
        self._calls = 0  # cloud calls in flight: no probing meanwhile
        self._calls_lock = threading.Lock()
        # Set once a fleet scheduler took a heartbeat (mobile_agent.heartbeat): the link
        # and battery then travel in the heartbeats, not in ReportLink/ReportBattery.
        self.fleet = False

    # -- what the agent asks ----------------------------------------------------------

    @property
    def emulated(self) -> bool:
        return self.shaper is not None

    def current(self) -> Link:
        """The estimate, or the prior until something was measured."""
        return self.estimator.estimate() or self.prior

    def estimate(self) -> LinkEstimate:
        """The current link with how many observations back it (what Info reports),
        every call made so far fitted."""
        self.fits.flush()
        return LinkEstimate(self.current(), self.estimator.observations, self.emulated)

    @contextlib.contextmanager
    def busy(self) -> Iterator[Span]:
        """No probes meanwhile: a cloud call is on the link (probes would compete with it
        and, sized for the old link, take seconds on a link that just got slow), or the
        agent is profiling itself (probes would disturb the timings). Yields the call's
        :class:`Span` (pass ``span.contended`` to :meth:`after_call`)."""
        with self._calls_lock:
            self._calls += 1
        span = Span(self._activity, "call")
        try:
            yield span
        finally:
            span.close()
            with self._calls_lock:
                self._calls -= 1

    @contextlib.contextmanager
    def computing(self) -> Iterator[None]:
        """Local units run meanwhile: when several run at once they crowd the CPUs, and
        what is measured meanwhile (cloud calls, probes) is contended. Probes go on."""
        span = Span(self._activity, "local")
        try:
            yield
        finally:
            span.close()

    def _busy(self) -> bool:
        return self._calls > 0

    def after_call(self, call: CloudCall, contended: bool = False) -> CloudCall:
        """Account for one Execute call: emulated airtime first, then an observation.

        With the emulated shaper the call is delayed here by the link's airtime and RTT
        (after the real call: the agent waits for the reply either way, so the
        end-to-end time is the same), and that delay counts as network time.
        ``contended``: other work overlapped the call (its :class:`Span`).
        """
        delay_ms = self._emulate(call.bytes_up, call.bytes_down)
        wall_ms = call.rpc_ms + delay_ms
        self.fits.observe(
            call.bytes_up, call.bytes_down, wall_ms, call.reply.server_ms, contended=contended
        )
        return replace(call, rpc_ms=wall_ms) if delay_ms else call

    def energy_mj(self, units: Sequence[UnitTiming], transfers: Sequence[Transfer]) -> float:
        """Modelled mobile energy of a classification (see energy.result_energy_mj)."""
        return result_energy_mj(units, transfers, self.power, self.current())

    def _emulate(self, bytes_up: int, bytes_down: int) -> float:
        if self.shaper is None:
            return 0.0
        return (self.shaper.wait(bytes_up, "up") + self.shaper.wait(bytes_down, "down")) * 1e3

    # -- the thread -------------------------------------------------------------------

    def start(self, uses_cloud: Callable[[], bool]) -> None:
        """Start probing and reporting; ``uses_cloud()`` says whether the plan offloads."""
        self._uses_cloud = uses_cloud
        if self._thread is not None:
            return
        if not (self.settings.scheduler or (self.cloud and self.settings.probe)):
            return
        self._thread = threading.Thread(target=self._loop, name="link-monitor", daemon=True)
        self._thread.start()
        log.info(
            "link monitor: prior %s%s; %s; %s", _fmt(self.prior),
            f", EMULATED link {_fmt(self.settings.emulate)}" if self.settings.emulate else "",
            f"probing {self.cloud} when idle" if self.cloud and self.settings.probe
            else "no probing",
            f"reporting to scheduler {self.settings.scheduler} every "
            f"{self.settings.report_s:g} s" if self.settings.scheduler else "no scheduler",
        )  # fmt: skip

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    def _loop(self) -> None:
        while not self._stop.wait(self.settings.tick_s):
            try:
                self.probe_if_idle()
                self.report_if_due()
                self._log_if_changed()
            except Exception:  # never let the monitor die: requests do not depend on it
                log.exception("link monitor step failed")

    def probe_if_idle(self, now: float | None = None) -> int:
        """Send one round of probes when the link has been idle long enough; returns
        how many were sent (0: not due, traffic flowing, or the cloud is away)."""
        s = self.settings
        if not (self.cloud and s.probe and self.channel_for):
            return 0
        now = time.monotonic() if now is None else now
        interval = s.probe_idle_s if self._uses_cloud() else s.probe_mobile_s
        if now - self._last_probe < interval or not self._probe_backoff.ready(now):
            return 0
        if now < self._probe_quiet_until:
            return 0
        if self._calls:  # traffic is flowing: the calls themselves are observations
            return 0
        self.fits.flush()  # the calls before come first
        ladder = self.estimator.probe_ladder(now)
        if not ladder:
            return 0
        self._last_probe = now
        from collabdnn.transport.probe import ProbeClient

        client = ProbeClient.over(self.channel_for(self.cloud), timeout_s=s.probe_timeout_s)
        begin = time.monotonic()
        try:
            if not self._probed_once:  # warm the connection; not fed to the estimator
                tiny = self.estimator.tiny_bytes
                client.probe(tiny, tiny, s.probe_timeout_s, self._busy)
                self._probed_once = True
            sent = self._climb(client, ladder)
        except grpc.RpcError as exc:
            delay = self._probe_backoff.failed(time.monotonic())
            (log.info if self._probe_backoff.failures == 1 else log.debug)(
                "link probe to %s failed (%s); next try in %.1f s",
                self.cloud, exc.code().name, delay,
            )  # fmt: skip
            return 0
        finally:
            elapsed = time.monotonic() - begin
            self._probe_quiet_until = time.monotonic() + elapsed * (1 / s.probe_share - 1)
        if sent:
            self._probe_backoff.ok()
            log.debug("probed %s (%d probes): %s", self.cloud, sent, _fmt(self.current()))
        return sent

    def _deadline(self, probe: Probe) -> float:
        s = self.settings
        expected = self.estimator.expected_s(probe.bytes_up, probe.bytes_down)
        return min(
            s.probe_timeout_s, max(s.probe_min_deadline_s, s.probe_deadline_factor * expected)
        )

    def _climb(self, client: ProbeClient, ladder: list[Probe]) -> int:
        """Send one ladder (see the module doc); returns how many probes went out.

        A direction stops climbing at its first step that was slower than predicted or
        disturbed by other work. A probe that timed out bounds the estimate; one larger
        than a canary then leaves only the canaries to send (the rest was sized for a
        link that is not there), so that they measure the new link at once. A probe cut
        because a cloud call started bounds the estimate too, and ends the round.
        """
        from collabdnn.transport.probe import ProbeCancelled

        queue, stopped, sent, rechecked = list(ladder), set(), 0, False
        canary = self.estimator.canary_bytes
        while queue:
            probe = queue.pop(0)
            if probe.purpose in stopped and not probe.canary:
                continue
            deadline = self._deadline(probe)
            span = Span(self._activity, None)
            tick = time.perf_counter()
            try:
                result = client.probe(probe.bytes_up, probe.bytes_down, deadline, self._busy)
            except (ProbeCancelled, grpc.RpcError) as exc:
                cut = isinstance(exc, ProbeCancelled)
                clean = not span.contended_but(1 if cut else 0)  # the call that cut it
                span.close()
                if not cut and exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED:  # type: ignore[union-attr]
                    raise
                sent += 1
                elapsed = time.perf_counter() - tick
                bounded = clean and self.estimator.slower_than(
                    probe.bytes_up, probe.bytes_down, elapsed
                )
                (log.info if bounded else log.debug)(
                    "link probe of %d/%d bytes %s after %.2f s (deadline %.2f s)%s",
                    probe.bytes_up, probe.bytes_down,
                    "cut by a cloud call" if cut else "not answered", elapsed, deadline,
                    f": the link is slower than that, now {_fmt(self.current())}"
                    if bounded else "",
                )  # fmt: skip
                if cut:
                    return sent
                stopped.add(probe.purpose)
                if not rechecked and max(probe.bytes_up, probe.bytes_down) > canary:
                    rechecked = True
                    queue = [p for p in ladder if p.canary]
                continue
            span.close()
            sent += 1
            delay_ms = self._emulate(result.bytes_up, result.bytes_down)
            verdict = self.estimator.observe(
                result.bytes_up, result.bytes_down, result.wall_ms + delay_ms,
                result.server_ms, contended=span.contended,
            )  # fmt: skip
            if verdict == "slower" or span.contended:
                stopped.add(probe.purpose)
        return sent

    def report_if_due(self, now: float | None = None) -> bool:
        """Report the estimate and battery to the scheduler when due; True when sent."""
        s = self.settings
        if not (s.scheduler and self.channel_for) or self.fleet:
            return False
        now = time.monotonic() if now is None else now
        self.fits.flush()
        estimate = self.estimator.estimate()
        if estimate is None or not self._report_backoff.ready(now):
            return False
        moved = self._reported is None or relative_change(self._reported, estimate) >= (
            s.report_change
        )
        if now < self._next_report and not moved:
            return False
        stub = SchedulerStub(self.channel_for(s.scheduler))
        report = LinkReport(
            LinkEstimate(estimate, self.estimator.observations, self.emulated),
            source="mobile agent" + (" (emulated link)" if self.emulated else ""),
        )
        try:
            stub.report_link(report, timeout=s.report_timeout_s)
            stub.report_battery(battery_fraction(s.battery), timeout=s.report_timeout_s)
        except grpc.RpcError as exc:
            delay = self._report_backoff.failed(time.monotonic())
            log.debug(
                "report to scheduler %s failed (%s); next try in %.1f s; keeping the current plan",
                s.scheduler,
                exc.code().name,
                delay,
            )
            return False
        self._report_backoff.ok()
        self._reported, self._next_report = estimate, now + s.report_s
        self.reports += 1
        return True

    def _log_if_changed(self) -> None:
        estimate = self.estimator.estimate()
        if estimate is None:
            return
        if self._logged is None or relative_change(self._logged, estimate) >= 0.2:
            log.info(
                "link estimate: %s (%d observations%s)",
                _fmt(estimate),
                self.estimator.observations,
                ", emulated link" if self.emulated else "",
            )
            self._logged = estimate


def _fmt(link: Link | None) -> str:
    if link is None:
        return "-"
    return (
        f"up {link.up_mbps:.2f} down {link.down_mbps:.2f} Mbit/s, rtt {link.rtt_ms:.1f} ms "
        f"({link.network})"
    )
