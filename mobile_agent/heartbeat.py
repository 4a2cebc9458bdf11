"""The agent's heartbeat to a fleet scheduler (``collabdnn mobile --scheduler ADDR``).

Every ``heartbeat_s`` the agent tells the scheduler who it is (``--agent-id``, default
its own address), where its service listens (so that the scheduler can push plans to
its SetPlan), its link estimate and battery, the plan it holds, its request rate
(measured over the last interval, at least ``--expected-rate``) and a profile summary
(the model and weights it holds, and ``--plan-slowdown``). The first heartbeat
registers the agent; a scheduler that restarted rebuilds its view from them.

A single-agent scheduler (``--mobile``) answers FAILED_PRECONDITION: the agent then
keeps reporting through ReportLink/ReportBattery (:mod:`mobile_agent.link_monitor`) and
asks again every ``max_backoff_s``. A scheduler that is away costs a debug line and a
growing back-off; the agent keeps classifying on its last plan.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc

from collabdnn.backoff import Backoff
from collabdnn.planning.energy import battery_fraction
from collabdnn.services import AgentHeartbeat, ProfileSummary
from collabdnn.wire.stubs import SchedulerStub

log = logging.getLogger(__name__)

__all__ = ["Heartbeat", "HeartbeatSettings"]


@dataclass(frozen=True)
class HeartbeatSettings:
    scheduler: str  # HOST:PORT
    agent_id: str = ""  # "" = the advertised address
    advertise: str = ""  # HOST:PORT the scheduler pushes to; "" = host:port bound
    heartbeat_s: float = 2.0
    timeout_s: float = 2.0
    slowdown: float = 1.0  # this phone is that many times slower than the fleet's profile
    expected_rate_hz: float = 0.0  # requests per second expected before any is measured
    max_backoff_s: float = 30.0


@dataclass
class AgentFacts:
    """What the heartbeat reads from the running agent each time."""

    model: str
    weights_hash: str
    units: int
    plan_id: Callable[[], str]
    served: Callable[[], int]  # requests finished since start (the rate is measured)


class Heartbeat:
    """The heartbeat thread (see the module doc)."""

    def __init__(
        self,
        settings: HeartbeatSettings,
        channel_for: Callable[[str], grpc.Channel],
        monitor,  # mobile_agent.link_monitor.LinkMonitor  # type: ignore[no-untyped-def]
    ) -> None:
        self.settings = settings
        self.channel_for = channel_for
        self.monitor = monitor
        self.address = settings.advertise
        self.agent_id = settings.agent_id
        self.beats = 0  # heartbeats the scheduler took
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._facts: AgentFacts | None = None
        self._last_served: tuple[float, int] | None = None
        self._rate = 0.0
        self._timeout_s = 0.0  # the scheduler's: silence after which it forgets us

    def start(self, facts: AgentFacts, bound: str) -> None:
        self._facts = facts
        self.address = self.settings.advertise or bound
        self.agent_id = self.settings.agent_id or self.address
        self._thread = threading.Thread(target=self._loop, name="heartbeat", daemon=True)
        self._thread.start()
        log.info(
            "heart-beating to scheduler %s every %g s as agent %s at %s",
            self.settings.scheduler, self.settings.heartbeat_s, self.agent_id, self.address,
        )  # fmt: skip

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    def _loop(self) -> None:
        backoff = Backoff(self.settings.max_backoff_s)
        while not self._stop.is_set():
            delay = self.settings.heartbeat_s
            try:
                self.beat_once()
                backoff.ok()
                # never slower than a third of the scheduler's timeout: not to be forgotten
                delay = min(delay, self._timeout_s / 3) if self._timeout_s > 0 else delay
            except grpc.RpcError as exc:
                code = exc.code()
                backoff_s = backoff.failed(time.monotonic())
                if code in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.UNIMPLEMENTED):
                    if self.monitor.fleet or backoff.failures == 1:
                        log.info(
                            "scheduler %s is not in fleet mode (%s): reporting the link instead",
                            self.settings.scheduler, (exc.details() or code.name)[:200],
                        )  # fmt: skip
                    self.monitor.fleet = False
                    delay = self.settings.max_backoff_s
                else:
                    delay = backoff_s
                    log.log(
                        logging.INFO if backoff.failures == 1 else logging.DEBUG,
                        "heartbeat to scheduler %s failed (%s); next try in %.1f s",
                        self.settings.scheduler, code.name, delay,
                    )  # fmt: skip
            except Exception:  # never let the heartbeat die: requests do not depend on it
                log.exception("heartbeat failed")
            self._stop.wait(delay)

    def rate(self, now: float | None = None) -> float:
        """Requests per second since the previous heartbeat (smoothed), at least the
        expected rate."""
        assert self._facts is not None
        now = time.monotonic() if now is None else now
        served = self._facts.served()
        if self._last_served is not None:
            then, before = self._last_served
            if now > then:
                measured = (served - before) / (now - then)
                self._rate = 0.5 * self._rate + 0.5 * measured
        self._last_served = (now, served)
        return max(self._rate, self.settings.expected_rate_hz)

    def beat_once(self) -> bool:
        """One heartbeat; True when it registered the agent (raises grpc.RpcError)."""
        facts = self._facts
        assert facts is not None, "start() first"
        beat = AgentHeartbeat(
            agent_id=self.agent_id,
            address=self.address,
            link=self.monitor.estimate(),
            battery=battery_fraction(self.monitor.settings.battery),
            profile=ProfileSummary(
                facts.model, facts.weights_hash, facts.units, self.settings.slowdown
            ),
            plan_id=facts.plan_id(),
            rate_hz=self.rate(),
        )
        stub = SchedulerStub(self.channel_for(self.settings.scheduler))
        reply = stub.heartbeat(beat, timeout=self.settings.timeout_s)
        self._timeout_s = reply.timeout_s
        if not self.monitor.fleet:
            log.info("scheduler %s is in fleet mode: link and battery go in heartbeats",
                     self.settings.scheduler)  # fmt: skip
        self.monitor.fleet = True
        if reply.registered:
            log.info(
                "registered with scheduler %s as agent %s (plan %s)",
                self.settings.scheduler, self.agent_id, reply.plan_id or "pending",
            )  # fmt: skip
        self.beats += 1
        return reply.registered
