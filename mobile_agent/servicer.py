"""The MobileAgent RPCs, thin over :class:`~mobile_agent.agent.MobileAgent`."""

from __future__ import annotations

import logging

import grpc

from collabdnn.errors import CollabError, ImageError
from collabdnn.measure.profile_service import handle_profile
from collabdnn.placement import PlacementError
from collabdnn.transport.admission import Admission
from collabdnn.transport.server import InFlight
from collabdnn.wire import serde
from collabdnn.wire.proto import cloud_pb2, common_pb2, mobile_pb2, mobile_pb2_grpc
from collabdnn.wire.status import abort_for, domain_errors
from mobile_agent.agent import MobileAgent

log = logging.getLogger(__name__)

MAX_TOP_K = 1000


class MobileServicer(mobile_pb2_grpc.MobileAgentServicer):
    """``agent`` is ``None`` until the model has loaded.

    ``admission`` bounds the Classify requests handled at once (``--max-concurrent``);
    one more is refused RESOURCE_EXHAUSTED at once rather than queued.
    """

    def __init__(self, admission: Admission | None = None) -> None:
        self.agent: MobileAgent | None = None
        self.in_flight = InFlight()
        self.admission = admission or Admission(16, name="Classify requests")

    def _require_agent(self, context: grpc.ServicerContext) -> MobileAgent:
        if self.agent is None:
            context.abort(grpc.StatusCode.UNAVAILABLE, "the model is still loading; retry shortly")
        return self.agent  # type: ignore[return-value]

    def Classify(
        self, request: mobile_pb2.ClassifyRequest, context: grpc.ServicerContext
    ) -> mobile_pb2.ClassifyReply:
        agent = self._require_agent(context)
        with self.admission.admit(context, "Classify"), self.in_flight:
            try:
                if not request.images:
                    raise ImageError("no images given")
                if not 0 <= request.top_k <= MAX_TOP_K:
                    raise PlacementError(f"top_k must be in 0..{MAX_TOP_K}")
                placement = serde.placement_from_proto(request.placement)
                results = [
                    agent.classify(
                        bytes(image), placement, request.top_k or 5, request.return_logits
                    )
                    for image in request.images
                ]
            except CollabError as exc:
                abort_for(context, exc, "Classify")
            except grpc.RpcError as exc:
                code = exc.code()  # type: ignore[attr-defined]
                details = exc.details()  # type: ignore[attr-defined]
                log.warning("cloud call failed: %s %s", code.name, details)
                context.abort(code, f"cloud {agent.settings.cloud}: {details}")
        return mobile_pb2.ClassifyReply(results=[serde.result_to_proto(r) for r in results])

    @domain_errors("SetPlan")
    def SetPlan(self, request: mobile_pb2.Plan, context: grpc.ServicerContext) -> mobile_pb2.Plan:
        agent = self._require_agent(context)
        return serde.plan_to_proto(agent.set_plan(serde.plan_from_proto(request)))

    def GetPlan(
        self, request: mobile_pb2.GetPlanRequest, context: grpc.ServicerContext
    ) -> mobile_pb2.Plan:
        return serde.plan_to_proto(self._require_agent(context).plan)

    def Info(
        self, request: common_pb2.InfoRequest, context: grpc.ServicerContext
    ) -> mobile_pb2.MobileInfo:
        agent = self._require_agent(context)
        info = serde.service_info_to_proto(
            "mobile", agent.model, common_pb2.Load(in_flight=self.in_flight.count)
        )
        return mobile_pb2.MobileInfo(
            info=info,
            cloud_address=agent.settings.cloud,
            cloud_state=agent.cloud_state,
            plan=serde.plan_to_proto(agent.plan),
            link=agent.link.to_proto(),
            scheduler_address=agent.link.settings.scheduler,
        )

    def Profile(
        self, request: cloud_pb2.ProfileRequest, context: grpc.ServicerContext
    ) -> cloud_pb2.ProfileReply:
        """This side's profile (the scheduler asks before planning)."""
        agent = self._require_agent(context)
        with self.in_flight, agent.link.busy():  # no link probes during the timings
            try:
                return handle_profile(agent.model, "mobile", request)
            except CollabError as exc:
                abort_for(context, exc, "Profile")
