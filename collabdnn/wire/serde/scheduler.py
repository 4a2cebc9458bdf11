"""Serde of the scheduler's calls (scheduler.proto) and of the planner's answer
(plan.proto): plans, reports and the replies to them."""

from __future__ import annotations

from collabdnn.errors import PlanRequestError
from collabdnn.placement import PlacementError
from collabdnn.planning.energy import PowerModel, RadioModel
from collabdnn.planning.link import Link
from collabdnn.planning.planner import (
    Baseline,
    Constraints,
    Cost,
    Plan,
    TransferBreakdown,
    UnitBreakdown,
)
from collabdnn.services import (
    LinkReport,
    LoadReport,
    ObjectiveChange,
    ReplanRequest,
    ReportOutcome,
    ScheduledPlan,
    ScheduledTrainingPlan,
    TrainingPlanQuery,
)
from collabdnn.wire.proto import plan_pb2, scheduler_pb2
from collabdnn.wire.serde.common import (
    link_estimate_from_proto,
    link_estimate_to_proto,
    load_from_proto,
    load_to_proto,
    placement_from_proto,
    placement_to_proto,
    side_from_proto,
    side_to_proto,
    sides_from_proto,
    sides_to_proto,
)

# --- the planner's answer --------------------------------------------------------------


def plan_result_to_proto(plan: Plan) -> plan_pb2.PlanResult:
    message = plan_pb2.PlanResult(
        objective=plan.objective,
        objective_used=plan.objective_used,
        reason=plan.reason,
        units=list(plan.units),
        placement=sides_to_proto(plan.placement),
        cost=_cost_to_proto(plan.cost),
        feasible=plan.feasible,
        baselines=[_baseline_to_proto(b) for b in plan.baselines.values()],
        link=link_to_proto(plan.link),
        power=_power_to_proto(plan.power),
        constraints=_constraints_to_proto(plan.constraints),
    )
    if plan.objective_value is not None:
        message.objective_value = plan.objective_value
    return message


def plan_result_from_proto(message: plan_pb2.PlanResult) -> Plan:
    """ValueError for figures the planner's types refuse (a bad link or constraint)."""
    baselines = [_baseline_from_proto(b) for b in message.baselines]
    return Plan(
        objective=message.objective,
        objective_used=message.objective_used,
        reason=message.reason,
        units=tuple(message.units),
        placement=sides_from_proto(message.placement),
        cost=_cost_from_proto(message.cost),
        feasible=message.feasible,
        objective_value=(message.objective_value if message.HasField("objective_value") else None),
        baselines={b.name: b for b in baselines},
        link=link_from_proto(message.link),
        power=_power_from_proto(message.power),
        constraints=_constraints_from_proto(message.constraints),
    )


def link_to_proto(link: Link) -> plan_pb2.Link:
    return plan_pb2.Link(
        up_mbps=link.up_mbps, down_mbps=link.down_mbps, rtt_ms=link.rtt_ms, network=link.network
    )


def link_from_proto(message: plan_pb2.Link) -> Link:
    return Link(message.up_mbps, message.down_mbps, message.rtt_ms, message.network)


def _cost_to_proto(cost: Cost) -> plan_pb2.Cost:
    return plan_pb2.Cost(
        latency_ms=cost.latency_ms,
        mobile_energy_mj=cost.mobile_energy_mj,
        units=[
            plan_pb2.UnitBreakdown(
                index=u.index,
                name=u.name,
                platform=side_to_proto(u.platform),
                compute_ms=u.compute_ms,
                energy_mj=u.energy_mj,
            )
            for u in cost.units
        ],
        transfers=[
            plan_pb2.TransferBreakdown(
                boundary=t.boundary,
                after_unit=t.after_unit,
                direction=_direction_to_proto(t.direction),
                bytes=t.bytes,
                ms=t.ms,
                energy_mj=t.energy_mj,
                codec=t.codec,
            )
            for t in cost.transfers
        ],
    )


def _cost_from_proto(message: plan_pb2.Cost) -> Cost:
    return Cost(
        latency_ms=message.latency_ms,
        mobile_energy_mj=message.mobile_energy_mj,
        units=tuple(
            UnitBreakdown(u.index, u.name, side_from_proto(u.platform), u.compute_ms, u.energy_mj)
            for u in message.units
        ),
        transfers=tuple(
            TransferBreakdown(
                t.boundary,
                t.after_unit,
                _direction_from_proto(t.direction),
                t.bytes,
                t.ms,
                t.energy_mj,
                t.codec,
            )
            for t in message.transfers
        ),
    )


def _direction_to_proto(direction: str) -> plan_pb2.Direction:
    return plan_pb2.Direction.Value(direction.upper())  # type: ignore[return-value]


def _direction_from_proto(value: int) -> str:
    if value not in (plan_pb2.UP, plan_pb2.DOWN):
        raise ValueError(f"a transfer goes up or down, not {value!r}")
    return plan_pb2.Direction.Name(value).lower()


def _baseline_to_proto(baseline: Baseline) -> plan_pb2.Baseline:
    message = plan_pb2.Baseline(
        name=baseline.name,
        placement=sides_to_proto(baseline.placement),
        cost=_cost_to_proto(baseline.cost),
        feasible=baseline.feasible,
    )
    if baseline.cut is not None:
        message.cut = baseline.cut
    return message


def _baseline_from_proto(message: plan_pb2.Baseline) -> Baseline:
    return Baseline(
        name=message.name,
        placement=sides_from_proto(message.placement),
        cost=_cost_from_proto(message.cost),
        feasible=message.feasible,
        cut=message.cut if message.HasField("cut") else None,
    )


def _power_to_proto(power: PowerModel) -> plan_pb2.PowerModel:
    radio = power.radio
    return plan_pb2.PowerModel(
        busy_mw=power.busy_mw,
        wait_mw=power.wait_mw,
        radio=plan_pb2.RadioModel(
            alpha_up_mw_per_mbps=radio.alpha_up_mw_per_mbps,
            alpha_down_mw_per_mbps=radio.alpha_down_mw_per_mbps,
            beta_mw=radio.beta_mw,
        ),
    )


def _power_from_proto(message: plan_pb2.PowerModel) -> PowerModel:
    radio = message.radio
    return PowerModel(
        busy_mw=message.busy_mw,
        wait_mw=message.wait_mw,
        radio=RadioModel(radio.alpha_up_mw_per_mbps, radio.alpha_down_mw_per_mbps, radio.beta_mw),
    )


def _constraints_to_proto(constraints: Constraints) -> plan_pb2.Constraints:
    message = plan_pb2.Constraints(
        battery_fraction=constraints.battery_fraction,
        battery_threshold=constraints.battery_threshold,
        cloud_load=constraints.cloud_load,
        weight=constraints.weight,
    )
    if constraints.deadline_ms is not None:
        message.deadline_ms = constraints.deadline_ms
    return message


def _constraints_from_proto(message: plan_pb2.Constraints) -> Constraints:
    return Constraints(
        deadline_ms=message.deadline_ms if message.HasField("deadline_ms") else None,
        battery_fraction=message.battery_fraction,
        battery_threshold=message.battery_threshold,
        cloud_load=message.cloud_load,
        weight=message.weight,
    )


# --- the scheduler's replies -----------------------------------------------------------


def scheduled_plan_to_proto(plan: ScheduledPlan) -> scheduler_pb2.PlanReply:
    return scheduler_pb2.PlanReply(
        plan=plan_result_to_proto(plan.plan),
        plan_id=plan.plan_id,
        pushed=plan.pushed,
        reason=plan.reason,
        model=plan.model,
        source=plan.source,
    )


def scheduled_plan_from_proto(message: scheduler_pb2.PlanReply) -> ScheduledPlan:
    return ScheduledPlan(
        plan=plan_result_from_proto(message.plan),
        plan_id=message.plan_id,
        pushed=message.pushed,
        reason=message.reason,
        model=message.model,
        source=message.source,
    )


def training_plan_query_to_proto(query: TrainingPlanQuery) -> scheduler_pb2.TrainingPlanRequest:
    return scheduler_pb2.TrainingPlanRequest(agent_id=query.agent_id, batch_size=query.batch_size)


def training_plan_query_from_proto(message: scheduler_pb2.TrainingPlanRequest) -> TrainingPlanQuery:
    return TrainingPlanQuery(agent_id=message.agent_id, batch_size=message.batch_size)


def scheduled_training_plan_to_proto(
    plan: ScheduledTrainingPlan,
) -> scheduler_pb2.TrainingPlanReply:
    return scheduler_pb2.TrainingPlanReply(
        plan=plan_result_to_proto(plan.plan),
        batch_size=plan.batch_size,
        model=plan.model,
        source=plan.source,
        reason=plan.reason,
    )


def scheduled_training_plan_from_proto(
    message: scheduler_pb2.TrainingPlanReply,
) -> ScheduledTrainingPlan:
    return ScheduledTrainingPlan(
        plan=plan_result_from_proto(message.plan),
        batch_size=message.batch_size,
        model=message.model,
        reason=message.reason,
        source=message.source,
    )


def report_outcome_to_proto(outcome: ReportOutcome) -> scheduler_pb2.ReportReply:
    return scheduler_pb2.ReportReply(
        replanned=outcome.replanned,
        changed=outcome.changed,
        plan_id=outcome.plan_id,
        placement=placement_to_proto(outcome.placement),
    )


def report_outcome_from_proto(message: scheduler_pb2.ReportReply) -> ReportOutcome:
    placement = placement_from_proto(message.placement)
    if placement is None:
        raise PlacementError("a report reply names the current placement")
    return ReportOutcome(message.replanned, message.changed, message.plan_id, placement)


# --- the scheduler's requests ----------------------------------------------------------


def replan_request_to_proto(request: ReplanRequest) -> scheduler_pb2.ReplanRequest:
    return scheduler_pb2.ReplanRequest(reprofile=request.reprofile, reason=request.reason)


def replan_request_from_proto(message: scheduler_pb2.ReplanRequest) -> ReplanRequest:
    return ReplanRequest(reason=message.reason, reprofile=message.reprofile)


def link_report_to_proto(report: LinkReport) -> scheduler_pb2.LinkReport:
    return scheduler_pb2.LinkReport(
        link=link_estimate_to_proto(report.estimate), source=report.source
    )


def link_report_from_proto(message: scheduler_pb2.LinkReport) -> LinkReport:
    """PlanRequestError for figures no link has (a throughput <= 0, a negative RTT)."""
    try:
        estimate = link_estimate_from_proto(message.link)
    except ValueError as exc:
        raise PlanRequestError(f"bad link report: {exc}") from exc
    return LinkReport(estimate, message.source)


def battery_report_to_proto(fraction: float) -> scheduler_pb2.BatteryReport:
    return scheduler_pb2.BatteryReport(fraction=fraction)


def battery_report_from_proto(message: scheduler_pb2.BatteryReport) -> float:
    return message.fraction


def load_report_to_proto(report: LoadReport) -> scheduler_pb2.LoadReport:
    return scheduler_pb2.LoadReport(cloud_load=report.cloud_load, load=load_to_proto(report.load))


def load_report_from_proto(message: scheduler_pb2.LoadReport) -> LoadReport:
    return LoadReport(message.cloud_load, load_from_proto(message.load))


def objective_change_to_proto(change: ObjectiveChange) -> scheduler_pb2.ObjectiveRequest:
    message = scheduler_pb2.ObjectiveRequest(objective=change.objective)
    if change.deadline_ms is not None:
        message.deadline_ms = change.deadline_ms
    if change.weight is not None:
        message.weight = change.weight
    return message


def objective_change_from_proto(message: scheduler_pb2.ObjectiveRequest) -> ObjectiveChange:
    return ObjectiveChange(
        objective=message.objective,
        deadline_ms=message.deadline_ms if message.HasField("deadline_ms") else None,
        weight=message.weight if message.HasField("weight") else None,
    )
