"""The three services as a client sees them: their names, and typed stubs.

Each stub wraps the generated one: it takes domain objects, converts them with
:mod:`collabdnn.wire.serde`, calls, and converts the reply back, so callers never touch a
message. Every call takes a deadline (``timeout``, seconds, required) and raises
``grpc.RpcError`` when the call fails, exactly as the generated stub does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from collabdnn.wire import serde
from collabdnn.wire.proto import (
    cloud_pb2,
    cloud_pb2_grpc,
    common_pb2,
    fleet_pb2,
    mobile_pb2,
    mobile_pb2_grpc,
    scheduler_pb2,
    scheduler_pb2_grpc,
)

if TYPE_CHECKING:
    import grpc

    from collabdnn.measure.profile_service import ProfileQuery
    from collabdnn.placement import AssignedPlan
    from collabdnn.planning.profiles import Profile
    from collabdnn.results import ClassifyResult
    from collabdnn.services import (
        AgentHeartbeat,
        AgentInfo,
        ClassifyRequest,
        CloudCapacityInfo,
        ExecuteReply,
        ExecuteRequest,
        FleetView,
        HeartbeatReply,
        LinkReport,
        LoadReport,
        ObjectiveChange,
        ReplanRequest,
        ReportOutcome,
        ScheduledPlan,
        ScheduledTrainingPlan,
        ServiceInfo,
        TrainingPlanQuery,
    )

__all__ = [
    "CLOUD_SERVICE",
    "MOBILE_SERVICE",
    "SCHEDULER_SERVICE",
    "AgentStub",
    "CloudStub",
    "PendingExecute",
    "SchedulerStub",
]

# Full service names, as in method paths (/collabdnn.proto.CloudServer/Execute), health
# checks and retry policies.
CLOUD_SERVICE: str = cloud_pb2.DESCRIPTOR.services_by_name["CloudServer"].full_name
MOBILE_SERVICE: str = mobile_pb2.DESCRIPTOR.services_by_name["MobileAgent"].full_name
SCHEDULER_SERVICE: str = scheduler_pb2.DESCRIPTOR.services_by_name["Scheduler"].full_name


class PendingExecute:
    """An Execute in flight (gRPC's future, its reply converted): the agent stops waiting
    when a call's budget is spent, yet still measures the reply if it comes."""

    def __init__(self, future: Any) -> None:
        self._future = future

    def result(self, timeout: float | None = None) -> ExecuteReply:
        """The reply; ``grpc.FutureTimeoutError`` if none within ``timeout`` seconds,
        ``grpc.RpcError`` if the call failed."""
        return serde.execute_reply_from_proto(self._future.result(timeout=timeout))

    def failed(self) -> bool:
        """Done without a reply (cancelled, or ended with an error status)."""
        return bool(self._future.cancelled() or self._future.exception() is not None)

    def add_done_callback(self, callback: Callable[[PendingExecute], None]) -> None:
        self._future.add_done_callback(lambda _future: callback(self))


class CloudStub:
    """The cloud server: Execute, Profile, Info."""

    def __init__(self, channel: grpc.Channel) -> None:
        self._stub = cloud_pb2_grpc.CloudServerStub(channel)

    def execute(self, request: ExecuteRequest, *, timeout: float) -> ExecuteReply:
        return serde.execute_reply_from_proto(
            self._stub.Execute(serde.execute_request_to_proto(request), timeout=timeout)
        )

    def execute_async(self, request: ExecuteRequest, *, timeout: float) -> PendingExecute:
        """Start an Execute and return at once; the reply comes from the handle."""
        call = self._stub.Execute.future(serde.execute_request_to_proto(request), timeout=timeout)
        return PendingExecute(call)

    def profile(self, query: ProfileQuery, *, timeout: float) -> Profile:
        return serde.profile_reply_from_proto(
            self._stub.Profile(serde.profile_query_to_proto(query), timeout=timeout)
        )

    def info(self, *, timeout: float, wait_for_ready: bool = False) -> ServiceInfo:
        """``wait_for_ready`` waits (up to the deadline) for a connection instead of
        failing at once while there is none."""
        reply = self._stub.Info(
            common_pb2.InfoRequest(), timeout=timeout, wait_for_ready=wait_for_ready
        )
        return serde.service_info_from_proto(reply)

    def capacity(self, *, timeout: float) -> CloudCapacityInfo:
        """Workers, CPUs and measured unit service times (fleet mode's capacity)."""
        reply = self._stub.Capacity(fleet_pb2.CapacityRequest(), timeout=timeout)
        return serde.cloud_capacity_from_proto(reply)


class AgentStub:
    """The mobile agent: Classify, SetPlan, GetPlan, Info, Profile."""

    def __init__(self, channel: grpc.Channel) -> None:
        self._stub = mobile_pb2_grpc.MobileAgentStub(channel)

    def classify(self, request: ClassifyRequest, *, timeout: float) -> list[ClassifyResult]:
        reply = self._stub.Classify(serde.classify_request_to_proto(request), timeout=timeout)
        return serde.classify_reply_from_proto(reply)

    def set_plan(self, plan: AssignedPlan, *, timeout: float) -> AssignedPlan:
        reply = self._stub.SetPlan(serde.assigned_plan_to_proto(plan), timeout=timeout)
        return serde.assigned_plan_from_proto(reply)

    def get_plan(self, *, timeout: float) -> AssignedPlan:
        reply = self._stub.GetPlan(mobile_pb2.GetPlanRequest(), timeout=timeout)
        return serde.assigned_plan_from_proto(reply)

    def info(self, *, timeout: float) -> AgentInfo:
        return serde.agent_info_from_proto(
            self._stub.Info(common_pb2.InfoRequest(), timeout=timeout)
        )

    def profile(self, query: ProfileQuery, *, timeout: float) -> Profile:
        return serde.profile_reply_from_proto(
            self._stub.Profile(serde.profile_query_to_proto(query), timeout=timeout)
        )


class SchedulerStub:
    """The scheduler: its plan, re-plans, reports and the objective."""

    def __init__(self, channel: grpc.Channel) -> None:
        self._stub = scheduler_pb2_grpc.SchedulerStub(channel)

    def get_plan(self, *, timeout: float, agent_id: str = "") -> ScheduledPlan:
        """The plan; in fleet mode ``agent_id``'s (``""``: the plan a new agent gets)."""
        reply = self._stub.GetPlan(serde.plan_request_to_proto(agent_id), timeout=timeout)
        return serde.scheduled_plan_from_proto(reply)

    def get_training_plan(
        self, query: TrainingPlanQuery, *, timeout: float
    ) -> ScheduledTrainingPlan:
        """The training plan for ``query.batch_size`` (profiling both sides the first
        time for that batch size: give a deadline of minutes then)."""
        message = serde.training_plan_query_to_proto(query)
        reply = self._stub.GetTrainingPlan(message, timeout=timeout)
        return serde.scheduled_training_plan_from_proto(reply)

    def heartbeat(self, beat: AgentHeartbeat, *, timeout: float) -> HeartbeatReply:
        reply = self._stub.Heartbeat(serde.heartbeat_to_proto(beat), timeout=timeout)
        return serde.heartbeat_reply_from_proto(reply)

    def get_fleet(self, *, timeout: float) -> FleetView:
        reply = self._stub.GetFleet(fleet_pb2.GetFleetRequest(), timeout=timeout)
        return serde.fleet_view_from_proto(reply)

    def replan(self, request: ReplanRequest, *, timeout: float) -> ScheduledPlan:
        reply = self._stub.Replan(serde.replan_request_to_proto(request), timeout=timeout)
        return serde.scheduled_plan_from_proto(reply)

    def report_link(self, report: LinkReport, *, timeout: float) -> ReportOutcome:
        reply = self._stub.ReportLink(serde.link_report_to_proto(report), timeout=timeout)
        return serde.report_outcome_from_proto(reply)

    def report_battery(self, fraction: float, *, timeout: float) -> ReportOutcome:
        reply = self._stub.ReportBattery(serde.battery_report_to_proto(fraction), timeout=timeout)
        return serde.report_outcome_from_proto(reply)

    def report_load(self, report: LoadReport, *, timeout: float) -> ReportOutcome:
        reply = self._stub.ReportLoad(serde.load_report_to_proto(report), timeout=timeout)
        return serde.report_outcome_from_proto(reply)

    def set_objective(self, change: ObjectiveChange, *, timeout: float) -> ScheduledPlan:
        reply = self._stub.SetObjective(serde.objective_change_to_proto(change), timeout=timeout)
        return serde.scheduled_plan_from_proto(reply)
