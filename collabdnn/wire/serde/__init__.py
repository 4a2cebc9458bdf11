"""Conversions between protobuf messages and domain objects, in pairs: the wire's one
definition.

Every ``x_to_proto`` has its ``x_from_proto``, and ``x_from_proto(x_to_proto(v)) == v``
for every value ``v`` a service sends (``tests/unit/test_serde.py`` checks each pair). Services
convert a request the moment it arrives and a reply just before it leaves; clients go
through :mod:`collabdnn.wire.stubs`, which converts the same way. Nothing outside
:mod:`collabdnn.wire` builds or reads a message.

By message family: :mod:`~.common` (sides, placements, codec, load, service info, link
estimate), :mod:`~.cloud` (Execute, Profile, profiles), :mod:`~.mobile` (Classify, the
agent's plan and Info), :mod:`~.scheduler` (the planner's answer, the scheduler's
requests and replies), :mod:`~.fleet` (heartbeats, the fleet, the cloud's capacity).
Torch-free at import; only the codec options import torch, when
converted.
"""

from __future__ import annotations

from collabdnn.wire.serde.cloud import (
    execute_reply_from_proto,
    execute_reply_to_proto,
    execute_request_from_proto,
    execute_request_to_proto,
    facts_from_proto,
    facts_to_proto,
    profile_from_proto,
    profile_query_from_proto,
    profile_query_to_proto,
    profile_reply_from_proto,
    profile_reply_to_proto,
    profile_to_proto,
)
from collabdnn.wire.serde.common import (
    codec_from_proto,
    codec_to_proto,
    link_estimate_from_proto,
    link_estimate_to_proto,
    load_from_proto,
    load_to_proto,
    placement_from_proto,
    placement_to_proto,
    service_info_from_proto,
    service_info_to_proto,
    side_from_proto,
    side_to_proto,
    sides_from_proto,
    sides_to_proto,
    unit_from_proto,
    unit_to_proto,
)
from collabdnn.wire.serde.fleet import (
    cloud_capacity_from_proto,
    cloud_capacity_to_proto,
    fleet_view_from_proto,
    fleet_view_to_proto,
    heartbeat_from_proto,
    heartbeat_reply_from_proto,
    heartbeat_reply_to_proto,
    heartbeat_to_proto,
    plan_request_from_proto,
    plan_request_to_proto,
)
from collabdnn.wire.serde.mobile import (
    agent_info_from_proto,
    agent_info_to_proto,
    assigned_plan_from_proto,
    assigned_plan_to_proto,
    classify_reply_from_proto,
    classify_reply_to_proto,
    classify_request_from_proto,
    classify_request_to_proto,
    result_from_proto,
    result_to_proto,
)
from collabdnn.wire.serde.scheduler import (
    battery_report_from_proto,
    battery_report_to_proto,
    link_from_proto,
    link_report_from_proto,
    link_report_to_proto,
    link_to_proto,
    load_report_from_proto,
    load_report_to_proto,
    objective_change_from_proto,
    objective_change_to_proto,
    plan_result_from_proto,
    plan_result_to_proto,
    replan_request_from_proto,
    replan_request_to_proto,
    report_outcome_from_proto,
    report_outcome_to_proto,
    scheduled_plan_from_proto,
    scheduled_plan_to_proto,
)

__all__ = [
    "agent_info_from_proto",
    "agent_info_to_proto",
    "assigned_plan_from_proto",
    "assigned_plan_to_proto",
    "battery_report_from_proto",
    "battery_report_to_proto",
    "classify_reply_from_proto",
    "classify_reply_to_proto",
    "classify_request_from_proto",
    "classify_request_to_proto",
    "cloud_capacity_from_proto",
    "cloud_capacity_to_proto",
    "codec_from_proto",
    "codec_to_proto",
    "execute_reply_from_proto",
    "execute_reply_to_proto",
    "execute_request_from_proto",
    "execute_request_to_proto",
    "facts_from_proto",
    "facts_to_proto",
    "fleet_view_from_proto",
    "fleet_view_to_proto",
    "heartbeat_from_proto",
    "heartbeat_reply_from_proto",
    "heartbeat_reply_to_proto",
    "heartbeat_to_proto",
    "link_estimate_from_proto",
    "link_estimate_to_proto",
    "link_from_proto",
    "link_report_from_proto",
    "link_report_to_proto",
    "link_to_proto",
    "load_from_proto",
    "load_report_from_proto",
    "load_report_to_proto",
    "load_to_proto",
    "objective_change_from_proto",
    "objective_change_to_proto",
    "placement_from_proto",
    "placement_to_proto",
    "plan_request_from_proto",
    "plan_request_to_proto",
    "plan_result_from_proto",
    "plan_result_to_proto",
    "profile_from_proto",
    "profile_query_from_proto",
    "profile_query_to_proto",
    "profile_reply_from_proto",
    "profile_reply_to_proto",
    "profile_to_proto",
    "replan_request_from_proto",
    "replan_request_to_proto",
    "report_outcome_from_proto",
    "report_outcome_to_proto",
    "result_from_proto",
    "result_to_proto",
    "scheduled_plan_from_proto",
    "scheduled_plan_to_proto",
    "service_info_from_proto",
    "service_info_to_proto",
    "side_from_proto",
    "side_to_proto",
    "sides_from_proto",
    "sides_to_proto",
    "unit_from_proto",
    "unit_to_proto",
]
