"""Serde of fleet mode (fleet.proto): heartbeats, the fleet's plans, the cloud's capacity."""

from __future__ import annotations

from collabdnn.errors import PlanRequestError
from collabdnn.services import (
    AgentHeartbeat,
    CloudCapacityInfo,
    FleetAgentView,
    FleetView,
    HeartbeatReply,
    ProfileSummary,
    ScheduledPlan,
    UnitService,
)
from collabdnn.wire.proto import fleet_pb2, scheduler_pb2
from collabdnn.wire.serde.common import (
    link_estimate_from_proto,
    link_estimate_to_proto,
    load_from_proto,
    load_to_proto,
)
from collabdnn.wire.serde.scheduler import plan_result_from_proto, plan_result_to_proto


def _summary_to_proto(summary: ProfileSummary) -> fleet_pb2.ProfileSummary:
    return fleet_pb2.ProfileSummary(
        model=summary.model,
        weights_hash=summary.weights_hash,
        units=summary.units,
        slowdown=summary.slowdown,
    )


def _summary_from_proto(message: fleet_pb2.ProfileSummary) -> ProfileSummary:
    return ProfileSummary(message.model, message.weights_hash, message.units, message.slowdown)


def heartbeat_to_proto(beat: AgentHeartbeat) -> fleet_pb2.AgentHeartbeat:
    return fleet_pb2.AgentHeartbeat(
        agent_id=beat.agent_id,
        address=beat.address,
        link=link_estimate_to_proto(beat.link),
        battery=beat.battery,
        profile=_summary_to_proto(beat.profile),
        plan_id=beat.plan_id,
        rate_hz=beat.rate_hz,
    )


def heartbeat_from_proto(message: fleet_pb2.AgentHeartbeat) -> AgentHeartbeat:
    """PlanRequestError for a link no network has (a throughput <= 0, a negative RTT)."""
    try:
        link = link_estimate_from_proto(message.link)
    except ValueError as exc:
        raise PlanRequestError(f"bad heartbeat link: {exc}") from exc
    return AgentHeartbeat(
        agent_id=message.agent_id,
        address=message.address,
        link=link,
        battery=message.battery,
        profile=_summary_from_proto(message.profile),
        plan_id=message.plan_id,
        rate_hz=message.rate_hz,
    )


def heartbeat_reply_to_proto(reply: HeartbeatReply) -> fleet_pb2.HeartbeatReply:
    return fleet_pb2.HeartbeatReply(
        registered=reply.registered,
        plan_id=reply.plan_id,
        heartbeat_s=reply.heartbeat_s,
        timeout_s=reply.timeout_s,
    )


def heartbeat_reply_from_proto(message: fleet_pb2.HeartbeatReply) -> HeartbeatReply:
    return HeartbeatReply(
        message.registered, message.plan_id, message.heartbeat_s, message.timeout_s
    )


def plan_request_to_proto(agent_id: str) -> scheduler_pb2.GetSchedulerPlanRequest:
    return scheduler_pb2.GetSchedulerPlanRequest(agent_id=agent_id)


def plan_request_from_proto(message: scheduler_pb2.GetSchedulerPlanRequest) -> str:
    return message.agent_id


def _agent_to_proto(agent: FleetAgentView) -> fleet_pb2.FleetAgent:
    return fleet_pb2.FleetAgent(
        agent_id=agent.agent_id,
        address=agent.address,
        plan=plan_result_to_proto(agent.plan.plan),
        plan_id=agent.plan.plan_id,
        pushed=agent.plan.pushed,
        reason=agent.plan.reason,
        link=link_estimate_to_proto(agent.link),
        battery=agent.battery,
        rate_hz=agent.rate_hz,
        last_seen_s=agent.last_seen_s,
        alone_spec=agent.alone_spec,
        profile=_summary_to_proto(agent.profile),
    )


def _agent_from_proto(message: fleet_pb2.FleetAgent) -> FleetAgentView:
    profile = _summary_from_proto(message.profile)
    plan = ScheduledPlan(
        plan=plan_result_from_proto(message.plan),
        plan_id=message.plan_id,
        pushed=message.pushed,
        reason=message.reason,
        model=profile.model,
    )
    return FleetAgentView(
        agent_id=message.agent_id,
        address=message.address,
        plan=plan,
        link=link_estimate_from_proto(message.link),
        battery=message.battery,
        rate_hz=message.rate_hz,
        last_seen_s=message.last_seen_s,
        alone_spec=message.alone_spec,
        profile=profile,
    )


def fleet_view_to_proto(view: FleetView) -> fleet_pb2.FleetReply:
    return fleet_pb2.FleetReply(
        fleet=view.fleet,
        agents=[_agent_to_proto(a) for a in view.agents],
        servers=view.servers,
        replicas=view.replicas,
        utilisation=view.utilisation,
        utilisation_alone=view.utilisation_alone,
        cloud_load=view.cloud_load,
        rounds=view.rounds,
        converged=view.converged,
        capacity_source=view.capacity_source,
    )


def fleet_view_from_proto(message: fleet_pb2.FleetReply) -> FleetView:
    return FleetView(
        fleet=message.fleet,
        agents=tuple(_agent_from_proto(a) for a in message.agents),
        servers=message.servers,
        replicas=message.replicas,
        utilisation=message.utilisation,
        utilisation_alone=message.utilisation_alone,
        cloud_load=message.cloud_load,
        rounds=message.rounds,
        converged=message.converged,
        capacity_source=message.capacity_source,
    )


def cloud_capacity_to_proto(capacity: CloudCapacityInfo) -> fleet_pb2.CloudCapacity:
    return fleet_pb2.CloudCapacity(
        workers=capacity.workers,
        cpus=capacity.cpus,
        threads=capacity.threads,
        units=[
            fleet_pb2.UnitService(index=u.index, calls=u.calls, mean_ms=u.mean_ms)
            for u in capacity.units
        ],
        load=load_to_proto(capacity.load),
    )


def cloud_capacity_from_proto(message: fleet_pb2.CloudCapacity) -> CloudCapacityInfo:
    return CloudCapacityInfo(
        workers=message.workers,
        cpus=message.cpus,
        threads=message.threads,
        units=tuple(UnitService(u.index, u.calls, u.mean_ms) for u in message.units),
        load=load_from_proto(message.load),
    )
