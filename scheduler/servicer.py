"""The Scheduler RPCs, thin over :class:`~scheduler.core.Scheduler`.

Each handler converts the request, calls the core, and maps domain errors to status
codes with :func:`collabdnn.wire.status.abort_for`: UNAVAILABLE before the first plan
(:class:`~collabdnn.errors.NotReadyError`), INVALID_ARGUMENT for a bad objective, link
or battery figure.
"""

from __future__ import annotations

import json
import logging

import grpc

from collabdnn.errors import PlanRequestError
from collabdnn.planning.link import Link
from collabdnn.planning.scheduling import PlanSwitch
from collabdnn.wire import serde
from collabdnn.wire.proto import scheduler_pb2, scheduler_pb2_grpc
from collabdnn.wire.status import domain_errors
from scheduler.core import Scheduler, cloud_load_factor

log = logging.getLogger(__name__)


class SchedulerServicer(scheduler_pb2_grpc.SchedulerServicer):
    def __init__(self, core: Scheduler) -> None:
        self.core = core

    def _plan_reply(self) -> scheduler_pb2.PlanReply:
        snap = self.core.snapshot()
        return scheduler_pb2.PlanReply(
            plan_json=json.dumps(snap.to_dict()),
            placement=serde.sides_to_proto(snap.plan.placement),
            plan_id=snap.plan_id, pushed=snap.pushed, reason=snap.reason,
        )  # fmt: skip

    def _report_reply(self, switch: PlanSwitch | None) -> scheduler_pb2.ReportReply:
        snap = self.core.snapshot()
        return scheduler_pb2.ReportReply(
            replanned=switch is not None, changed=bool(switch and switch.changed),
            plan_id=snap.plan_id, placement=serde.sides_to_proto(snap.plan.placement),
        )  # fmt: skip

    @domain_errors("GetPlan")
    def GetPlan(
        self, request: scheduler_pb2.GetSchedulerPlanRequest, context: grpc.ServicerContext
    ) -> scheduler_pb2.PlanReply:
        return self._plan_reply()

    @domain_errors("Replan")
    def Replan(
        self, request: scheduler_pb2.ReplanRequest, context: grpc.ServicerContext
    ) -> scheduler_pb2.PlanReply:
        try:
            self.core.replan(request.reason or "asked", request.reprofile)
        except grpc.RpcError as exc:  # a side's Profile call failed while re-profiling
            code = exc.code()  # type: ignore[attr-defined]
            context.abort(code, f"re-profiling failed: {exc.details()}")  # type: ignore[attr-defined]
        return self._plan_reply()

    @domain_errors("ReportLink")
    def ReportLink(
        self, request: scheduler_pb2.LinkReport, context: grpc.ServicerContext
    ) -> scheduler_pb2.ReportReply:
        est = request.link
        try:
            link = Link(
                est.up_mbps,
                est.down_mbps,
                est.rtt_ms,
                est.network or self.core.snapshot().plan.link.network,
            )
        except ValueError as exc:
            raise PlanRequestError(f"bad link report: {exc}") from exc
        log.debug("link report from %s: %s", request.source or "-", link)
        return self._report_reply(self.core.report_link(link))

    @domain_errors("ReportBattery")
    def ReportBattery(
        self, request: scheduler_pb2.BatteryReport, context: grpc.ServicerContext
    ) -> scheduler_pb2.ReportReply:
        return self._report_reply(self.core.report_battery(request.fraction))

    @domain_errors("ReportLoad")
    def ReportLoad(
        self, request: scheduler_pb2.LoadReport, context: grpc.ServicerContext
    ) -> scheduler_pb2.ReportReply:
        k = request.cloud_load or cloud_load_factor(request.load)
        return self._report_reply(self.core.report_load(k))

    @domain_errors("SetObjective")
    def SetObjective(
        self, request: scheduler_pb2.ObjectiveRequest, context: grpc.ServicerContext
    ) -> scheduler_pb2.PlanReply:
        self.core.set_objective(
            request.objective,
            request.deadline_ms if request.HasField("deadline_ms") else None,
            request.weight if request.HasField("weight") else None,
        )
        return self._plan_reply()
