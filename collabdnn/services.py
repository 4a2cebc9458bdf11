"""What the three services say about themselves and ask of each other, as plain data.

Placements (:mod:`collabdnn.placement`), classification results (:mod:`collabdnn.results`),
profiles (:mod:`collabdnn.planning.profiles`) and plans (:mod:`collabdnn.planning.planner`)
have their own modules; this one holds the rest of what travels: a service's identity
and load, the cloud's Execute call, the agent's Classify request and Info, and the
scheduler's reports and replies. :mod:`collabdnn.wire.serde` converts each of them to
and from its protobuf message; nothing else touches the messages.

Torch-free at import (thin clients and the scheduler use it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from collabdnn.model.unit_info import UnitInfo
from collabdnn.placement import AssignedPlan, Placement, Side
from collabdnn.planning.link import LinkEstimate
from collabdnn.planning.planner import Plan

if TYPE_CHECKING:
    from collabdnn.codec import CodecConfig
    from collabdnn.model.split_model import SplitModel

__all__ = [
    "AgentHeartbeat",
    "AgentInfo",
    "BatchInfo",
    "ClassifyRequest",
    "CloudCapacityInfo",
    "ExecuteReply",
    "ExecuteRequest",
    "FleetAgentView",
    "FleetView",
    "HeartbeatReply",
    "LinkReport",
    "Load",
    "LoadReport",
    "ObjectiveChange",
    "ProfileSummary",
    "ReplanRequest",
    "ReportOutcome",
    "ScheduledPlan",
    "ScheduledTrainingPlan",
    "ServiceInfo",
    "TrainingPlanQuery",
    "UnitService",
    "UnitTime",
]

# ------------------------------------------------------------------- every service


@dataclass(frozen=True)
class Load:
    """How busy a service is: requests in flight now, CPU use since the previous
    sample (0..100), requests finished since it started."""

    in_flight: int = 0
    cpu_percent: float = 0.0
    served: int = 0


@dataclass(frozen=True)
class ServiceInfo:
    """What a side holds (``role``) and how it runs it: both services' Info."""

    role: Side
    version: str
    model: str
    weights: str  # the weights spec, e.g. "seed:0"
    weights_hash: str  # identifies the parameters; both sides must agree
    device: str
    threads: int  # torch intra-op threads
    load: Load
    units: tuple[UnitInfo, ...]

    @classmethod
    def describe(cls, role: Side, model: SplitModel, load: Load) -> ServiceInfo:
        """The Info of a side that serves ``model`` (imports torch: services only)."""
        import torch

        from collabdnn import __version__

        return cls(
            role=role,
            version=__version__,
            model=model.name,
            weights=model.weights,
            weights_hash=model.weights_hash,
            device=str(model.device),
            threads=torch.get_num_threads(),
            load=load,
            units=tuple(model.units),
        )


# ------------------------------------------------------------------------ the cloud


@dataclass(frozen=True)
class ExecuteRequest:
    """Run units ``[start, end)``: on ``tensor`` (a codec frame, the output of unit
    ``start - 1``) or, when ``start == 0``, on encoded ``images``."""

    model: str
    weights_hash: str
    start: int
    end: int
    reply_codec: CodecConfig
    tensor: bytes | None = None
    images: tuple[bytes, ...] | None = None
    request_id: str = ""
    # When start == 0: encoded uint8 crops instead of photos (collabdnn.model.image_boundary).
    crops: tuple[bytes, ...] | None = None


@dataclass(frozen=True)
class UnitTime:
    index: int
    compute_ms: float


@dataclass(frozen=True)
class BatchInfo:
    """How an Execute ran (``cloud_server.batching``): ``requests`` that shared its
    batch (1: alone), the batch's ``rows``, and whether this reply's output is bit for
    bit what a batch-1 run gives."""

    requests: int = 1
    rows: int = 1
    bit_exact: bool = True


@dataclass(frozen=True)
class ExecuteReply:
    """The output of unit ``end - 1`` (a codec frame) and what the cloud spent on it."""

    output: bytes
    units: tuple[UnitTime, ...]
    decode_ms: float  # decoding the input frame (0 for images)
    encode_ms: float  # encoding the output frame
    server_ms: float  # the whole handling time inside the server
    load: Load  # the server's load when the request arrived
    batching: BatchInfo = BatchInfo()  # how it ran (dynamic batching, opt-in)


# ------------------------------------------------------------------------ the agent


@dataclass(frozen=True)
class ClassifyRequest:
    """Classify each image on its own; ``placement`` None = the agent's current plan,
    ``top_k`` 0 = 5."""

    images: tuple[bytes, ...]
    placement: Placement | None = None
    top_k: int = 0
    return_logits: bool = False
    # (boundary, codec) of each crossing (collabdnn.crossing); () = the plan's codecs
    # when ``placement`` is None, else the agent's default codec.
    codecs: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True)
class AgentInfo:
    """The agent's Info: what it holds, its cloud and that cloud's state, its plan and
    its link estimate."""

    info: ServiceInfo
    cloud_address: str
    cloud_state: str  # "verified", "mismatch", "unreachable", "refused" or "unchecked"
    plan: AssignedPlan
    link: LinkEstimate | None
    scheduler_address: str = ""  # "" = none


# -------------------------------------------------------------------- the scheduler


@dataclass(frozen=True)
class ScheduledPlan:
    """The scheduler's current plan: the planner's answer, its id (which changes with
    the placement), whether the agent holds it, and why it was made."""

    plan: Plan
    plan_id: str
    pushed: bool
    reason: str
    model: str
    source: str = "scheduler"

    def assigned(self) -> AssignedPlan:
        """What the agent is given: the placement, this plan's id and source."""
        codecs = tuple(sorted(self.plan.codecs.items()))
        return AssignedPlan(Placement.of(self.plan.placement), self.plan_id, self.source, codecs)

    def to_dict(self) -> dict[str, Any]:
        """``collabdnn plan --json``'s object plus the scheduler's fields."""
        return {
            **self.plan.to_dict(),
            "model": self.model,
            "plan_id": self.plan_id,
            "source": self.source,
            "pushed": self.pushed,
            "replan_reason": self.reason,
        }


@dataclass(frozen=True)
class TrainingPlanQuery:
    """Ask the scheduler for a training plan: fleet mode names the agent; a batch size
    of 0 asks for the scheduler's own (``--train-batch-size``)."""

    agent_id: str = ""
    batch_size: int = 0


@dataclass(frozen=True)
class ScheduledTrainingPlan:
    """The scheduler's training plan: the training planner's answer for one step of
    ``batch_size`` images (figures per step), and what it was made from."""

    plan: Plan
    batch_size: int
    model: str
    reason: str
    source: str = "scheduler"

    def to_dict(self) -> dict[str, Any]:
        """The ``"training"`` object of ``collabdnn plan --scheduler --json``."""
        return {
            **self.plan.to_dict(),
            "batch_size": self.batch_size,
            "model": self.model,
            "source": self.source,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class ReportOutcome:
    """What a report did: re-planned (an input moved past its threshold), changed the
    placement (a push follows), and the plan now current."""

    replanned: bool
    changed: bool
    plan_id: str
    placement: Placement


@dataclass(frozen=True)
class ReplanRequest:
    reason: str = ""
    reprofile: bool = False  # measure both sides again first


@dataclass(frozen=True)
class LinkReport:
    estimate: LinkEstimate
    source: str = ""  # who measured it, for the logs


@dataclass(frozen=True)
class LoadReport:
    """The cloud's slowdown factor K (0: derive it from ``load``)."""

    cloud_load: float = 0.0
    load: Load = Load()


@dataclass(frozen=True)
class ObjectiveChange:
    """A new objective; ``deadline_ms`` / ``weight`` None keep the current ones."""

    objective: str
    deadline_ms: float | None = None
    weight: float | None = None


# ---------------------------------------------------------------- fleet mode (many agents)


@dataclass(frozen=True)
class ProfileSummary:
    """What an agent says about its phone: the model it holds and how much slower than
    the profile the scheduler plans from it is (``slowdown``, 1 = as profiled)."""

    model: str = ""
    weights_hash: str = ""
    units: int = 0
    slowdown: float = 1.0


@dataclass(frozen=True)
class AgentHeartbeat:
    """Registration and heartbeat in one (the first from an unknown id registers it)."""

    agent_id: str
    address: str  # HOST:PORT of the agent's service (SetPlan, GetPlan, Profile)
    link: LinkEstimate
    battery: float = 1.0
    profile: ProfileSummary = ProfileSummary()
    plan_id: str = ""  # the plan the agent holds
    rate_hz: float = 0.0  # requests per second it expects or measured


@dataclass(frozen=True)
class HeartbeatReply:
    registered: bool  # this heartbeat registered the agent
    plan_id: str  # the agent's current plan ("" while not yet planned)
    heartbeat_s: float  # how often the scheduler wants heartbeats
    timeout_s: float  # silence after which it forgets the agent


@dataclass(frozen=True)
class FleetAgentView:
    """One agent as the fleet scheduler holds it."""

    agent_id: str
    address: str
    plan: ScheduledPlan
    link: LinkEstimate
    battery: float
    rate_hz: float
    last_seen_s: float  # seconds since its last heartbeat
    alone_spec: str  # the placement it would get alone
    profile: ProfileSummary

    def to_dict(self) -> dict[str, Any]:
        """The agent's entry in ``plan --scheduler --json``: its plan as today's
        single-agent object, under ``id``, with its link, battery and rate."""
        return {
            "id": self.agent_id,
            **self.plan.to_dict(),
            "address": self.address,
            "battery": self.battery,
            "rate_hz": self.rate_hz,
            "last_seen_s": self.last_seen_s,
            "alone_placement_spec": self.alone_spec,
            "link_estimate": {
                "observations": self.link.observations,
                "emulated": self.link.emulated,
            },
            "slowdown": self.profile.slowdown,
        }


@dataclass(frozen=True)
class FleetView:
    """Every agent's plan and the cloud fleet's capacity, as the scheduler sees them
    (``fleet`` False: a single-agent scheduler, ``--mobile``)."""

    fleet: bool
    agents: tuple[FleetAgentView, ...] = ()
    servers: float = 0.0
    replicas: int = 0
    utilisation: float = 0.0
    utilisation_alone: float = 0.0
    cloud_load: float = 1.0
    rounds: int = 0
    converged: bool = True
    capacity_source: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "agents": [agent.to_dict() for agent in self.agents],
            "cloud": {
                "servers": self.servers,
                "replicas": self.replicas,
                "utilisation": self.utilisation,
                "utilisation_alone": self.utilisation_alone,
                "cloud_load": self.cloud_load,
                "capacity_source": self.capacity_source,
            },
            "rounds": self.rounds,
            "converged": self.converged,
        }


@dataclass(frozen=True)
class UnitService:
    """One unit's measured service time at the cloud: ``calls`` uncontended runs (no
    other Execute in flight), their mean compute time."""

    index: int
    calls: int
    mean_ms: float


@dataclass(frozen=True)
class CloudCapacityInfo:
    """A cloud replica's capacity from its own counters (the Capacity call)."""

    workers: int  # Execute calls handled at once
    cpus: float  # CPUs this process may use
    threads: int  # torch intra-op threads per call
    units: tuple[UnitService, ...]
    load: Load
