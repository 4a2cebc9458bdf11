"""The MobileAgent RPCs, thin over :class:`~mobile_agent.agent.MobileAgent`.

Each handler converts the request with :mod:`collabdnn.wire.serde`, calls the agent and
converts the reply back; :func:`collabdnn.wire.status.rpc` maps domain errors (and a
failed call to the cloud) to status codes.

Classify requests are checked against the request limits before they are admitted
(``--max-concurrent``); Profile calls have their own admission, of one, so that a flood
of them is refused RESOURCE_EXHAUSTED at once instead of taking the threads Classify
and Info need. Both stop at the next unit boundary once their caller has gone or the
grace period on SIGTERM is over (:func:`collabdnn.bounds.stop_check`).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import grpc

from collabdnn.bounds import stop_check
from collabdnn.services import Load
from collabdnn.transport.admission import Admission
from collabdnn.transport.server import InFlight
from collabdnn.wire import serde
from collabdnn.wire.proto import mobile_pb2_grpc
from collabdnn.wire.status import Ready, rpc
from mobile_agent.agent import MobileAgent

if TYPE_CHECKING:
    from collabdnn.wire import messages

__all__ = ["MobileServicer"]


def _cloud(servicer: MobileServicer) -> str:
    agent = servicer.ready.value
    return f"cloud {agent.settings.cloud if agent else '(none)'}"


class MobileServicer(mobile_pb2_grpc.MobileAgentServicer):
    """UNAVAILABLE until the loader has set :attr:`agent`.

    ``admission`` bounds the Classify requests handled at once (``--max-concurrent``);
    one more is refused RESOURCE_EXHAUSTED at once rather than queued.
    """

    def __init__(
        self, admission: Admission | None = None, halt: threading.Event | None = None
    ) -> None:
        self.ready: Ready[MobileAgent] = Ready()
        self.in_flight = InFlight()
        self.admission = admission or Admission(16, name="Classify requests")
        self.profile_admission = Admission(1, name="Profile calls")
        self.halt = halt or threading.Event()  # set when the grace period on SIGTERM ends

    @property
    def agent(self) -> MobileAgent:
        """The agent (NotReadyError while the model loads); setting it makes the
        service ready."""
        return self.ready.get()

    @agent.setter
    def agent(self, agent: MobileAgent) -> None:
        self.ready.set(agent)

    @rpc("Classify", downstream=_cloud)
    def Classify(
        self, request: messages.ClassifyRequest, context: grpc.ServicerContext
    ) -> messages.ClassifyReply:
        agent = self.ready.get()
        call = serde.classify_request_from_proto(request)
        agent.check(call)  # refused before it takes a place or costs anything
        check = stop_check(context, self.halt)
        with self.admission.admit(context, "Classify", check), self.in_flight:
            results = agent.classify_all(call, check, check.deadline)
        return serde.classify_reply_to_proto(results)

    @rpc("SetPlan")
    def SetPlan(self, request: messages.Plan, context: grpc.ServicerContext) -> messages.Plan:
        agent = self.ready.get()
        return serde.assigned_plan_to_proto(agent.set_plan(serde.assigned_plan_from_proto(request)))

    @rpc("GetPlan")
    def GetPlan(
        self, request: messages.GetPlanRequest, context: grpc.ServicerContext
    ) -> messages.Plan:
        return serde.assigned_plan_to_proto(self.ready.get().plan)

    @rpc("Info")
    def Info(
        self, request: messages.InfoRequest, context: grpc.ServicerContext
    ) -> messages.MobileInfo:
        agent = self.ready.get()
        return serde.agent_info_to_proto(agent.describe(Load(in_flight=self.in_flight.count)))

    @rpc("Profile")
    def Profile(
        self, request: messages.ProfileRequest, context: grpc.ServicerContext
    ) -> messages.ProfileReply:
        """This side's profile (the scheduler asks before planning)."""
        agent = self.ready.get()
        query = serde.profile_query_from_proto(request)
        check = stop_check(context, self.halt)
        with self.profile_admission.admit(context, "Profile"), self.in_flight:
            return serde.profile_reply_to_proto(agent.profile(query, check))
