"""The Scheduler RPCs, thin over :class:`~scheduler.core.Scheduler`.

Each handler converts the request with :mod:`collabdnn.wire.serde`, calls the core and
converts the reply back; :func:`collabdnn.wire.status.rpc` maps domain errors to status
codes: UNAVAILABLE before the first plan (:class:`~collabdnn.errors.NotReadyError`),
INVALID_ARGUMENT for a bad objective, link or battery figure, and the code of a side's
failed Profile call while re-profiling. A re-profiling Replan makes both sides profile
themselves (seconds of their CPU): one is admitted at a time, another meanwhile is
refused RESOURCE_EXHAUSTED at once. GetTrainingPlan may profile both sides' training
(once per batch size): it waits for another request's profiling no longer than its own
deadline, then RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import grpc

from collabdnn.transport.admission import Admission
from collabdnn.wire import serde
from collabdnn.wire.proto import scheduler_pb2_grpc
from collabdnn.wire.status import rpc
from scheduler.core import Scheduler, cloud_load_factor

if TYPE_CHECKING:
    from collabdnn.wire import messages

log = logging.getLogger(__name__)


class SchedulerServicer(scheduler_pb2_grpc.SchedulerServicer):
    """UNAVAILABLE until the core has its first plan (its keeper is :class:`Ready`)."""

    def __init__(self, core: Scheduler) -> None:
        self.core = core
        self.reprofiling = Admission(1, name="re-profiling Replan calls")

    def _plan_reply(self) -> messages.PlanReply:
        return serde.scheduled_plan_to_proto(self.core.snapshot())

    @rpc("GetPlan")
    def GetPlan(
        self, request: messages.GetSchedulerPlanRequest, context: grpc.ServicerContext
    ) -> messages.PlanReply:
        agent_id = serde.plan_request_from_proto(request)
        return serde.scheduled_plan_to_proto(self.core.plan_for(agent_id))

    @rpc("Replan", downstream="re-profiling failed")
    def Replan(
        self, request: messages.ReplanRequest, context: grpc.ServicerContext
    ) -> messages.PlanReply:
        asked = serde.replan_request_from_proto(request)
        if asked.reprofile:
            with self.reprofiling.admit(context, "Replan(reprofile)"):
                self.core.replan(asked.reason or "asked", reprofile=True)
        else:
            self.core.replan(asked.reason or "asked")
        return self._plan_reply()

    @rpc("ReportLink")
    def ReportLink(
        self, request: messages.LinkReport, context: grpc.ServicerContext
    ) -> messages.ReportReply:
        report = serde.link_report_from_proto(request)
        log.debug("link report from %s: %s", report.source or "-", report.estimate.link)
        switch = self.core.report_link(report.estimate.link)
        return serde.report_outcome_to_proto(self.core.outcome(switch))

    @rpc("ReportBattery")
    def ReportBattery(
        self, request: messages.BatteryReport, context: grpc.ServicerContext
    ) -> messages.ReportReply:
        switch = self.core.report_battery(serde.battery_report_from_proto(request))
        return serde.report_outcome_to_proto(self.core.outcome(switch))

    @rpc("ReportLoad")
    def ReportLoad(
        self, request: messages.LoadReport, context: grpc.ServicerContext
    ) -> messages.ReportReply:
        report = serde.load_report_from_proto(request)
        switch = self.core.report_load(report.cloud_load or cloud_load_factor(report.load))
        return serde.report_outcome_to_proto(self.core.outcome(switch))

    @rpc("SetObjective")
    def SetObjective(
        self, request: messages.ObjectiveRequest, context: grpc.ServicerContext
    ) -> messages.PlanReply:
        change = serde.objective_change_from_proto(request)
        self.core.set_objective(change.objective, change.deadline_ms, change.weight)
        return self._plan_reply()

    @rpc("Heartbeat")
    def Heartbeat(
        self, request: messages.AgentHeartbeat, context: grpc.ServicerContext
    ) -> messages.HeartbeatReply:
        reply = self.core.heartbeat(serde.heartbeat_from_proto(request))
        return serde.heartbeat_reply_to_proto(reply)

    @rpc("GetTrainingPlan", downstream="training profiles failed")
    def GetTrainingPlan(
        self, request: messages.TrainingPlanRequest, context: grpc.ServicerContext
    ) -> messages.TrainingPlanReply:
        query = serde.training_plan_query_from_proto(request)
        plan = self.core.training_plan(query, wait_s=context.time_remaining())
        return serde.scheduled_training_plan_to_proto(plan)

    @rpc("GetFleet")
    def GetFleet(
        self, request: messages.GetFleetRequest, context: grpc.ServicerContext
    ) -> messages.FleetReply:
        return serde.fleet_view_to_proto(self.core.fleet_view())
