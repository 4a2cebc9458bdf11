"""The scheduler's work, free of the servicer: profile, plan, re-plan, push.

:class:`Scheduler` wraps a :class:`~collabdnn.planning.scheduling.PlanKeeper` (which decides when
a report is worth a re-plan and logs each switch) with what needs the network:

* **profiles**: loaded from files, or measured by each side through its Profile call
  (after waiting for the side to be SERVING), on start and on ``Replan(reprofile)``;
* **push**: whenever the placement changes, a pusher thread sends the plan to the
  agent's SetPlan (deadline, back-off on failure). Every ``push_check_s`` it also reads
  the agent's GetPlan and pushes again when the agent holds another plan (it restarted,
  or someone set one by hand), so the agent converges on the scheduler's plan;
* **cloud load**: every ``load_poll_s`` it reads the cloud's Info. K = max(1,
  in_flight): cloud units are CPU-bound, so n requests in flight share the cores and
  each takes about n times as long. Crude, but monotone and honest about what is known;
  ``ReportLoad`` can give K directly.

* **training plans**: served on request (GetTrainingPlan), made from the current plan's
  inputs and both sides' training profiles (:mod:`scheduler.training_plans` says why
  they are not pushed).

Plan ids count placement changes (``"3-MMMCCCCCCCCM"``): a re-plan that keeps the
placement keeps the id and pushes nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field, replace

import grpc

from collabdnn.backoff import Backoff
from collabdnn.errors import NotReadyError, PlanRequestError, WrongModeError
from collabdnn.measure.profile_service import ProfileSettings, fetch_profile
from collabdnn.placement import Placement, Side
from collabdnn.planning.link import LINK_PRESETS, Link
from collabdnn.planning.planner import OBJECTIVES, Constraints
from collabdnn.planning.profiles import (
    PlanInput,
    Profile,
    load_profile,
    plan_input_from_profiles,
    slower_profile,
)
from collabdnn.planning.scheduling import PlanKeeper, PlanSwitch, PowerSettings
from collabdnn.services import (
    AgentHeartbeat,
    FleetView,
    HeartbeatReply,
    Load,
    ReportOutcome,
    ScheduledPlan,
    ScheduledTrainingPlan,
    TrainingPlanQuery,
)
from collabdnn.transport.channels import ChannelPool, check_health
from collabdnn.transport.security import PLAINTEXT, SecurityConfig
from collabdnn.wire.status import Ready
from collabdnn.wire.stubs import AgentStub, CloudStub
from scheduler.training_plans import TrainingPlans

log = logging.getLogger(__name__)

SOURCE = "scheduler"


def push_backoff() -> Backoff:
    """The back-off of a plan push to an agent that is away: 0.25 s doubling to 10 s
    (shorter than the agent's own 0.5 s, as a restarted agent is usually back within a
    second and should get its plan soon). Used by this pusher and per agent in fleet mode."""
    return Backoff(cap=10.0, first=0.25)


@dataclass(frozen=True)
class SchedulerSettings:
    """What the scheduler plans for and whom it talks to (see ``collabdnn scheduler``)."""

    cloud: str = ""  # HOST:PORT; needed unless cloud_profile is given
    mobile: str = ""  # HOST:PORT of the agent; "" = plan only, push nothing
    objective: str = "latency"
    deadline_ms: float | None = None
    weight: float = 0.5
    battery_threshold: float = 0.2
    link: Link = LINK_PRESETS["wifi"]  # until the agent reports estimates
    power: PowerSettings = field(default_factory=PowerSettings)
    mobile_profile: str | None = None  # file; None = ask the agent
    cloud_profile: str | None = None  # file; None = ask the cloud
    images: tuple[str, ...] = ()  # photos for remote profiling; () = samples/
    profile: ProfileSettings = field(default_factory=ProfileSettings)
    replan_threshold: float = 0.2
    train_batch_size: int = 4  # training plans for requests that name no batch size
    # Plan for a phone this many times slower than the agent measured (1 = as measured):
    # on one machine both sides share a CPU and nothing is worth offloading otherwise.
    mobile_slowdown: float = 1.0
    # The phone's idle time between requests (None: back to back), for a mobile profile
    # measured under a CPU quota (collabdnn.planning.cfs).
    mobile_request_gap_ms: float | None = None
    load_poll_s: float = 5.0  # 0 = never poll the cloud's load
    push_check_s: float = 5.0
    rpc_timeout_s: float = 10.0
    profile_timeout_s: float = 600.0
    wait_services_s: float = 300.0
    security: SecurityConfig = PLAINTEXT


class Scheduler:
    """Profiles, the plan keeper, the pusher and the load poller (thread-safe)."""

    def __init__(self, settings: SchedulerSettings, pool: ChannelPool | None = None) -> None:
        self.settings = settings
        self.pool = pool or ChannelPool(security_config=settings.security)
        self.keeper: Ready[PlanKeeper] = Ready("the scheduler is still profiling; no plan yet")
        self.model = ""
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._generation = 0
        self._plan_id = ""
        self._reason = ""
        self._pushed_id = ""
        self._threads: list[threading.Thread] = []
        self.pushes = 0  # successful pushes (tests, logs)
        self.training = TrainingPlans(
            self.pool,
            settings.cloud,
            self._images,
            settings.train_batch_size,
            settings.profile_timeout_s,
            settings.rpc_timeout_s,
        )

    # -- start and stop ---------------------------------------------------------------

    def start(self) -> None:
        """Obtain both profiles, make the first plan, start pushing (blocking: run it
        in the service's loader thread)."""
        inputs = self._load_inputs()
        s = self.settings
        constraints = Constraints(
            deadline_ms=s.deadline_ms, weight=s.weight, battery_threshold=s.battery_threshold
        )
        try:
            keeper = PlanKeeper(
                inputs, s.link, s.objective, constraints, s.power, s.replan_threshold
            )
        except ValueError as exc:
            raise PlanRequestError(f"cannot plan: {exc}") from exc
        with self._lock:
            self.keeper.set(keeper)
            self._new_plan_locked(keeper.history[-1])
        for name, target in (("pusher", self._push_loop), ("load", self._load_loop)):
            thread = threading.Thread(target=target, name=f"scheduler-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            self._wake.notify_all()
        for thread in self._threads:
            thread.join(timeout=5.0)
        self.pool.close()

    # -- profiles ---------------------------------------------------------------------

    def _load_inputs(self) -> PlanInput:
        s = self.settings
        mobile = self._profile(Side.MOBILE, s.mobile_profile, s.mobile)
        cloud = self._profile(Side.CLOUD, s.cloud_profile, s.cloud)
        if mobile.weights_hash and cloud.weights_hash and mobile.weights_hash != cloud.weights_hash:
            log.warning(
                "the profiles come from different weights (mobile %s, cloud %s): the "
                "agent will refuse to offload across them",
                mobile.weights_hash[:12],
                cloud.weights_hash[:12],
            )
        self.model = mobile.model
        return plan_input_from_profiles(mobile, cloud, s.mobile_request_gap_ms)

    def _profile(
        self, side: Side, path: str | None, address: str, force_remote: bool = False
    ) -> Profile:
        profile = self._measured_profile(side, path, address, force_remote)
        factor = self.settings.mobile_slowdown
        if side == Side.MOBILE and factor != 1.0:
            log.warning(
                "planning for a phone %.3g times slower than the mobile profile says "
                "(--mobile-slowdown)", factor,
            )  # fmt: skip
            profile = slower_profile(profile, factor)
        return profile

    def _measured_profile(
        self, side: Side, path: str | None, address: str, force_remote: bool
    ) -> Profile:
        if path and not force_remote:
            profile = load_profile(path)
            log.info(
                "%s profile from %s (%s, %d units)", side, path, profile.model, len(profile.units)
            )
            return profile
        if not address:
            raise PlanRequestError(
                f"no {side} profile: give a {side} profile file or the {side} service's address"
            )
        self._wait_serving(side, address)
        begin = time.perf_counter()
        profile = fetch_profile(
            self.pool.get(address),
            side,
            self._images(),
            self.settings.profile,
            self.settings.profile_timeout_s,
        )
        log.info(
            "%s profile from %s in %.1f s: %s, total %.1f ms per image",
            side,
            address,
            time.perf_counter() - begin,
            profile.model,
            sum(u.latency_ms.median for u in profile.units),
        )
        return profile

    def _images(self) -> list[bytes]:
        from collabdnn.samples import read_images, sample_images

        return read_images(self.settings.images or sample_images())

    def _wait_serving(self, side: Side, address: str) -> None:
        deadline = time.monotonic() + self.settings.wait_services_s
        status = "UNKNOWN"
        while not self._stop.is_set():
            status = check_health(address, "", 2.0, self.settings.security)
            if status == "SERVING":
                return
            if time.monotonic() > deadline:
                break
            log.info("waiting for the %s at %s (%s)", side, address, status)
            self._stop.wait(1.0)
        raise NotReadyError(f"the {side} at {address} is not serving ({status})")

    # -- the plan ---------------------------------------------------------------------

    def _keeper(self) -> PlanKeeper:
        return self.keeper.get()  # NotReadyError while profiling

    def snapshot(self) -> ScheduledPlan:
        keeper = self._keeper()
        with self._lock:
            return ScheduledPlan(
                keeper.current,
                self._plan_id,
                self._pushed_id == self._plan_id,
                self._reason,
                self.model,
                SOURCE,
            )

    def plan_for(self, agent_id: str) -> ScheduledPlan:
        """The plan; naming an agent is for fleet mode (:mod:`scheduler.fleet`)."""
        if agent_id:
            raise WrongModeError("this scheduler serves one agent (--mobile): ask without an id")
        return self.snapshot()

    def training_plan(
        self, query: TrainingPlanQuery, wait_s: float | None = None
    ) -> ScheduledTrainingPlan:
        """The agent's training plan now (:mod:`scheduler.training_plans`); ``wait_s``
        bounds the wait for another request's profiling."""
        if query.agent_id:
            raise WrongModeError("this scheduler serves one agent (--mobile): ask without an id")
        s = self.settings
        return self.training.plan(
            self.snapshot(), s.mobile, query.batch_size, s.mobile_slowdown, wait_s
        )

    def heartbeat(self, beat: AgentHeartbeat) -> HeartbeatReply:
        raise WrongModeError(
            "this scheduler serves one agent (--mobile); report with ReportLink and ReportBattery"
        )

    def fleet_view(self) -> FleetView:
        return FleetView(fleet=False)

    def outcome(self, switch: PlanSwitch | None) -> ReportOutcome:
        """What a report did, and the plan now current."""
        snap = self.snapshot()
        return ReportOutcome(
            replanned=switch is not None,
            changed=bool(switch and switch.changed),
            plan_id=snap.plan_id,
            placement=Placement.of(snap.plan.placement),
        )

    def _new_plan_locked(self, switch: PlanSwitch) -> None:
        """Record a switch; a changed placement gets a new id and wakes the pusher."""
        self._reason = switch.reason
        if switch.changed or not self._plan_id:
            self._generation += 1
            self._plan_id = f"{self._generation}-{switch.new_spec}"
            self._wake.notify_all()

    def _after(self, switch: PlanSwitch | None) -> PlanSwitch | None:
        if switch is not None:
            with self._lock:
                self._new_plan_locked(switch)
        return switch

    def replan(self, reason: str = "asked", reprofile: bool = False) -> PlanSwitch:
        """Plan again now; with ``reprofile``, measure both sides first (a failed Profile
        call raises its ``grpc.RpcError``)."""
        keeper = self._keeper()
        if reprofile:
            self.training.forget()
            s = self.settings  # a service's own measurement wins over a file, when known
            mobile = self._profile(Side.MOBILE, s.mobile_profile, s.mobile, bool(s.mobile))
            cloud = self._profile(Side.CLOUD, s.cloud_profile, s.cloud, bool(s.cloud))
            switch = keeper.update_inputs(
                plan_input_from_profiles(mobile, cloud, s.mobile_request_gap_ms),
                f"re-profiled ({reason})",
            )
        else:
            switch = keeper.replan(reason)
        return self._after(switch)  # type: ignore[return-value]

    def report_link(self, link: Link) -> PlanSwitch | None:
        """A link estimate; one without a network kind keeps the current plan's."""
        keeper = self._keeper()
        if not link.network:
            link = replace(link, network=keeper.current.link.network)
        elif link.network.lower() not in LINK_PRESETS:  # it picks the radio power model
            known = ", ".join(sorted(LINK_PRESETS))
            raise PlanRequestError(f"unknown network {link.network!r}; known networks: {known}")
        return self._after(keeper.update_link(link))

    def report_battery(self, fraction: float) -> PlanSwitch | None:
        if not 0.0 <= fraction <= 1.0:
            raise PlanRequestError(f"battery fraction must be in [0, 1], got {fraction}")
        return self._after(self._keeper().update_battery(fraction))

    def report_load(self, cloud_load: float) -> PlanSwitch | None:
        """The cloud's slowdown factor K (see :func:`cloud_load_factor`)."""
        if not 0 < cloud_load < float("inf"):  # NaN and inf too: INVALID_ARGUMENT
            raise PlanRequestError(f"cloud load must be a finite number > 0, got {cloud_load}")
        return self._after(self._keeper().update_cloud_load(cloud_load))

    def set_objective(
        self, objective: str, deadline_ms: float | None, weight: float | None
    ) -> PlanSwitch:
        if objective not in OBJECTIVES:
            raise PlanRequestError(
                f"unknown objective {objective!r}; choose one of {', '.join(OBJECTIVES)}"
            )
        try:
            switch = self._keeper().update_objective(objective, deadline_ms, weight)
        except ValueError as exc:
            raise PlanRequestError(str(exc)) from exc
        return self._after(switch)  # type: ignore[return-value]

    # -- pushing ----------------------------------------------------------------------

    def _push_loop(self) -> None:
        """Push each new plan to the agent; re-push when the agent holds another one."""
        if not self.settings.mobile:
            log.info("no agent address: plans are served, not pushed")
            return
        backoff = push_backoff()
        next_check = 0.0
        while not self._stop.is_set():
            with self._lock:
                due = self._pushed_id != self._plan_id
                if not due and time.monotonic() < next_check:
                    self._wake.wait(timeout=min(1.0, next_check - time.monotonic()))
                    continue
            try:
                if due:
                    self._push()
                else:
                    self._check_agent()
                    next_check = time.monotonic() + self.settings.push_check_s
                backoff.ok()
            except grpc.RpcError as exc:
                delay = backoff.failed(time.monotonic())
                log.log(
                    logging.WARNING if backoff.failures in (1, 10) else logging.DEBUG,
                    "agent %s unreachable (%s): retrying the push in %.1f s",
                    self.settings.mobile,
                    exc.code().name,
                    delay,
                )
                self._stop.wait(delay)

    def _agent(self) -> AgentStub:
        return AgentStub(self.pool.get(self.settings.mobile))

    def _push(self) -> None:
        snap = self.snapshot()
        begin = time.perf_counter()
        self._agent().set_plan(snap.assigned(), timeout=self.settings.rpc_timeout_s)
        with self._lock:
            self._pushed_id = snap.plan_id
        self.pushes += 1
        log.info(
            "pushed plan %s to agent %s in %.1f ms (%s)",
            snap.plan_id,
            self.settings.mobile,
            (time.perf_counter() - begin) * 1e3,
            snap.reason,
        )

    def _check_agent(self) -> None:
        held = self._agent().get_plan(timeout=self.settings.rpc_timeout_s)
        with self._lock:
            if held.plan_id != self._plan_id:
                log.info(
                    "agent holds plan %r (from %s), not %s: pushing again",
                    held.plan_id,
                    held.source or "-",
                    self._plan_id,
                )
                self._pushed_id = ""

    # -- cloud load -------------------------------------------------------------------

    def _load_loop(self) -> None:
        s = self.settings
        if not s.cloud or s.load_poll_s <= 0:
            return
        while not self._stop.wait(s.load_poll_s):
            try:
                info = CloudStub(self.pool.get(s.cloud)).info(timeout=s.rpc_timeout_s)
            except grpc.RpcError as exc:
                log.debug("cloud %s Info failed (%s)", s.cloud, exc.code().name)
                continue
            self._after(self._keeper().update_cloud_load(cloud_load_factor(info.load)))


def cloud_load_factor(load: Load) -> float:
    """K from the cloud's reported load: max(1, requests in flight) (see module doc)."""
    return float(max(1, load.in_flight))
