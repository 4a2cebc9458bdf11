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

from collabdnn.measure.emulated import TokenBucketShaper
from collabdnn.measure.linkest import LinkEstimator
from collabdnn.planning.energy import PowerModel, battery_fraction, power_model, result_energy_mj
from collabdnn.planning.link import LINK_PRESETS, Link, LinkEstimate
from collabdnn.planning.scheduling import relative_change
from collabdnn.services import LinkReport
from collabdnn.wire.stubs import SchedulerStub

if TYPE_CHECKING:
    from collabdnn.results import Transfer, UnitTiming
    from mobile_agent.cloud_client import CloudCall

log = logging.getLogger(__name__)

__all__ = ["LinkMonitor", "LinkSettings"]


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
    probe_target_s: float = 0.1  # airtime per probe at the current estimate
    probe_timeout_s: float = 10.0  # upper bound; each probe gets 20x its expected airtime
    probe_share: float = 0.1  # at most this share of the time is spent probing
    window: int = 8  # observations fitted: small, so that a new link shows within calls
    alpha: float = 0.5  # EWMA weight of each new fit
    max_age_s: float = 30.0
    battery: float | None = None  # configured battery fraction (a real battery wins)
    tick_s: float = 0.1
    max_backoff_s: float = 30.0

    def prior_link(self) -> Link:
        return self.prior or replace(LINK_PRESETS[self.network], network=self.network)


@dataclass
class _Backoff:
    """Exponential back-off after failures: 0.5 s, 1 s, 2 s, ... up to ``cap``."""

    cap: float
    failures: int = 0
    until: float = 0.0

    def ready(self, now: float) -> bool:
        return now >= self.until

    def failed(self, now: float) -> float:
        self.failures += 1
        delay = min(self.cap, 0.5 * 2 ** (self.failures - 1))
        self.until = now + delay
        return delay

    def ok(self) -> None:
        self.failures, self.until = 0, 0.0


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
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._uses_cloud: Callable[[], bool] = lambda: True
        self._last_probe = -float("inf")
        self._probed_once = False
        self._probe_backoff = _Backoff(s.max_backoff_s)
        # Probe sizes are scaled by this: small after a start or a failed probe (the link
        # may have dropped far below the estimate), doubling after each good round.
        self._probe_scale = 1 / 16
        self._probe_quiet_until = -float("inf")  # keeps probing within probe_share
        self._report_backoff = _Backoff(s.max_backoff_s)
        self._reported: Link | None = None
        self._next_report = 0.0
        self._logged: Link | None = None
        self.reports = 0  # successful link reports (tests, Info)
        self._calls = 0  # cloud calls in flight: no probing meanwhile
        self._calls_lock = threading.Lock()

    # -- what the agent asks ----------------------------------------------------------

    @property
    def emulated(self) -> bool:
        return self.shaper is not None

    def current(self) -> Link:
        """The estimate, or the prior until something was measured."""
        return self.estimator.estimate() or self.prior

    def estimate(self) -> LinkEstimate:
        """The current link with how many observations back it (what Info reports)."""
        return LinkEstimate(self.current(), self.estimator.observations, self.emulated)

    @contextlib.contextmanager
    def busy(self) -> Iterator[None]:
        """No probes meanwhile: a cloud call is on the link (probes would compete with it
        and, sized for the old link, take seconds on a link that just got slow), or the
        agent is profiling itself (probes would disturb the timings)."""
        with self._calls_lock:
            self._calls += 1
        try:
            yield
        finally:
            with self._calls_lock:
                self._calls -= 1

    def _scaled(self, nbytes: int) -> int:
        tiny = self.estimator.tiny_bytes
        return nbytes if nbytes <= tiny else max(tiny, int(nbytes * self._probe_scale))

    def _busy(self) -> bool:
        return self._calls > 0

    def after_call(self, call: CloudCall) -> CloudCall:
        """Account for one Execute call: emulated airtime first, then an observation.

        With the emulated shaper the call is delayed here by the link's airtime and RTT
        (after the real call: the agent waits for the reply either way, so the
        end-to-end time is the same), and that delay counts as network time.
        """
        delay_ms = self._emulate(call.bytes_up, call.bytes_down)
        wall_ms = call.rpc_ms + delay_ms
        self.estimator.observe(call.bytes_up, call.bytes_down, wall_ms, call.reply.server_ms)
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
        probes = self.estimator.probe_plan(now)
        if not probes:
            return 0
        self._last_probe = now
        from collabdnn.transport.probe import ProbeCancelled, ProbeClient

        client = ProbeClient.over(self.channel_for(self.cloud), timeout_s=s.probe_timeout_s)
        # Airtime the estimate expects for the largest probe: probes are sized for
        # probe_target_s at full scale (at least 5 RTTs; see LinkEstimator.probe_plan).
        expected_s = max(s.probe_target_s, 5 * self.current().rtt_ms / 1e3) * self._probe_scale
        timeout_s = min(s.probe_timeout_s, max(1.0, 20 * expected_s))
        begin = time.monotonic()
        try:
            if not self._probed_once:  # warm the connection; not fed to the estimator
                client.probe(probes[-1].bytes_up, probes[-1].bytes_down, timeout_s, self._busy)
                self._probed_once = True
            for probe in probes:
                up, down = (self._scaled(n) for n in (probe.bytes_up, probe.bytes_down))
                result = client.probe(up, down, timeout_s, self._busy)
                delay_ms = self._emulate(result.bytes_up, result.bytes_down)
                self.estimator.observe(
                    result.bytes_up, result.bytes_down, result.wall_ms + delay_ms, result.server_ms
                )
        except ProbeCancelled:
            log.debug("link probe cancelled: a cloud call started")
            return 0
        except grpc.RpcError as exc:
            delay = self._probe_backoff.failed(time.monotonic())
            # The link may have dropped far below the estimate: much smaller next time.
            self._probe_scale = max(1 / 4096, min(self._probe_scale, 1 / 16) / 8)
            (log.info if self._probe_backoff.failures == 1 else log.debug)(
                "link probe to %s failed (%s, deadline %.1f s); next try in %.1f s, smaller",
                self.cloud,
                exc.code().name,
                timeout_s,
                delay,
            )
            return 0
        finally:
            elapsed = time.monotonic() - begin
            self._probe_quiet_until = time.monotonic() + elapsed * (1 / s.probe_share - 1)
        self._probe_backoff.ok()
        self._probe_scale = min(1.0, self._probe_scale * 2)
        log.debug("probed %s: %s", self.cloud, _fmt(self.current()))
        return len(probes)

    def report_if_due(self, now: float | None = None) -> bool:
        """Report the estimate and battery to the scheduler when due; True when sent."""
        s = self.settings
        if not (s.scheduler and self.channel_for):
            return False
        now = time.monotonic() if now is None else now
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
