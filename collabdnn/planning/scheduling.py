"""The scheduler's decision logic, free of gRPC: when to re-plan and what changed.

The scheduler service (``scheduler/``) feeds this with profiles, link estimates,
battery reports and cloud load; this module decides whether a new plan is due and
records each switch. A new link estimate triggers a re-plan only when it moved by at
least ``replan_threshold`` (relative) from the link the current plan was made for; the
plan is then pushed only if the placement actually changed. Everything is guarded by
one lock, since reports arrive on gRPC worker threads.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field, replace

from collabdnn.placement import spec_of
from collabdnn.planning.energy import PowerModel, power_model
from collabdnn.planning.link import Link
from collabdnn.planning.planner import Constraints, Plan, plan
from collabdnn.planning.profiles import PlanInput

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PowerSettings:
    """User overrides of the power model; the radio part follows the link's network."""

    busy_mw: float | None = None
    wait_mw: float | None = None
    alpha_up: float | None = None
    alpha_down: float | None = None
    beta: float | None = None

    def model(self, network: str) -> PowerModel:
        """The power model on ``network`` with these overrides."""
        return power_model(
            network, self.busy_mw, self.wait_mw, self.alpha_up, self.alpha_down, self.beta
        )


@dataclass(frozen=True)
class PlanSwitch:
    """One re-plan: what was placed before, what is placed now, and why."""

    at: float
    reason: str
    old_spec: str | None
    new_spec: str
    link: Link
    plan: Plan
    # The codec of each crossing before and now: a new codec is pushed like a new
    # placement (a faster or slower link can change the codec alone).
    old_codecs: dict[int, str] | None = None

    @property
    def changed(self) -> bool:
        return self.old_spec != self.new_spec or (
            self.old_codecs is not None and self.old_codecs != self.plan.codecs
        )


def relative_change(old: Link, new: Link) -> float:
    """The largest relative change among uplink, downlink and RTT."""
    changes = [
        abs(new.up_mbps - old.up_mbps) / old.up_mbps,
        abs(new.down_mbps - old.down_mbps) / old.down_mbps,
        abs(new.rtt_ms - old.rtt_ms) / max(old.rtt_ms, 1.0),
    ]
    return max(changes)


@dataclass
class PlanKeeper:
    """Holds the current plan and re-plans when its inputs move enough."""

    inputs: PlanInput
    link: Link
    objective: str = "latency"
    constraints: Constraints = field(default_factory=Constraints)
    power: PowerSettings = field(default_factory=PowerSettings)
    replan_threshold: float = 0.2
    history: list[PlanSwitch] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._plan: Plan | None = None
        self._planned_link = self.link
        self.replan("initial plan")

    @property
    def current(self) -> Plan:
        with self._lock:
            assert self._plan is not None
            return self._plan

    def _compute(self) -> Plan:
        model = self.power.model(self.link.network)
        return plan(self.inputs, self.link, model, self.objective, self.constraints)

    def replan(self, reason: str) -> PlanSwitch:
        """Plan now for the current inputs; logs and records the switch."""
        with self._lock:
            old = spec_of(self._plan.placement) if self._plan else None
            old_codecs = self._plan.codecs if self._plan else None
            new_plan = self._compute()
            self._plan, self._planned_link = new_plan, self.link
            switch = PlanSwitch(
                time.time(),
                reason,
                old,
                spec_of(new_plan.placement),
                self.link,
                new_plan,
                old_codecs,
            )
            self.history.append(switch)
            del self.history[:-100]
        link = self.link
        if switch.changed:
            log.info(
                "plan %s -> %s (%s; link up %.2f down %.2f Mbit/s rtt %.1f ms %s; "
                "predicted %.1f ms, %.1f mJ)",
                old or "-",
                switch.new_spec,
                reason,
                link.up_mbps,
                link.down_mbps,
                link.rtt_ms,
                link.network,
                new_plan.latency_ms,
                new_plan.mobile_energy_mj,
            )
        else:
            # DEBUG: a link estimate that wobbles re-plans often; only a switch is news.
            log.debug("re-planned (%s): placement unchanged %s", reason, switch.new_spec)
        return switch

    def update_link(self, link: Link, force: bool = False) -> PlanSwitch | None:
        """A new link estimate; re-plans when it moved past the threshold (or ``force``)."""
        with self._lock:
            moved = relative_change(self._planned_link, link)
            self.link = link
            if not force and moved < self.replan_threshold:
                return None
            return self.replan(f"link changed by {moved:.0%}")

    def update_battery(self, fraction: float) -> PlanSwitch | None:
        """A battery report; re-plans when it crosses the threshold either way."""
        with self._lock:
            before = self.constraints.battery_fraction < self.constraints.battery_threshold
            self.constraints = replace(self.constraints, battery_fraction=fraction)
            after = fraction < self.constraints.battery_threshold
            if before == after:
                return None
            return self.replan(f"battery at {fraction:.0%}")

    def update_cloud_load(self, load: float) -> PlanSwitch | None:
        """The cloud's slowdown factor K; re-plans past the same relative threshold."""
        with self._lock:
            old = self.constraints.cloud_load
            self.constraints = replace(self.constraints, cloud_load=load)
            if abs(load - old) / old < self.replan_threshold:
                return None
            return self.replan(f"cloud load {old:.2f} -> {load:.2f}")

    def update_objective(
        self, objective: str, deadline_ms: float | None = None, weight: float | None = None
    ) -> PlanSwitch:
        """A new objective (and deadline or weight); re-plans at once.

        Validated first (:class:`~collabdnn.planning.planner.Constraints` and the planner raise
        ``ValueError``), so a bad request leaves the current objective and plan alone.
        """
        with self._lock:
            constraints = self.constraints
            if deadline_ms is not None:
                constraints = replace(constraints, deadline_ms=deadline_ms)
            if weight is not None:
                constraints = replace(constraints, weight=weight)
            saved = (self.objective, self.constraints)
            self.objective, self.constraints = objective, constraints
            try:
                return self.replan(f"objective {objective}")
            except ValueError:
                self.objective, self.constraints = saved
                raise

    def update_inputs(self, inputs: PlanInput, reason: str) -> PlanSwitch:
        """New profiles (re-profiled sides); re-plans at once."""
        with self._lock:
            self.inputs = inputs
            return self.replan(reason)
