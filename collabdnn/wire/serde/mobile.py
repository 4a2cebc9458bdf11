"""Serde of the agent's calls (mobile.proto): Classify's request and results, the plan
an agent holds, and its Info."""

from __future__ import annotations

from collabdnn.placement import AssignedPlan, Placement, PlacementError, Side
from collabdnn.results import ClassifyResult, Prediction, Transfer, UnitTiming
from collabdnn.services import AgentInfo, ClassifyRequest
from collabdnn.wire.proto import common_pb2, mobile_pb2
from collabdnn.wire.serde.common import (
    link_estimate_from_proto,
    link_estimate_to_proto,
    placement_from_proto,
    placement_to_proto,
    service_info_from_proto,
    service_info_to_proto,
    side_from_proto,
    side_to_proto,
    sides_to_proto,
)

# --- Classify --------------------------------------------------------------------------


def classify_request_to_proto(request: ClassifyRequest) -> mobile_pb2.ClassifyRequest:
    message = mobile_pb2.ClassifyRequest(
        images=list(request.images),
        top_k=request.top_k,
        return_logits=request.return_logits,
        codecs=dict(request.codecs),
    )
    if request.placement is not None:
        message.placement.CopyFrom(placement_to_proto(request.placement))
    return message


def classify_request_from_proto(message: mobile_pb2.ClassifyRequest) -> ClassifyRequest:
    """PlacementError for a placement naming an unspecified platform."""
    return ClassifyRequest(
        images=tuple(bytes(image) for image in message.images),
        placement=placement_from_proto(message.placement),
        top_k=message.top_k,
        return_logits=message.return_logits,
        codecs=tuple(sorted(message.codecs.items())),
    )


def classify_reply_to_proto(results: list[ClassifyResult]) -> mobile_pb2.ClassifyReply:
    return mobile_pb2.ClassifyReply(results=[result_to_proto(r) for r in results])


def classify_reply_from_proto(message: mobile_pb2.ClassifyReply) -> list[ClassifyResult]:
    return [result_from_proto(r) for r in message.results]


def result_to_proto(result: ClassifyResult) -> mobile_pb2.ClassifyResult:
    message = mobile_pb2.ClassifyResult(
        top=[
            mobile_pb2.Prediction(
                class_index=p.class_index, label=p.label, probability=p.probability
            )
            for p in result.top
        ],
        placement=common_pb2.Placement(per_unit=sides_to_proto(result.placement)),
        latency_ms=result.latency_ms,
        bytes_up=result.bytes_up,
        bytes_down=result.bytes_down,
        fallback=result.fallback,
        emulated_link=result.emulated_link,
        units=[
            mobile_pb2.UnitTiming(
                index=u.index,
                name=u.name,
                platform=side_to_proto(u.platform),
                compute_ms=u.compute_ms,
                encode_ms=u.encode_ms,
                transfer_ms=u.transfer_ms,
                decode_ms=u.decode_ms,
                bytes=u.bytes,
            )
            for u in result.units
        ],
        transfers=[
            mobile_pb2.Transfer(
                after_unit=t.after_unit,
                upload=t.upload,
                bytes=t.bytes,
                encode_ms=t.encode_ms,
                transfer_ms=t.transfer_ms,
                decode_ms=t.decode_ms,
            )
            for t in result.transfers
        ],
    )
    if result.mobile_energy_mj is not None:
        message.mobile_energy_mj = result.mobile_energy_mj
    if result.logits_frame:
        message.logits.frame = result.logits_frame
    return message


def result_from_proto(message: mobile_pb2.ClassifyResult) -> ClassifyResult:
    placement = placement_from_proto(message.placement)
    return ClassifyResult(
        top=[Prediction(p.class_index, p.label, p.probability) for p in message.top],
        placement=_sides(placement, len(message.units)),
        latency_ms=message.latency_ms,
        bytes_up=message.bytes_up,
        bytes_down=message.bytes_down,
        mobile_energy_mj=(
            message.mobile_energy_mj if message.HasField("mobile_energy_mj") else None
        ),
        fallback=message.fallback,
        units=[
            UnitTiming(
                u.index,
                u.name,
                side_from_proto(u.platform),
                u.compute_ms,
                u.encode_ms,
                u.transfer_ms,
                u.decode_ms,
                u.bytes,
            )
            for u in message.units
        ],
        transfers=[
            Transfer(t.after_unit, t.upload, t.bytes, t.encode_ms, t.transfer_ms, t.decode_ms)
            for t in message.transfers
        ],
        logits_frame=bytes(message.logits.frame),
        emulated_link=message.emulated_link,
    )


def _sides(placement: Placement | None, num_units: int) -> tuple[Side, ...]:
    if placement is None:
        return ()
    if placement.everywhere is not None:
        return placement.resolve(num_units)
    return placement.per_unit


# --- the plan an agent holds, and its Info ---------------------------------------------


def assigned_plan_to_proto(plan: AssignedPlan) -> mobile_pb2.Plan:
    return mobile_pb2.Plan(
        placement=placement_to_proto(plan.placement),
        plan_id=plan.plan_id,
        source=plan.source,
        codecs=dict(plan.codecs),
    )


def assigned_plan_from_proto(message: mobile_pb2.Plan) -> AssignedPlan:
    """PlacementError for a plan without a (valid) placement."""
    placement = placement_from_proto(message.placement)
    if placement is None:
        raise PlacementError("a plan needs a placement")
    return AssignedPlan(
        placement, message.plan_id, message.source, tuple(sorted(message.codecs.items()))
    )


def agent_info_to_proto(info: AgentInfo) -> mobile_pb2.MobileInfo:
    message = mobile_pb2.MobileInfo(
        info=service_info_to_proto(info.info),
        cloud_address=info.cloud_address,
        cloud_state=info.cloud_state,
        plan=assigned_plan_to_proto(info.plan),
        scheduler_address=info.scheduler_address,
    )
    if info.link is not None:
        message.link.CopyFrom(link_estimate_to_proto(info.link))
    return message


def agent_info_from_proto(message: mobile_pb2.MobileInfo) -> AgentInfo:
    return AgentInfo(
        info=service_info_from_proto(message.info),
        cloud_address=message.cloud_address,
        cloud_state=message.cloud_state,
        plan=assigned_plan_from_proto(message.plan),
        link=link_estimate_from_proto(message.link) if message.HasField("link") else None,
        scheduler_address=message.scheduler_address,
    )
