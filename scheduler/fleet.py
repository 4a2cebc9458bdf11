"""Fleet mode: one scheduler, many agents, one cloud fleet (``collabdnn scheduler``
without ``--mobile``).

Agents register and heart-beat (:meth:`FleetScheduler.heartbeat`): the first heartbeat
of an unknown id registers it, every one carries the agent's link estimate, battery,
request rate, the plan it holds and a profile summary (its model, and how much slower
than the profile the scheduler plans from its phone is). So a restarted scheduler
rebuilds its whole view from the next round of heartbeats; nothing is stored.

The scheduler keeps one plan per agent, made by the fleet-aware planner
(:func:`collabdnn.planning.fleet.plan_fleet`) over all agents at once, and pushes each
new plan to its agent's SetPlan (the same call the single-agent scheduler uses). It
plans again when an agent joins or is forgotten, when an agent's link, rate or
battery moved past the thresholds, when the cloud's capacity changed, or on Replan and
SetObjective. An agent silent for ``timeout_s`` is forgotten; one whose heartbeat says
it holds another plan than the one acknowledged gets it pushed again.

The cloud's capacity (:class:`~collabdnn.planning.fleet.CloudCapacity`) is learned every
``capacity_poll_s``: the replicas are ``--cloud-replicas``'s addresses, else every
address the cloud's host name resolves to (a Kubernetes headless Service, Compose's
DNS round robin), each asked for its Capacity (workers, CPUs, threads and measured
unit times); a fixed replica count or per-replica capacity on the command line wins.

Requests are bounded before any work: an id of at most 64 characters from
``[A-Za-z0-9._:-]``, an address ``HOST:PORT``, figures in range (INVALID_ARGUMENT);
at most ``max_agents`` agents and one heartbeat per agent every ``min_interval_s``
(RESOURCE_EXHAUSTED); a model or weights other than the cloud's (FAILED_PRECONDITION).
"""

from __future__ import annotations

import logging
import math
import re
import socket
import threading
import time
from dataclasses import dataclass, field, replace

import grpc

from collabdnn.backoff import Backoff
from collabdnn.errors import (
    BusyError,
    NotReadyError,
    PlanRequestError,
    UnknownAgentError,
    WeightsError,
    WrongModeError,
)
from collabdnn.placement import AssignedPlan, Placement, Side, spec_of
from collabdnn.planning.cfs import gap_from_rate
from collabdnn.planning.fleet import CloudCapacity, FleetAgent, FleetPlan, plan_fleet
from collabdnn.planning.link import Link, LinkEstimate
from collabdnn.planning.planner import OBJECTIVES, Constraints, Plan
from collabdnn.planning.profiles import (
    PlanInput,
    Profile,
    plan_input_from_profiles,
    slower_profile,
    throttled_request,
)
from collabdnn.planning.scheduling import PlanSwitch, relative_change
from collabdnn.services import (
    AgentHeartbeat,
    CloudCapacityInfo,
    FleetAgentView,
    FleetView,
    HeartbeatReply,
    ProfileSummary,
    ScheduledPlan,
    ScheduledTrainingPlan,
    TrainingPlanQuery,
)
from collabdnn.wire.status import Ready
from collabdnn.wire.stubs import AgentStub, CloudStub
from scheduler.core import SOURCE, Scheduler, SchedulerSettings, push_backoff

log = logging.getLogger(__name__)

AGENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
MAX_ADDRESS = 260
MAX_RATE_HZ = 10_000.0
MAX_SLOWDOWN = 1_000.0


@dataclass(frozen=True)
class FleetSettings:
    """Fleet mode's own settings (see ``collabdnn scheduler --help``)."""

    heartbeat_s: float = 2.0  # what agents are told to use
    timeout_s: float = 10.0  # silence after which an agent is forgotten
    max_agents: int = 256
    min_interval_s: float = 0.05  # closer heartbeats from one agent: RESOURCE_EXHAUSTED
    rate_change: float = 0.2  # re-plan when an agent's rate moved by this fraction
    saturation: float = 0.8  # utilisation past which plans become fleet-aware
    max_utilisation: float = 0.9  # ... and that the plans never exceed
    replicas: int = 0  # 0 = learn (cloud_replicas, else DNS)
    cloud_replicas: tuple[str, ...] = ()  # HOST:PORT of each replica (Capacity)
    per_replica: float = 0.0  # requests one replica serves at once; 0 = learn
    capacity_poll_s: float = 5.0  # 0 = never poll (then 1 replica of 1 unless given)
    tick_s: float = 0.1
    push_timeout_s: float = 2.0
    independent: bool = False  # plan each agent as if alone (for comparison)
    replan_min_s: float = 0.2  # at most one fleet re-plan this often (the rest wait)


@dataclass
class _Agent:
    """What the scheduler holds about one agent (under the fleet's lock)."""

    id: str
    address: str
    inputs: PlanInput
    estimate: LinkEstimate
    battery: float
    rate_hz: float
    summary: ProfileSummary
    last_seen: float
    planned: LinkEstimate | None = None  # the link of the current plan
    planned_rate: float = 0.0
    plan: Plan | None = None
    alone: Plan | None = None
    plan_id: str = ""
    generation: int = 0
    reason: str = ""
    pushed_id: str = ""
    backoff: Backoff = field(default_factory=push_backoff)  # pushes to it that failed
    pushes: int = 0


@dataclass
class _Capacity:
    capacity: CloudCapacity = field(default_factory=CloudCapacity)
    source: str = "default: 1 replica serving 1 request at a time"


class FleetScheduler(Scheduler):
    """The single-agent :class:`Scheduler`'s profiles and settings, one plan per agent."""

    def __init__(self, settings: SchedulerSettings, fleet: FleetSettings | None = None) -> None:
        super().__init__(settings)
        self.fleet = fleet or FleetSettings()
        self.ready: Ready[Profile] = Ready("the scheduler is still profiling the cloud")
        self.base: Profile | None = None  # the mobile profile every agent is scaled from
        self.objective = settings.objective
        self.constraints = Constraints(
            deadline_ms=settings.deadline_ms,
            weight=settings.weight,
            battery_threshold=settings.battery_threshold,
        )
        self._agents: dict[str, _Agent] = {}
        self._capacity = _Capacity()
        self._last: FleetPlan | None = None
        self._beats: dict[str, float] = {}  # agent id -> monotonic time of its last beat
        self._profiles: dict[str, Profile] = {}  # agent id -> its own profile (no base)
        self._profiling = threading.Lock()  # one agent's Profile call at a time
        self._pending: list[str] = []  # reasons of a re-plan not yet run
        self._last_replan = -math.inf

    # -- start and stop ---------------------------------------------------------------

    def start(self) -> None:
        s = self.settings
        cloud = self._profile(Side.CLOUD, s.cloud_profile, s.cloud)
        if s.mobile_profile:
            self.base = self._profile(Side.MOBILE, s.mobile_profile, "")
            plan_input_from_profiles(self.base, cloud)  # the two must combine
        self.model = cloud.model
        self._capacity = (
            self._learn_capacity(cloud) if self.fleet.capacity_poll_s else (self._fixed_capacity())
        )
        self.ready.set(cloud)
        log.info(
            "fleet mode: %s; agents heart-beat every %g s and are forgotten after %g s; "
            "capacity: %s",
            f"agents planned from {s.mobile_profile}" if self.base
            else "each agent's profile asked from it",
            self.fleet.heartbeat_s, self.fleet.timeout_s, self._capacity.source,
        )  # fmt: skip
        for name, target in (("pusher", self._push_loop), ("capacity", self._capacity_loop)):
            thread = threading.Thread(target=target, name=f"fleet-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    # -- what a single-agent scheduler answers differently -----------------------------

    def snapshot(self) -> ScheduledPlan:
        """What Replan and SetObjective answer: a new agent's plan, or without a base
        profile the first agent's (UNAVAILABLE while there is none)."""
        if self.base is not None:
            return self.plan_for("")
        with self._lock:
            first = min(
                (a for a in self._agents.values() if a.plan), key=lambda a: a.id, default=None
            )
            if first is None:
                raise NotReadyError("fleet mode: no agent has registered yet")
            return self._scheduled(first)

    def plan_for(self, agent_id: str) -> ScheduledPlan:
        """An agent's plan; ``""``: the plan a new agent with the base profile gets."""
        cloud = self.ready.get()
        if not agent_id:
            if self.base is None:
                raise UnknownAgentError(
                    "fleet mode: name an agent (GetPlan.agent_id); no base mobile profile "
                    "(--mobile-profile) to show a new agent's plan"
                )
            inputs = plan_input_from_profiles(self.base, cloud, self.settings.mobile_request_gap_ms)
            solo = self._agent_input(
                "(new agent)", inputs, LinkEstimate(self.settings.link), 1.0, 0
            )
            fleet = plan_fleet([solo], self._capacity.capacity)
            return ScheduledPlan(fleet.plans[solo.id], "", False, "a new agent's plan", self.model)
        with self._lock:
            agent = self._agents.get(agent_id)
            if agent is None or agent.plan is None:
                raise UnknownAgentError(f"no agent {agent_id!r} in the fleet")
            return self._scheduled(agent)

    def training_plan(
        self, query: TrainingPlanQuery, wait_s: float | None = None
    ) -> ScheduledTrainingPlan:
        """A registered agent's training plan, from its current plan's inputs, its own
        address (ProfileTraining) and the slowdown its heartbeat reports."""
        if not query.agent_id:
            raise UnknownAgentError("fleet mode: name an agent (GetTrainingPlan.agent_id)")
        if not AGENT_ID.fullmatch(query.agent_id):
            raise PlanRequestError("an agent id is 1 to 64 characters from A-Z a-z 0-9 . _ : -")
        current = self.plan_for(query.agent_id)
        with self._lock:
            agent = self._agents.get(query.agent_id)
            if agent is None:
                raise UnknownAgentError(f"no agent {query.agent_id!r} in the fleet")
            address, slowdown = agent.address, agent.summary.slowdown or 1.0
        return self.training.plan(current, address, query.batch_size, slowdown, wait_s)

    def _scheduled(self, agent: _Agent) -> ScheduledPlan:
        assert agent.plan is not None
        pushed = bool(agent.plan_id) and agent.pushed_id == agent.plan_id
        return ScheduledPlan(agent.plan, agent.plan_id, pushed, agent.reason, self.model, SOURCE)

    def report_link(self, link: Link) -> PlanSwitch | None:
        raise WrongModeError("fleet mode: agents report their link in their heartbeats")

    def report_battery(self, fraction: float) -> PlanSwitch | None:
        raise WrongModeError("fleet mode: agents report their battery in their heartbeats")

    def report_load(self, cloud_load: float) -> PlanSwitch | None:
        raise WrongModeError(
            "fleet mode: the cloud's load is modelled from the agents' rates and the "
            "cloud's capacity (see GetFleet)"
        )

    def replan(self, reason: str = "asked", reprofile: bool = False) -> None:  # type: ignore[override]
        self.ready.get()
        if reprofile:
            self.training.forget()
            s = self.settings
            cloud = self._profile(Side.CLOUD, s.cloud_profile, s.cloud, bool(s.cloud))
            self.ready.set(cloud)
            with self._lock:
                for agent in self._agents.values():
                    agent.inputs = self._inputs(agent.summary, cloud, agent.id, agent.rate_hz)
        self._replan(f"re-planned ({reason})")

    def set_objective(  # type: ignore[override]
        self, objective: str, deadline_ms: float | None, weight: float | None
    ) -> None:
        if objective not in OBJECTIVES:
            raise PlanRequestError(
                f"unknown objective {objective!r}; choose one of {', '.join(OBJECTIVES)}"
            )
        self.ready.get()
        with self._lock:
            saved = (self.objective, self.constraints)
            try:
                constraints = self.constraints
                if deadline_ms is not None:
                    constraints = replace(constraints, deadline_ms=deadline_ms)
                if weight is not None:
                    constraints = replace(constraints, weight=weight)
                if objective == "deadline" and constraints.deadline_ms is None:
                    # checked here: with no agent yet, nothing would plan (and refuse) it
                    raise ValueError("the deadline objective needs a deadline (deadline_ms)")
                self.objective, self.constraints = objective, constraints
                self._replan_now_locked(f"objective {objective}")
            except ValueError as exc:
                self.objective, self.constraints = saved
                raise PlanRequestError(str(exc)) from exc

    # -- heartbeats ---------------------------------------------------------------------

    def heartbeat(self, beat: AgentHeartbeat) -> HeartbeatReply:
        """Register or refresh an agent (see the module doc for the bounds)."""
        _check_beat(beat)
        cloud = self.ready.get()
        _check_model(beat.profile, cloud)
        if self.base is None and beat.agent_id not in self._profiles:
            self._profile_agent(beat)
        now = time.monotonic()
        f = self.fleet
        with self._lock:
            last = self._beats.get(beat.agent_id)
            if last is not None and now - last < f.min_interval_s:
                raise BusyError(
                    f"agent {beat.agent_id!r} heart-beats faster than once every "
                    f"{f.min_interval_s:g} s"
                )
            agent = self._agents.get(beat.agent_id)
            new = agent is None
            if new and len(self._agents) >= f.max_agents:
                raise BusyError(f"the fleet is full: {f.max_agents} agents (--max-agents)")
            self._beats[beat.agent_id] = now
            if agent is None:
                agent = self._register(beat, cloud, now)
            else:
                self._refresh(agent, beat, cloud, now)
            return HeartbeatReply(new, agent.plan_id, f.heartbeat_s, f.timeout_s)

    def _profile_agent(self, beat: AgentHeartbeat) -> None:
        """Without a base profile, an agent is profiled through its own Profile call
        (the single-agent path; seconds of its CPU, once) before it registers. One at a
        time: another agent meanwhile is told RESOURCE_EXHAUSTED and retries."""
        with self._lock:
            if len(self._agents) >= self.fleet.max_agents:
                raise BusyError(f"the fleet is full: {self.fleet.max_agents} agents (--max-agents)")
        if not self._profiling.acquire(blocking=False):
            raise BusyError("another agent is being profiled; retry shortly")
        try:
            profile = self._profile(Side.MOBILE, None, beat.address, True)
        except grpc.RpcError as exc:
            raise NotReadyError(
                f"could not profile agent {beat.agent_id} at {beat.address} "
                f"({exc.code().name}); retry"
            ) from exc
        finally:
            self._profiling.release()
        with self._lock:
            self._profiles[beat.agent_id] = profile

    def _register(self, beat: AgentHeartbeat, cloud: Profile, now: float) -> _Agent:
        agent = _Agent(
            id=beat.agent_id,
            address=beat.address,
            inputs=self._inputs(beat.profile, cloud, beat.agent_id, beat.rate_hz),
            estimate=beat.link,
            battery=beat.battery,
            rate_hz=beat.rate_hz,
            summary=beat.profile,
            last_seen=now,
        )
        self._agents[agent.id] = agent
        log.info(
            "agent %s registered from %s (%s, phone %gx the profile, %.2f req/s); %d agents",
            agent.id, agent.address, _fmt_link(beat.link), beat.profile.slowdown or 1.0,
            beat.rate_hz, len(self._agents),
        )  # fmt: skip
        self._replan_locked(f"agent {agent.id} registered")
        return agent

    def _refresh(self, agent: _Agent, beat: AgentHeartbeat, cloud: Profile, now: float) -> None:
        agent.last_seen = now
        if beat.address != agent.address:  # restarted elsewhere: push it the plan there
            log.info("agent %s moved from %s to %s", agent.id, agent.address, beat.address)
            agent.address, agent.pushed_id = beat.address, ""
            agent.backoff.ok()
            self._wake.notify_all()
        why = []
        recompute = beat.profile.slowdown != agent.summary.slowdown
        if recompute:
            why.append(f"its phone is now {beat.profile.slowdown or 1.0:g}x the profile")
        agent.summary = beat.profile
        agent.estimate = beat.link
        if agent.planned is not None:
            moved = relative_change(agent.planned.link, beat.link.link)
            if moved >= self.settings.replan_threshold:
                why.append(f"its link changed by {moved:.0%}")
        threshold = self.settings.battery_threshold
        if (agent.battery < threshold) != (beat.battery < threshold):
            why.append(f"its battery at {beat.battery:.0%}")
        agent.battery = beat.battery
        agent.rate_hz = beat.rate_hz
        base = max(agent.planned_rate, 1e-9)
        if abs(beat.rate_hz - agent.planned_rate) / base >= self.fleet.rate_change and (
            max(beat.rate_hz, agent.planned_rate) > 0.05
        ):
            why.append(f"its rate {agent.planned_rate:.2f} -> {beat.rate_hz:.2f} req/s")
            recompute = True  # under a CPU quota the rate sets how fast the phone is
        if recompute:
            agent.inputs = self._inputs(beat.profile, cloud, agent.id, beat.rate_hz)
        if beat.plan_id != agent.plan_id and agent.pushed_id == agent.plan_id and agent.plan_id:
            log.info(
                "agent %s holds plan %r, not %s: pushing again",
                agent.id, beat.plan_id, agent.plan_id,
            )  # fmt: skip
            agent.pushed_id = ""
            self._wake.notify_all()
        if why:
            self._replan_locked(f"agent {agent.id}: {', '.join(why)}")

    def _inputs(
        self, summary: ProfileSummary, cloud: Profile, agent_id: str = "", rate_hz: float = 0.0
    ) -> PlanInput:
        mobile = self._profiles.get(agent_id) or self.base
        assert mobile is not None
        factor = summary.slowdown or 1.0
        if factor != 1.0:
            mobile = slower_profile(mobile, factor)
        return plan_input_from_profiles(mobile, cloud, self._gap_ms(mobile, rate_hz))

    def _gap_ms(self, mobile: Profile, rate_hz: float) -> float | None:
        """The phone's idle time between requests: ``--mobile-request-gap-ms`` where
        given; else, for a phone profiled under a CPU quota, from the rate its heartbeat
        measured (no requests: idle for long; collabdnn.planning.cfs)."""
        gap, request = self.settings.mobile_request_gap_ms, throttled_request(mobile)
        if gap is not None or request is None:
            return gap
        return gap_from_rate(rate_hz, *request)

    # -- planning -----------------------------------------------------------------------

    def _agent_input(
        self, agent_id: str, inputs: PlanInput, link: LinkEstimate, battery: float, rate: float
    ) -> FleetAgent:
        power = self.settings.power.model(link.link.network)
        constraints = replace(self.constraints, battery_fraction=battery)
        return FleetAgent(agent_id, inputs, link.link, power, self.objective, constraints, rate)

    def _replan(self, reason: str) -> None:
        with self._lock:
            self._replan_now_locked(reason)

    def _replan_locked(self, reason: str) -> None:
        """Plan again now, or (within ``replan_min_s`` of the last) soon: the pusher
        loop runs the pending re-plan, so that a storm of registrations or heartbeats
        costs a few fleet re-plans a second, not one each."""
        self._pending.append(reason)
        if time.monotonic() - self._last_replan >= self.fleet.replan_min_s:
            self._replan_now_locked()
        else:
            self._wake.notify_all()

    def _replan_due_locked(self) -> None:
        if self._pending and time.monotonic() - self._last_replan >= self.fleet.replan_min_s:
            self._replan_now_locked()

    def _replan_now_locked(self, reason: str = "") -> None:
        """Plan every agent again (fleet-aware) and give each changed plan a new id."""
        reasons = list(dict.fromkeys([*self._pending, *([reason] if reason else [])]))
        self._pending.clear()
        self._last_replan = time.monotonic()
        reason = "; ".join(reasons[:3]) + (
            f" (+{len(reasons) - 3} more)" if len(reasons) > 3 else ""
        )
        agents = list(self._agents.values())
        if not agents:
            self._last = None
            return
        inputs = [
            self._agent_input(a.id, a.inputs, a.estimate, a.battery, a.rate_hz) for a in agents
        ]
        alone = self.fleet.independent
        fleet = plan_fleet(
            inputs,
            self._capacity.capacity,
            saturation=math.inf if alone else self.fleet.saturation,
            max_utilisation=math.inf if alone else self.fleet.max_utilisation,
        )
        self._last = fleet
        moves = {m.agent: m for m in fleet.moves}
        if fleet.moves:
            log.info(
                "fleet: the agents alone would load the cloud to %.0f%% of %g servers; "
                "fleet-aware plans load it to %.0f%% (K=%.2f, %d rounds%s)",
                fleet.utilisation_alone * 100, fleet.capacity.servers, fleet.utilisation * 100,
                fleet.cloud_load, fleet.rounds, "" if fleet.converged else ", not converged",
            )  # fmt: skip
        for agent in agents:
            new = fleet.plans[agent.id]
            old = spec_of(agent.plan.placement) if agent.plan else None
            agent.plan, agent.alone = new, fleet.independent[agent.id]
            agent.planned, agent.planned_rate = agent.estimate, agent.rate_hz
            if old == new.spec and agent.plan_id:
                continue
            agent.generation += 1
            agent.plan_id = f"{agent.generation}-{new.spec}"
            move = moves.get(agent.id)
            agent.reason = f"{reason}; {move.reason}" if move else reason
            log.info(
                "agent %s: plan %s -> %s (%s; predicted %.1f ms, %.1f mJ)",
                agent.id, old or "-", new.spec, agent.reason, new.latency_ms,
                new.mobile_energy_mj,
            )  # fmt: skip
            agent.backoff.ok()
        self._wake.notify_all()

    def fleet_view(self) -> FleetView:
        self.ready.get()
        now = time.monotonic()
        with self._lock:
            views = tuple(
                FleetAgentView(
                    agent_id=a.id,
                    address=a.address,
                    plan=self._scheduled(a),
                    link=a.estimate,
                    battery=a.battery,
                    rate_hz=a.rate_hz,
                    last_seen_s=now - a.last_seen,
                    alone_spec=a.alone.spec if a.alone else "",
                    profile=a.summary,
                )
                for a in sorted(self._agents.values(), key=lambda a: a.id)
                if a.plan is not None
            )
            last, capacity = self._last, self._capacity
        return FleetView(
            fleet=True,
            agents=views,
            servers=capacity.capacity.servers,
            replicas=capacity.capacity.replicas,
            utilisation=last.utilisation if last else 0.0,
            utilisation_alone=last.utilisation_alone if last else 0.0,
            cloud_load=last.cloud_load if last else 1.0,
            rounds=last.rounds if last else 0,
            converged=last.converged if last else True,
            capacity_source=capacity.source,
        )

    # -- pushing and forgetting ----------------------------------------------------------

    def _push_loop(self) -> None:
        while not self._stop.is_set():
            self._forget_silent()
            with self._lock:
                self._replan_due_locked()
            due = self._due()
            for agent_id, address, assigned in due:
                self._push_one(agent_id, address, assigned)
            if not due:
                with self._lock:
                    self._wake.wait(timeout=self.fleet.tick_s)

    def _due(self) -> list[tuple[str, str, AssignedPlan]]:
        now = time.monotonic()
        with self._lock:
            return [
                (a.id, a.address, AssignedPlan(Placement.of(a.plan.placement), a.plan_id, SOURCE))
                for a in self._agents.values()
                if a.plan is not None and a.pushed_id != a.plan_id and a.backoff.ready(now)
            ]

    def _push_one(self, agent_id: str, address: str, assigned: AssignedPlan) -> None:
        begin = time.perf_counter()
        try:
            AgentStub(self.pool.get(address)).set_plan(assigned, timeout=self.fleet.push_timeout_s)
        except grpc.RpcError as exc:
            with self._lock:
                agent = self._agents.get(agent_id)
                if agent is None:
                    return
                delay = agent.backoff.failed(time.monotonic())
                failures = agent.backoff.failures
            log.log(
                logging.WARNING if failures in (1, 10) else logging.DEBUG,
                "agent %s at %s unreachable (%s): retrying the push in %.1f s",
                agent_id, address, exc.code().name, delay,
            )  # fmt: skip
            return
        with self._lock:
            agent = self._agents.get(agent_id)
            if agent is None or agent.plan_id != assigned.plan_id:
                return  # forgotten or re-planned meanwhile: the loop pushes the new one
            agent.pushed_id = assigned.plan_id
            agent.backoff.ok()
            agent.pushes += 1
        self.pushes += 1
        log.info(
            "pushed plan %s to agent %s at %s in %.1f ms",
            assigned.plan_id, agent_id, address, (time.perf_counter() - begin) * 1e3,
        )  # fmt: skip

    def _forget_silent(self) -> None:
        now = time.monotonic()
        with self._lock:
            gone = [a for a in self._agents.values() if now - a.last_seen > self.fleet.timeout_s]
            for agent in gone:
                del self._agents[agent.id]
                self._beats.pop(agent.id, None)
                self._profiles.pop(agent.id, None)
                log.info(
                    "forgot agent %s at %s: no heartbeat for %.1f s (timeout %g s); %d agents",
                    agent.id, agent.address, now - agent.last_seen, self.fleet.timeout_s,
                    len(self._agents),
                )  # fmt: skip
            if gone:
                self._replan_locked(f"{len(gone)} agent(s) forgotten")
            for agent_id, at in list(self._beats.items()):  # ids refused or never planned
                if agent_id not in self._agents and now - at > self.fleet.timeout_s:
                    del self._beats[agent_id]

    # -- the cloud's capacity -------------------------------------------------------------

    def _fixed_capacity(self) -> _Capacity:
        f = self.fleet
        replicas, per = max(1, f.replicas), f.per_replica or 1.0
        return _Capacity(
            CloudCapacity(replicas, per), f"fixed: {replicas} replica(s) x {per:g} at once"
        )

    def _capacity_loop(self) -> None:
        if not self.fleet.capacity_poll_s:
            return
        while not self._stop.wait(self.fleet.capacity_poll_s):
            try:
                learned = self._learn_capacity(self.ready.get())
            except Exception:  # never let the poller die: plans go on with the last one
                log.exception("learning the cloud's capacity failed")
                continue
            with self._lock:
                old = self._capacity.capacity.servers
                self._capacity = learned
                if abs(learned.capacity.servers - old) / old >= 0.1:
                    self._replan_locked(
                        f"cloud capacity {old:g} -> {learned.capacity.servers:g} servers "
                        f"({learned.source})"
                    )

    def _replica_addresses(self) -> tuple[list[str], str]:
        f, cloud = self.fleet, self.settings.cloud
        if f.cloud_replicas:
            return list(f.cloud_replicas), "--cloud-replicas"
        if not cloud:
            return [], "no cloud address"
        host, _, port = cloud.rpartition(":")
        try:
            infos = socket.getaddrinfo(host.strip("[]"), int(port), type=socket.SOCK_STREAM)
        except (OSError, ValueError):
            return [cloud], f"{cloud} (not resolved)"
        found = sorted({str(info[4][0]) for info in infos})
        if len(found) <= 1:
            return [cloud], f"DNS {host}: 1 address"
        wrap = (lambda a: f"[{a}]") if ":" in found[0] else (lambda a: a)
        return [f"{wrap(a)}:{port}" for a in found], f"DNS {host}: {len(found)} addresses"

    def _learn_capacity(self, cloud: Profile) -> _Capacity:
        """Ask each replica for its Capacity (see the module doc)."""
        f = self.fleet
        addresses, where = self._replica_addresses()
        answers: list[CloudCapacityInfo] = []
        for address in addresses:
            try:
                answers.append(
                    CloudStub(self.pool.get(address)).capacity(timeout=self.settings.rpc_timeout_s)
                )
            except grpc.RpcError as exc:
                log.debug("cloud %s Capacity failed (%s)", address, exc.code().name)
        replicas = f.replicas or max(1, len(answers))
        per = f.per_replica or _per_replica(answers)
        speed = _speed(answers, cloud)
        source = (
            f"{replicas} replica(s) ({'--replicas' if f.replicas else where}, "
            f"{len(answers)} answered Capacity), {per:g} request(s) at once each"
            f"{' (--cloud-capacity)' if f.per_replica else ' (CPUs / threads)'}, "
            f"speed {speed:.2f} of the profile"
        )
        return _Capacity(CloudCapacity(replicas, per, speed), source)


def _per_replica(answers: list[CloudCapacityInfo]) -> float:
    """Requests one replica serves at once at the profiled speed: its CPUs over the
    threads one call uses, at most its workers, at least 1 (the mean over replicas)."""
    if not answers:
        return 1.0
    each = [
        max(1.0, min(float(a.workers or 1), math.floor(a.cpus / max(1, a.threads))))
        for a in answers
    ]
    return sum(each) / len(each)


def _speed(answers: list[CloudCapacityInfo], cloud: Profile, min_calls: int = 3) -> float:
    """The measured service rate relative to the cloud profile: profiled over measured
    time summed over the units measured often enough (1 when none)."""
    profiled = measured = 0.0
    for answer in answers:
        for unit in answer.units:
            if unit.calls >= min_calls and 0 <= unit.index < len(cloud.units):
                profiled += cloud.units[unit.index].latency_ms.median * unit.calls
                measured += unit.mean_ms * unit.calls
    if profiled <= 0 or measured <= 0:
        return 1.0
    return min(10.0, max(0.1, profiled / measured))


def _check_beat(beat: AgentHeartbeat) -> None:
    """INVALID_ARGUMENT for anything out of range, before any work."""
    if not AGENT_ID.fullmatch(beat.agent_id):
        raise PlanRequestError(
            "agent id: 1 to 64 characters from A-Z a-z 0-9 . _ : - "
            f"(got {len(beat.agent_id)} characters)"
        )
    host, sep, port = beat.address.rpartition(":")
    if not (sep and host and len(beat.address) <= MAX_ADDRESS and port.isdigit()) or not (
        0 < int(port) < 65536
    ):
        raise PlanRequestError(f"agent address must be HOST:PORT, got {beat.address[:80]!r}")
    if not 0.0 <= beat.battery <= 1.0:
        raise PlanRequestError(f"battery fraction must be in [0, 1], got {beat.battery}")
    if not (math.isfinite(beat.rate_hz) and 0.0 <= beat.rate_hz <= MAX_RATE_HZ):
        raise PlanRequestError(f"rate must be in [0, {MAX_RATE_HZ:g}] req/s, got {beat.rate_hz}")
    slowdown = beat.profile.slowdown
    if not (slowdown == 0.0 or (math.isfinite(slowdown) and 1e-3 <= slowdown <= MAX_SLOWDOWN)):
        raise PlanRequestError(f"slowdown must be in [0.001, {MAX_SLOWDOWN:g}], got {slowdown}")
    link = beat.link.link
    if link.network and link.network.lower() not in ("3g", "4g", "wifi"):
        raise PlanRequestError(f"unknown network {link.network[:20]!r}; known: 3g, 4g, wifi")
    if not link.network:
        raise PlanRequestError("a heartbeat's link names its network (3g, 4g or wifi)")


def _check_model(summary: ProfileSummary, cloud: Profile) -> None:
    """FAILED_PRECONDITION for an agent holding another model or other weights."""
    if summary.model and summary.model != cloud.model:
        raise WeightsError(f"the agent holds {summary.model!r}; this fleet runs {cloud.model!r}")
    if summary.weights_hash and cloud.weights_hash and summary.weights_hash != cloud.weights_hash:
        raise WeightsError(
            f"the agent's weights {summary.weights_hash[:12]} differ from the cloud's "
            f"{cloud.weights_hash[:12]}"
        )


def _fmt_link(estimate: LinkEstimate) -> str:
    link = estimate.link
    return f"{link.network} up {link.up_mbps:.2f} down {link.down_mbps:.2f} Mbit/s"


__all__ = ["FleetScheduler", "FleetSettings"]
