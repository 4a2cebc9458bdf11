"""The scheduler's training plans: made on request (GetTrainingPlan), not pushed.

Why on request rather than pushed like inference plans: a training run keeps one
placement from its first step to its last (each side holds the parameters and optimizer
state of its own units), so the agent reads a training placement only at the moment a
run starts. The scheduler makes the plan at that moment from exactly what a push on the
inference triggers would have carried: the agent's current inference plan's link
estimate, battery, cloud load and objective (which ReportLink, ReportBattery,
ReportLoad, heartbeats and SetObjective keep current), and both sides' training
profiles. So there is no second pusher, no plan versions to converge on, no
acknowledgements, and no plan older than the run that uses it; an agent that cannot
reach the scheduler plans the run itself.

Profiles: for each (agent, batch size), both sides' ``ProfileTraining`` calls on the
scheduler's photos, once, the first time that batch size is asked for (a few seconds of
each side's CPU; later requests reuse them). Bounded: one profiling at a time (two
would time each other); a request waits for another's profiling at most ``wait_s``
(its own deadline) and is refused RESOURCE_EXHAUSTED after; each profile call has the
deadline ``profile_timeout_s``; at most :data:`MAX_CACHED` profile pairs are kept
(least recently used dropped); the batch size is at most :data:`MAX_BATCH_SIZE`
(and each side's ``--max-batch``). ``Replan(reprofile)`` drops them.

The objective is the inference plan's, except that a deadline (per image, for
inference) has no meaning per training step: ``deadline`` plans training for latency.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace

from collabdnn.errors import BusyError, PlanRequestError
from collabdnn.planning.training import plan_training
from collabdnn.planning.training_profiles import (
    TrainingProfile,
    slower_training_profile,
    training_input_from_profiles,
)
from collabdnn.services import ScheduledPlan, ScheduledTrainingPlan
from collabdnn.training.spec import TrainingProfileQuery
from collabdnn.transport.channels import ChannelPool
from collabdnn.wire.stubs import AgentStub
from collabdnn.wire.training_stubs import CloudTrainingStub, TrainerStub

log = logging.getLogger(__name__)

__all__ = ["MAX_BATCH_SIZE", "MAX_CACHED", "TrainingPlans"]

MAX_BATCH_SIZE = 256
MAX_CACHED = 8  # (agent, batch size) profile pairs kept

Pair = tuple[TrainingProfile, TrainingProfile]


class TrainingPlans:
    """Both sides' training profiles per (agent, batch size), and the plans made from them."""

    def __init__(
        self,
        pool: ChannelPool,
        cloud: str,
        images: Callable[[], list[bytes]],
        default_batch: int,
        profile_timeout_s: float,
        rpc_timeout_s: float,
    ) -> None:
        self.pool, self.cloud, self.images = pool, cloud, images
        self.default_batch = default_batch
        self.profile_timeout_s, self.rpc_timeout_s = profile_timeout_s, rpc_timeout_s
        self._cache: OrderedDict[tuple[str, int], Pair] = OrderedDict()
        self._profiling = threading.Lock()  # one profiling at a time
        self._lock = threading.Lock()  # the cache
        self.profilings = 0  # profile pairs measured (tests, logs)

    def batch_size(self, asked: int) -> int:
        batch = asked or self.default_batch
        if not 1 <= batch <= MAX_BATCH_SIZE:
            raise PlanRequestError(f"a training batch size is 1 to {MAX_BATCH_SIZE}, got {batch}")
        return batch

    def forget(self) -> None:
        """Drop every profile (both sides are being re-profiled)."""
        with self._lock:
            self._cache.clear()

    def plan(
        self,
        current: ScheduledPlan,
        agent: str,
        batch_size: int,
        slowdown: float = 1.0,
        wait_s: float | None = None,
    ) -> ScheduledTrainingPlan:
        """The training plan for one step of ``batch_size`` images on the agent at
        ``agent``, priced on ``current``'s link, power, battery, cloud load and objective."""
        if not (agent and self.cloud):
            raise PlanRequestError(
                "a training plan profiles both sides: the scheduler needs the agent's "
                "address (--mobile, or its heartbeat) and the cloud's (--cloud)"
            )
        batch = self.batch_size(batch_size)
        mobile, cloud = self._profiles(agent, batch, wait_s)
        if slowdown != 1.0:
            mobile = slower_training_profile(mobile, slowdown)
        inference = current.plan
        objective = "latency" if inference.objective == "deadline" else inference.objective
        constraints = replace(inference.constraints, deadline_ms=None)
        try:
            chosen = plan_training(
                training_input_from_profiles(mobile, cloud),
                inference.link,
                inference.power,
                objective,
                constraints,
            )
        except ValueError as exc:
            raise PlanRequestError(f"cannot plan training: {exc}") from exc
        link = inference.link
        reason = (
            f"inference plan {current.plan_id or '-'}'s inputs: {objective}, link "
            f"{link.network} up {link.up_mbps:.3g} down {link.down_mbps:.3g} Mbit/s RTT "
            f"{link.rtt_ms:.3g} ms, battery {constraints.battery_fraction:.0%}, cloud load "
            f"{constraints.cloud_load:.2f}"
        )
        log.info(
            "training plan for %s, batch %d: %s (%.0f ms per step predicted; %s)",
            agent, batch, chosen.spec, chosen.latency_ms, reason,
        )  # fmt: skip
        return ScheduledTrainingPlan(chosen, batch, current.model, reason, current.source)

    def _profiles(self, agent: str, batch: int, wait_s: float | None) -> Pair:
        key = (agent, batch)
        cached = self._cached(key)
        if cached is not None:
            return cached
        wait = self.profile_timeout_s if wait_s is None else max(0.0, wait_s)
        if not self._profiling.acquire(timeout=wait):
            raise BusyError(
                "the scheduler is measuring training profiles for another request; retry"
            )
        try:
            cached = self._cached(key)  # measured while this request waited
            if cached is not None:
                return cached
            pair = self._measure(agent, batch)
            with self._lock:
                self._cache[key] = pair
                while len(self._cache) > MAX_CACHED:
                    self._cache.popitem(last=False)
                self.profilings += 1
            return pair
        finally:
            self._profiling.release()

    def _cached(self, key: tuple[str, int]) -> Pair | None:
        with self._lock:
            pair = self._cache.get(key)
            if pair is not None:
                self._cache.move_to_end(key)
            return pair

    def _measure(self, agent: str, batch: int) -> Pair:
        """Both sides' ProfileTraining, for the model and weights the agent holds."""
        begin = time.perf_counter()
        info = AgentStub(self.pool.get(agent)).info(timeout=self.rpc_timeout_s).info
        query = TrainingProfileQuery(info.model, info.weights_hash, tuple(self.images()), batch)
        mobile = TrainerStub(self.pool.get(agent)).profile(query, timeout=self.profile_timeout_s)
        cloud = CloudTrainingStub(self.pool.get(self.cloud)).profile(
            query, timeout=self.profile_timeout_s
        )
        log.info(
            "training profiles of %s (batch %d) from agent %s and cloud %s in %.1f s",
            info.model, batch, agent, self.cloud, time.perf_counter() - begin,
        )  # fmt: skip
        return mobile, cloud
