"""Estimate the live link (uplink, downlink, RTT) from the cloud calls the agent makes.

Why: the planner's answer depends on the link, and a phone's link changes as it moves;
assumed figures go stale.  Every cloud call already measures the link for free: the
agent knows the bytes it sent and received and the wall time, and the reply reports the
server's own compute time, so

    network time = wall - server compute = RTT + bytes_up / B_up + bytes_down / B_down

is one linear equation in (RTT, 1/B_up, 1/B_down).  A window of recent calls is fitted
by weighted non-negative least squares.  Real traffic often cannot separate the three
(the same split sends the same sizes every time), so the fit only solves for what the
window can identify and keeps the rest at the current estimate (or the prior):

* both sizes vary independently: all three figures are fitted;
* only one direction varies (or both together): that direction's rate and the RTT;
* nothing varies: the excess over what the current estimate predicts is attributed to
  the dominant direction (the one with the larger expected airtime), or to the RTT when
  the payloads are too small for airtime to matter.

Fitted figures are smoothed with an EWMA so that one slow call does not trigger a
re-plan.  When no traffic has flowed for ``idle_s``, :meth:`LinkEstimator.probe_plan`
says which probe payloads to send (large up/tiny down for the uplink, tiny up/large
down for the downlink, tiny/tiny for the RTT), sized from the current estimate so that
airtime dominates the RTT but a probe stays short.

A link that changes abruptly (a drop from 100 to 1 Mbit/s) must not wait for the window
to fill with new calls: an observation whose network time is ``surprise_factor`` times
off what the estimate predicts (and off by at least ``surprise_floor_ms``) is a
*surprise*; ``confirm`` surprises of the same sign among the last ``confirm_window``
observations, or one that is ``strong_factor`` times and ``strong_floor_ms`` off (farther
than a probe that misses its deadline), mean the link changed, and the observations
before the first of them, and the smoothing, are forgotten. Two kinds of evidence that
are not measurements bound the estimate instead of being fitted:

* a call (or probe) that had not finished after ``elapsed_s`` (:meth:`LinkEstimator.slower_than`:
  a timed-out or cut probe) shows that the link is slower than ``bytes / elapsed``;
* an observation made while other work competed for the CPUs or the link (``contended``:
  concurrent requests on the agent) may have waited for a core, a thread or its turn on
  the link, so its time is an upper bound on the network time: it can show that the
  link is *faster* than estimated, never that it is slower. CPU contention is therefore
  never read as a slow link.

Pure logic, no gRPC: :mod:`collabdnn.transport.probe` sends the probes, the mobile agent feeds
its Execute calls.  Thread-safe: the agent's request threads observe concurrently.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from collabdnn.planning.link import LINK_PRESETS, Link

__all__ = ["BackgroundFits", "LinkEstimator", "Observation", "Probe"]

log = logging.getLogger(__name__)

_BITS = 8.0
# Rates are clamped to this range so that a degenerate fit never yields 0 or infinity.
_MIN_MBPS = 0.01
_MAX_MBPS = 100_000.0


@dataclass(frozen=True)
class Observation:
    """One cloud call: payload bytes each way and the time the network took (s)."""

    bytes_up: int
    bytes_down: int
    network_s: float
    at: float  # clock() when it was recorded


@dataclass(frozen=True)
class Probe:
    """A probe call to make: send ``bytes_up``, ask for ``bytes_down`` back."""

    bytes_up: int
    bytes_down: int
    purpose: str  # "uplink", "downlink" or "rtt"
    canary: bool = False  # the first, small step of a ladder (see probe_ladder)


def _coef(mbps: float) -> float:
    """Seconds per byte at ``mbps``."""
    return _BITS / (mbps * 1e6)


def _mbps(coef: float) -> float:
    if coef <= 0:
        return _MAX_MBPS
    return float(min(max(_BITS / float(coef) / 1e6, _MIN_MBPS), _MAX_MBPS))


def _nnls_subset(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, float] | None:
    """Weighted non-negative least squares by enumerating active sets (3 unknowns at most).

    Exact for this size and dependency-free (no scipy).  Returns the coefficients and
    the weighted residual norm, or None when nothing fits (no rows).
    """
    n, k = x.shape
    if n == 0:
        return None
    xw = x * w[:, None]
    yw = y * w
    scale = np.maximum(np.abs(xw).max(axis=0), 1e-300)
    xs = xw / scale
    best: tuple[np.ndarray, float] | None = None
    for size in range(k, -1, -1):
        for cols in itertools.combinations(range(k), size):
            coef = np.zeros(k)
            if cols:
                sol, *_ = np.linalg.lstsq(xs[:, cols], yw, rcond=None)
                if np.any(sol < 0):
                    continue
                coef[list(cols)] = sol / scale[list(cols)]
            resid = float(np.linalg.norm(xw @ coef - yw))
            if best is None or resid < best[1] - 1e-15:
                best = (coef, resid)
    return best


class LinkEstimator:
    """Passive and active estimation of (B_up, B_down, RTT); see the module docstring.

    ``prior`` is what is assumed before the data says otherwise (default: the Wi-Fi
    preset); ``window`` and ``max_age_s`` bound the observations fitted; ``alpha`` is
    the EWMA weight of a new fit; ``idle_s`` is how long without traffic before
    :meth:`probe_plan` asks for probes.
    """

    def __init__(
        self,
        prior: Link | None = None,
        *,
        window: int = 24,
        max_age_s: float = 120.0,
        alpha: float = 0.3,
        idle_s: float = 10.0,
        probe_target_s: float = 0.25,
        min_probe_bytes: int = 16 * 1024,
        initial_probe_bytes: int = 64 * 1024,
        max_probe_bytes: int = 8 * 1024 * 1024,
        tiny_bytes: int = 64,
        rtt_payload_bytes: int = 1024,
        canary_bytes: int = 16 * 1024,
        ladder_step: int = 8,
        min_variation: float = 0.25,
        rtt_floor_ms: float = 5.0,
        max_rel_se: float = 0.25,
        surprise_factor: float = 3.0,
        surprise_floor_ms: float = 50.0,
        confirm: int = 2,
        confirm_window: int = 4,
        strong_factor: float = 20.0,
        strong_floor_ms: float = 500.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if window < 1:
            raise ValueError("window must be >= 1")
        if not 0 < alpha <= 1:
            raise ValueError("alpha must be in (0, 1]")
        self.prior = prior or LINK_PRESETS["wifi"]
        self.window = window
        self.max_age_s = max_age_s
        self.alpha = alpha
        self.idle_s = idle_s
        self.probe_target_s = probe_target_s
        self.min_probe_bytes = min_probe_bytes
        self.initial_probe_bytes = initial_probe_bytes
        self.max_probe_bytes = max_probe_bytes
        self.tiny_bytes = tiny_bytes
        self.rtt_payload_bytes = rtt_payload_bytes
        self.canary_bytes = canary_bytes
        self.ladder_step = max(2, ladder_step)
        self.min_variation = min_variation
        self.rtt_floor_ms = rtt_floor_ms
        self.max_rel_se = max_rel_se
        self.surprise_factor = surprise_factor
        self.surprise_floor_s = surprise_floor_ms / 1e3
        self.confirm = confirm
        self.strong_factor = strong_factor
        self.strong_floor_s = strong_floor_ms / 1e3
        self._clock = clock
        self._lock = threading.RLock()
        self._obs: deque[Observation] = deque(maxlen=window)
        # Smoothed (RTT s, s/byte up, s/byte down); None until the data informed it.
        self._smoothed: list[float | None] = [None, None, None]
        self._updates = [0, 0, 0]
        self._last_traffic: float | None = None
        self._probe_round = 0
        self._count = 0
        # The surprise verdict of each recent observation (None: as predicted).
        self._recent: deque[str | None] = deque(maxlen=confirm_window)
        self.changes = 0  # confirmed link changes and applied bounds (tests, logs)

    # -- feeding ---------------------------------------------------------------------

    def observe(
        self,
        bytes_up: int,
        bytes_down: int,
        wall_ms: float,
        server_ms: float,
        *,
        contended: bool = False,
        at: float | None = None,
    ) -> str | None:
        """Record one cloud call (payload bytes each way, wall and server compute ms).

        ``contended``: other work competed with this call (see the module doc); its time
        then only bounds the estimate from the fast side. ``at``: when the call ended
        (``clock()``; default now), for an observation fitted later than it was made
        (:class:`BackgroundFits`). Returns the surprise verdict against the estimate
        before this call: ``"slower"``, ``"faster"`` or None.
        """
        if bytes_up < 0 or bytes_down < 0:
            raise ValueError("byte counts must be >= 0")
        network_s = (float(wall_ms) - float(server_ms)) / 1e3
        now = self._clock() if at is None else at
        with self._lock:
            self._last_traffic = now
            if not math.isfinite(network_s) or network_s <= 0:
                log.debug("ignoring observation with network time %.3f ms", network_s * 1e3)
                return None
            verdict = self._surprise(bytes_up, bytes_down, network_s)
            if contended:
                if verdict == "faster":
                    self._bound(bytes_up, bytes_down, network_s, "faster")
                return verdict
            self._obs.append(Observation(int(bytes_up), int(bytes_down), network_s, now))
            self._count += 1
            self._recent.append(verdict)
            if verdict is not None and (
                sum(v == verdict for v in self._recent) >= self.confirm
                or self._strong(bytes_up, bytes_down, network_s)
            ):
                self._changed(verdict)
            fit = self._fit(now)
            if fit is None:
                return verdict
            values, identified = fit
            for i, (value, known) in enumerate(zip(values, identified, strict=True)):
                if not known:
                    continue
                # Bias-corrected EWMA: a plain mean over the first 1/alpha fits, so
                # that the first (least informed) fit does not linger.
                self._updates[i] += 1
                weight = max(self.alpha, 1.0 / self._updates[i])
                old = self._smoothed[i]
                self._smoothed[i] = value if old is None else weight * value + (1 - weight) * old
            return verdict

    def slower_than(self, bytes_up: int, bytes_down: int, elapsed_s: float) -> bool:
        """A call or probe of these sizes had not finished after ``elapsed_s`` (it timed
        out, or was cut): its network time exceeds that. When that contradicts the
        estimate (a surprise), the direction with the larger payload (or the RTT, when
        both are at most ``rtt_payload_bytes``) is set to the fastest value consistent
        with it, and older observations are forgotten: they describe the link before it
        got slower. True when applied.
        """
        now = self._clock()
        with self._lock:
            self._last_traffic = now
            if self._surprise(bytes_up, bytes_down, elapsed_s) != "slower":
                return False
            self._bound(bytes_up, bytes_down, elapsed_s, "slower")
            return True

    def expected_s(self, bytes_up: int, bytes_down: int) -> float:
        """Network time the estimate (or the prior) predicts for these payloads."""
        with self._lock:
            rtt_s, a, b = self._current()
            return float(rtt_s + bytes_up * a + bytes_down * b)

    def _surprise(self, bytes_up: int, bytes_down: int, network_s: float) -> str | None:
        if all(s is None for s in self._smoothed):
            return None  # nothing measured yet: the prior is no reference
        expected = self.expected_s(bytes_up, bytes_down)
        if network_s - expected > self.surprise_floor_s and network_s > (
            self.surprise_factor * expected
        ):
            return "slower"
        if expected - network_s > self.surprise_floor_s and (
            network_s * self.surprise_factor < expected
        ):
            return "faster"
        return None

    def _strong(self, bytes_up: int, bytes_down: int, network_s: float) -> bool:
        """Farther off than a probe that misses its deadline: confirmed on its own."""
        expected = self.expected_s(bytes_up, bytes_down)
        ratio = max(network_s / expected, expected / network_s) if expected > 0 else math.inf
        return ratio >= self.strong_factor and abs(network_s - expected) >= self.strong_floor_s

    def _changed(self, verdict: str) -> None:
        """Confirmed surprises: keep only the observations since the first of them, and
        let the next fit replace the smoothed figures instead of averaging with them."""
        recent = list(self._recent)
        keep = len(recent) - next(i for i, v in enumerate(recent) if v == verdict)
        for _ in range(len(self._obs) - keep):
            self._obs.popleft()
        self._recent.clear()
        self._updates = [0, 0, 0]
        self.changes += 1
        log.debug("link changed (%s than estimated): refitting from %d calls", verdict, keep)

    def _bound(self, bytes_up: int, bytes_down: int, network_s: float, side: str) -> None:
        """Move the figure these payloads test (the larger one's direction, or the RTT
        for tiny ones) so that it predicts exactly ``network_s`` (the bound), forget the
        window and restart the smoothing."""
        values = list(self._current())
        rtt_s, a, b = values
        air_up, air_down = bytes_up * a, bytes_down * b
        # By size, not by airtime at the estimate: a 16 KB canary's airtime at the old
        # 100 Mbit/s is below the RTT, yet its surprise says the link got slower, and a
        # longer RTT would have shown in the tiny probe of the same round.
        if max(bytes_up, bytes_down) <= self.rtt_payload_bytes:
            values[0] = max(network_s - air_up - air_down, 0.0)
        else:
            col, nbytes, other = (1, bytes_up, air_down) if bytes_up >= bytes_down else (
                2, bytes_down, air_up)  # fmt: skip
            rest = network_s - rtt_s - other
            if rest <= 0:  # faster than even the RTT says: both were too pessimistic
                values[0] = 0.5 * network_s
                rest = max(0.5 * network_s - other, 0.5 * network_s)
            values[col] = rest / nbytes
        for i, (value, before) in enumerate(zip(values, self._current(), strict=True)):
            if value != before:
                self._smoothed[i] = value
        self._obs.clear()
        self._recent.clear()
        self._updates = [0, 0, 0]
        self.changes += 1
        log.debug(
            "link %s than estimated: %d/%d bytes in %.1f ms; bounded", side, bytes_up,
            bytes_down, network_s * 1e3,
        )  # fmt: skip

    def reset(self) -> None:
        """Forget everything observed (e.g. after a network handover)."""
        with self._lock:
            self._obs.clear()
            self._smoothed = [None, None, None]
            self._updates = [0, 0, 0]
            self._last_traffic = None
            self._recent.clear()

    # -- reading ---------------------------------------------------------------------

    def now(self) -> float:
        """The estimator's clock: what ``observe(at=...)`` takes."""
        return self._clock()

    @property
    def observations(self) -> int:
        """How many valid observations were recorded so far."""
        with self._lock:
            return self._count

    def _current(self) -> tuple[float, float, float]:
        prior = (self.prior.rtt_ms / 1e3, _coef(self.prior.up_mbps), _coef(self.prior.down_mbps))
        return tuple(  # type: ignore[return-value]
            p if s is None else s for s, p in zip(self._smoothed, prior, strict=True)
        )

    def estimate(self) -> Link | None:
        """The smoothed link, or None before any observation.

        Figures the data has not informed yet come from the prior.
        """
        with self._lock:
            if all(s is None for s in self._smoothed):
                return None
            rtt_s, a, b = self._current()
            return Link(
                up_mbps=_mbps(a),
                down_mbps=_mbps(b),
                rtt_ms=float(max(rtt_s, 0.0) * 1e3),
                network=self.prior.network,
            )

    def changed_relative(self, old: Link) -> float:
        """Largest relative change of up, down and RTT between ``old`` and the estimate.

        RTT changes are relative to ``max(old RTT, rtt_floor_ms)`` so that 1 ms -> 2 ms on
        a LAN does not count as a 100% change.  0.0 when there is no estimate yet.
        """
        new = self.estimate()
        if new is None:
            return 0.0
        changes = [
            abs(new.up_mbps - old.up_mbps) / old.up_mbps,
            abs(new.down_mbps - old.down_mbps) / old.down_mbps,
            abs(new.rtt_ms - old.rtt_ms) / max(old.rtt_ms, self.rtt_floor_ms),
        ]
        return max(changes)

    # -- probing ---------------------------------------------------------------------

    def probe_plan(self, now: float | None = None, *, force: bool = False) -> list[Probe]:
        """The probes to send now: none while traffic flows, else uplink, downlink, RTT.

        Sizes aim at ``probe_target_s`` of airtime at the current estimate (at least
        five RTTs' worth so the RTT does not swamp it), within the byte limits; they
        alternate between full and half size from one round to the next so that even a
        window of probes alone varies enough to fit.
        """
        with self._lock:
            now = self._clock() if now is None else now
            if (
                not force
                and self._last_traffic is not None
                and now - self._last_traffic < self.idle_s
            ):
                return []
            rtt_s, a, b = self._current()
            target = max(self.probe_target_s, 5 * rtt_s)
            factor = 1.0 if self._probe_round % 2 == 0 else 0.5
            self._probe_round += 1

            def size(coef: float, known: bool) -> int:
                wanted = factor * target / coef if coef > 0 else float(self.max_probe_bytes)
                if not known:
                    # The prior may be far too fast: start small, grow once measured.
                    wanted = min(wanted, self.initial_probe_bytes)
                return int(min(max(wanted, self.min_probe_bytes), self.max_probe_bytes))

            tiny = self.tiny_bytes
            return [
                Probe(size(a, self._smoothed[1] is not None), tiny, "uplink"),
                Probe(tiny, size(b, self._smoothed[2] is not None), "downlink"),
                Probe(tiny, tiny, "rtt"),
            ]

    def probe_ladder(self, now: float | None = None, *, force: bool = False) -> list[Probe]:
        """One round of :meth:`probe_plan` as a ladder: a ``canary_bytes`` canary each way,
        the RTT probe, then each direction up by ``ladder_step`` times to its full size,
        uplink and downlink steps interleaved.

        The sender stops climbing at a surprise (see :meth:`observe`): whatever the
        estimate says, a link that dropped since the last round then costs a canary's
        airtime, not that of a probe sized for the old link.
        """
        plan = self.probe_plan(now, force=force)
        if not plan:
            return []
        up, down, rtt = plan
        tiny = self.tiny_bytes

        def steps(full: int) -> list[int]:
            sizes, size = [], min(self.canary_bytes, full)
            while 2 * size <= full:  # no step just below the full size
                sizes.append(size)
                size *= self.ladder_step
            return [*sizes, full]

        ups, downs = steps(up.bytes_up), steps(down.bytes_down)
        ladder = []
        for i in range(max(len(ups), len(downs))):
            if i < len(ups):
                ladder.append(Probe(ups[i], tiny, "uplink", canary=i == 0))
            if i < len(downs):
                ladder.append(Probe(tiny, downs[i], "downlink", canary=i == 0))
            if i == 0:
                # After the canaries: bytes still queued from an earlier probe (cut, or
                # past its deadline) delay them, which reads as a slower link (right),
                # not as a longer RTT (wrong).
                ladder.append(rtt)
        return ladder

    # -- fitting ---------------------------------------------------------------------

    def _fit(self, now: float) -> tuple[Sequence[float], Sequence[bool]] | None:
        obs = [o for o in self._obs if now - o.at <= self.max_age_s]
        if not obs:
            return None
        up = np.array([o.bytes_up for o in obs], dtype=float)
        down = np.array([o.bytes_down for o in obs], dtype=float)
        net = np.array([o.network_s for o in obs])
        current = self._current()
        rtt_c, a_c, b_c = current

        def varies(col: np.ndarray) -> bool:
            mean = col.mean()
            return len(col) >= 2 and mean > 0 and col.std() / mean >= self.min_variation

        vary_up, vary_down = varies(up), varies(down)
        if vary_up and vary_down and len(obs) >= 3:
            corr = np.corrcoef(up, down)[0, 1]
            if not math.isfinite(corr) or abs(corr) > 0.95:
                # Sizes move together: only the direction with more airtime is learnable.
                if up.std() * a_c >= down.std() * b_c:
                    vary_down = False
                else:
                    vary_up = False
        # Relative errors: weight by 1/net so small and large calls count alike.
        weights = 1.0 / np.maximum(net, 1e-6)
        design = np.column_stack([np.ones_like(net), up, down])
        free = ([1] if vary_up else []) + ([2] if vary_down else [])
        while free:
            cols = ([0] if len(obs) > len(free) else []) + free  # RTT too if enough calls
            fixed = [i for i in (1, 2) if i not in cols]
            target = net - sum(design[:, i] * current[i] for i in fixed)
            result = self._robust_nnls(design[:, cols], target, weights)
            if result is None:
                return None
            coef, rel_se = result
            # A direction whose effect is lost in the noise (or fitted as free) is not
            # identified after all: keep it at the current estimate and refit the rest.
            weak = [
                c
                for c, value, se in zip(cols, coef, rel_se, strict=True)
                if c != 0 and (value <= 0 or se > self.max_rel_se)
            ]
            if weak:
                free = [c for c in free if c not in weak]
                continue
            values = list(current)
            for col, value in zip(cols, coef, strict=True):
                values[col] = float(value)
            return values, [i in cols for i in range(3)]
        # Nothing varies: attribute the excess over the prediction to one figure.
        mean_up, mean_down, mean_net = up.mean(), down.mean(), net.mean()
        air_up, air_down = mean_up * a_c, mean_down * b_c
        if mean_net < air_up + air_down or mean_net < rtt_c:
            # Faster than the estimate's RTT or its airtime alone: whichever figure
            # took the blame would be driven to zero (an RTT of 0, or an infinite
            # rate). One size cannot tell which figure is off, so all three scale
            # alike. The first call against the prior (20 ms, 19 Mbit/s) made on a
            # 1 ms loopback used to zero the RTT for good, and the calls' fixed cost
            # then read as a slow rate: loopback estimates of 0.1-0.85 Gbit/s.
            scale = mean_net / max(rtt_c + air_up + air_down, 1e-12)
            return [rtt_c * scale, a_c * scale, b_c * scale], [True, True, True]
        if max(air_up, air_down) < rtt_c:
            rtt = max(mean_net - air_up - air_down, 0.0)
            return [rtt, a_c, b_c], [True, False, False]
        if air_up >= air_down:
            coef = max(mean_net - rtt_c - air_down, 0.0) / mean_up
            return [rtt_c, coef, b_c], [False, True, False]
        coef = max(mean_net - rtt_c - air_up, 0.0) / mean_down
        return [rtt_c, a_c, coef], [False, False, True]

    @staticmethod
    def _robust_nnls(
        x: np.ndarray, y: np.ndarray, w: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """NNLS, once more without calls > 50% off the fit (GC pauses...), and the
        relative standard error of each coefficient (0 when the fit is exact)."""
        result = _nnls_subset(x, y, w)
        if result is None:
            return None
        coef = result[0]
        rel = np.abs(x @ coef - y) / np.maximum(y, 1e-9)
        keep = rel <= 0.5
        if keep.sum() >= x.shape[1] + 1 and not keep.all():
            x, y, w = x[keep], y[keep], w[keep]
            refit = _nnls_subset(x, y, w)
            if refit is not None:
                coef = refit[0]
        n, k = x.shape
        rel_se = np.zeros(k)
        if n > k:
            xw = x * w[:, None]
            resid = xw @ coef - y * w
            sigma2 = float(resid @ resid) / (n - k)
            scale = np.maximum(np.abs(xw).max(axis=0), 1e-300)
            xs = xw / scale
            cov = np.linalg.pinv(xs.T @ xs) * sigma2 / np.outer(scale, scale)
            se = np.sqrt(np.maximum(np.diag(cov), 0.0))
            with np.errstate(divide="ignore", invalid="ignore"):
                rel_se = np.where(coef > 0, se / coef, np.inf)
        return coef, rel_se


class BackgroundFits:
    """Feeds a :class:`LinkEstimator` from a thread of its own, off the request path.

    Refitting the window costs 0.2-0.7 ms (more when it holds several payload sizes),
    which a request would otherwise wait for after every cloud call. Observations are
    stamped when they are made and fitted in the order they were made, one at a time,
    so the estimates are exactly those of calling :meth:`LinkEstimator.observe` in line;
    they are only later by the fit's time. :meth:`flush` waits for the pending fits
    (before a probe, which must follow the calls before it, or before reporting).

    A thread of its own is not enough: a fit is Python and holds the GIL, and one that
    starts as the call returns takes it from the request, whose remaining steps (decode,
    checks, the reply) then wait for the whole fit (measured: 0.8-1.9 ms of a loopback
    hop). So fits wait while requests are in flight (:meth:`request`) and run between
    them, at most ``max_defer_s`` after the call (an agent never idle still fits, and
    keeps up), or at once for :meth:`flush`.
    """

    def __init__(self, estimator: LinkEstimator, max_defer_s: float = 1.0) -> None:
        self.estimator = estimator
        self.max_defer_s = max_defer_s
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="link-fit")
        self._last: Future[None] | None = None
        self._lock = threading.Lock()
        self._quiet = threading.Condition()  # guards _requests and _hurry
        self._requests = 0  # requests in flight: fits wait for them
        self._hurry = 0  # flushes waiting: fits go at once

    @contextlib.contextmanager
    def request(self) -> Iterator[None]:
        """A request in flight: fits wait until none is (or ``max_defer_s``)."""
        with self._quiet:
            self._requests += 1
        try:
            yield
        finally:
            with self._quiet:
                self._requests -= 1
                if not self._requests:
                    self._quiet.notify_all()

    def observe(
        self,
        bytes_up: int,
        bytes_down: int,
        wall_ms: float,
        server_ms: float,
        *,
        contended: bool = False,
    ) -> None:
        """:meth:`LinkEstimator.observe`, stamped now and fitted in the background."""
        with self._lock:  # submitted in the order they were stamped
            fit = functools.partial(
                self.estimator.observe, bytes_up, bytes_down, wall_ms, server_ms,
                contended=contended, at=self.estimator.now(),
            )  # fmt: skip
            due = time.monotonic() + self.max_defer_s
            self._last = self._pool.submit(self._safely, fit, due)

    def _safely(self, fit: Callable[[], object], due: float) -> None:
        # Until ``due`` at most: under steady load the fits then keep up, however many.
        with self._quiet:
            self._quiet.wait_for(
                lambda: not self._requests or self._hurry, max(0.0, due - time.monotonic())
            )
        try:
            fit()
        except Exception:  # a bad observation must not stop the ones after it
            log.exception("fitting a link observation failed")

    def flush(self, timeout_s: float | None = 5.0) -> None:
        """Wait until every observation given so far has been fitted."""
        last = self._last
        if last is None:
            return
        with self._quiet:
            self._hurry += 1
            self._quiet.notify_all()
        try:
            last.result(timeout=timeout_s)
        finally:
            with self._quiet:
                self._hurry -= 1
