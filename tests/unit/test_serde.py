"""serde round trips: for every converter pair, domain -> proto -> domain is the identity.

One test per pair (hypothesis draws the values), a check that the list of pairs here is
every pair serde has, and the refusals a malformed message meets. The scheduler's plan
also goes through the wire and prints the same ``plan --json`` document.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collabdnn.codec import CodecConfig
from collabdnn.crossing import PHOTO_CODECS, TENSOR_CODECS
from collabdnn.errors import CodecError, PlanRequestError
from collabdnn.measure.profile_service import ProfileQuery, ProfileSettings
from collabdnn.model.unit_info import UnitInfo
from collabdnn.placement import AssignedPlan, Placement, PlacementError, Side
from collabdnn.planning.energy import PowerModel, RadioModel, power_model
from collabdnn.planning.link import Link, LinkEstimate
from collabdnn.planning.planner import (
    Baseline,
    Constraints,
    Cost,
    Plan,
    TransferBreakdown,
    UnitBreakdown,
    plan,
)
from collabdnn.planning.profiles import (
    Boundary,
    Codec,
    CodecFigures,
    LatencyStats,
    PlanInput,
    Profile,
    ProfileError,
    UnitCost,
    UnitProfile,
)
from collabdnn.results import ClassifyResult, Prediction, Transfer, UnitTiming
from collabdnn.services import (
    AgentHeartbeat,
    AgentInfo,
    ClassifyRequest,
    CloudCapacityInfo,
    ExecuteReply,
    ExecuteRequest,
    FleetAgentView,
    FleetView,
    HeartbeatReply,
    LinkReport,
    Load,
    LoadReport,
    ObjectiveChange,
    ProfileSummary,
    ReplanRequest,
    ReportOutcome,
    ScheduledPlan,
    ScheduledTrainingPlan,
    ServiceInfo,
    TrainingPlanQuery,
    UnitService,
    UnitTime,
)
from collabdnn.wire import serde

pytestmark = pytest.mark.unit

# --------------------------------------------------------------------------- values

INT32 = st.integers(-(2**31), 2**31 - 1)
UINT32 = st.integers(0, 2**31 - 1)
UINT64 = st.integers(0, 2**63 - 1)
FLOAT = st.floats(allow_nan=False, allow_infinity=False)
NONNEG = st.floats(min_value=0.0, allow_nan=False, allow_infinity=False)
POSITIVE = st.floats(min_value=1e-300, allow_nan=False, allow_infinity=False)
FRACTION = st.floats(min_value=0.0, max_value=1.0)
TEXT = st.text(max_size=20)
NAME = st.text(min_size=1, max_size=12)
BLOBS = st.lists(st.binary(max_size=16), max_size=3).map(tuple)

sides = st.sampled_from(Side)
side_lists = st.lists(sides, min_size=1, max_size=8).map(tuple)
placements = st.one_of(sides.map(lambda s: Placement(everywhere=s)), side_lists.map(Placement.of))
codecs = st.builds(CodecConfig, level=st.integers(-7, 22), shuffle=st.booleans())
loads = st.builds(Load, in_flight=UINT32, cpu_percent=FLOAT, served=UINT64)
units = st.builds(
    UnitInfo,
    index=UINT32,
    name=TEXT,
    kind=TEXT,
    output_shape=st.lists(UINT64, max_size=4).map(tuple),
    dtype=TEXT,
    output_bytes=UINT64,
    params=UINT64,
    flops=UINT64,
)
service_infos = st.builds(
    ServiceInfo,
    role=sides,
    version=TEXT,
    model=TEXT,
    weights=TEXT,
    weights_hash=TEXT,
    device=TEXT,
    threads=UINT32,
    load=loads,
    units=st.lists(units, max_size=3).map(tuple),
)
links = st.builds(Link, up_mbps=POSITIVE, down_mbps=POSITIVE, rtt_ms=NONNEG, network=TEXT)
link_estimates = st.builds(LinkEstimate, link=links, observations=UINT64, emulated=st.booleans())
# The codec of each crossing: a photo codec for boundary 0, a tensor codec elsewhere.
crossing_codecs = st.dictionaries(
    st.integers(0, 2**31 - 1), st.sampled_from(TENSOR_CODECS), max_size=3
).flatmap(
    lambda tensors: st.sampled_from(PHOTO_CODECS).map(
        lambda photo: tuple(sorted({**tensors, 0: photo}.items()))
    )
)
assigned_plans = st.builds(
    AssignedPlan,
    placement=placements,
    plan_id=TEXT,
    source=TEXT,
    codecs=st.just(()) | crossing_codecs,
)

# -- the cloud

execute_requests = st.builds(
    ExecuteRequest,
    model=TEXT,
    weights_hash=TEXT,
    start=INT32,
    end=INT32,
    reply_codec=codecs,
    tensor=st.none() | st.binary(max_size=32),
    request_id=TEXT,
).flatmap(
    lambda r: (
        st.just(r)
        if r.tensor is not None
        else st.one_of(
            (st.none() | BLOBS).map(lambda images: _replace(r, images=images)),
            BLOBS.map(lambda crops: _replace(r, crops=crops)),
        )
    )
)
execute_replies = st.builds(
    ExecuteReply,
    output=st.binary(max_size=32),
    units=st.lists(st.builds(UnitTime, INT32, FLOAT), max_size=3).map(tuple),
    decode_ms=FLOAT,
    encode_ms=FLOAT,
    server_ms=FLOAT,
    load=loads,
)
profile_settings = st.builds(
    ProfileSettings,
    repeats=INT32,
    warmup=INT32,
    batch_size=INT32,
    codec_level=INT32,
    shuffle=st.booleans(),
)
profile_queries = st.builds(
    ProfileQuery, model=TEXT, weights_hash=TEXT, images=BLOBS, settings=profile_settings
)

# A profile's host: free-form JSON (integers stay integers, key order is kept).
facts_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | FLOAT | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
facts = st.dictionaries(TEXT, facts_values, max_size=4)


codec_figures = st.lists(
    st.builds(CodecFigures, TEXT, UINT64, NONNEG, NONNEG, NONNEG), max_size=2
).map(tuple)


@st.composite
def profiles(draw: st.DrawFn) -> Profile:
    names = draw(st.lists(NAME, min_size=1, max_size=4, unique=True))
    unit_profiles = tuple(
        UnitProfile(
            index=i,
            name=name,
            kind=draw(TEXT),
            flops=draw(UINT64),
            params=draw(UINT64),
            latency_ms=LatencyStats(
                draw(NONNEG),
                draw(NONNEG),
                draw(NONNEG),
                draw(UINT32),
                draw(st.none() | NONNEG),  # mean and CPU time: absent in older profiles
                draw(st.none() | NONNEG),
            ),
            output_bytes=draw(UINT64),
            encoded_bytes=draw(UINT64),
            encode_ms=draw(NONNEG),
            decode_ms=draw(NONNEG),
            codecs=draw(codec_figures),
        )
        for i, name in enumerate(names)
    )
    return Profile(
        side=draw(sides),
        model=draw(NAME),
        units=unit_profiles,
        input_bytes=draw(UINT64),
        weights_hash=draw(TEXT),
        device=draw(TEXT),
        threads=draw(UINT32),
        batch_size=draw(st.integers(1, 2**31 - 1)),
        created=draw(TEXT),
        host=draw(facts),
        codec=Codec(draw(INT32), draw(st.booleans())),
        input_codecs=draw(codec_figures),
    )


# -- the agent

results = st.builds(
    ClassifyResult,
    top=st.lists(st.builds(Prediction, INT32, TEXT, FLOAT), max_size=3),
    placement=side_lists,
    latency_ms=FLOAT,
    bytes_up=UINT64,
    bytes_down=UINT64,
    mobile_energy_mj=st.none() | FLOAT,
    fallback=st.booleans(),
    units=st.lists(
        st.builds(UnitTiming, INT32, TEXT, sides, FLOAT, FLOAT, FLOAT, FLOAT, UINT64),
        max_size=3,
    ),
    transfers=st.lists(
        st.builds(Transfer, INT32, st.booleans(), UINT64, FLOAT, FLOAT, FLOAT), max_size=3
    ),
    logits_frame=st.binary(max_size=16),
    emulated_link=st.booleans(),
)
classify_requests = st.builds(
    ClassifyRequest,
    images=BLOBS,
    placement=st.none() | placements,
    top_k=INT32,
    return_logits=st.booleans(),
    codecs=st.just(()) | crossing_codecs,
)
agent_infos = st.builds(
    AgentInfo,
    info=service_infos,
    cloud_address=TEXT,
    cloud_state=TEXT,
    plan=assigned_plans,
    link=st.none() | link_estimates,
    scheduler_address=TEXT,
)

# -- the planner and the scheduler

unit_breakdowns = st.builds(UnitBreakdown, UINT32, TEXT, sides, FLOAT, FLOAT)
transfer_breakdowns = st.builds(
    TransferBreakdown,
    UINT32,
    TEXT,
    st.sampled_from(["up", "down"]),
    UINT64,
    FLOAT,
    FLOAT,
    st.sampled_from(("", *TENSOR_CODECS, *PHOTO_CODECS)),
)
costs = st.builds(
    Cost,
    latency_ms=FLOAT,
    mobile_energy_mj=FLOAT,
    units=st.lists(unit_breakdowns, max_size=3).map(tuple),
    transfers=st.lists(transfer_breakdowns, max_size=3).map(tuple),
)
baselines = st.builds(
    Baseline,
    name=TEXT,
    placement=side_lists,
    cost=costs,
    feasible=st.booleans(),
    cut=st.none() | INT32,
)
powers = st.builds(
    PowerModel,
    busy_mw=NONNEG,
    wait_mw=NONNEG,
    radio=st.builds(RadioModel, NONNEG, NONNEG, NONNEG),
)
constraints = st.builds(
    Constraints,
    deadline_ms=st.none() | NONNEG,
    battery_fraction=FRACTION,
    battery_threshold=FRACTION,
    cloud_load=POSITIVE,
    weight=FRACTION,
)
plans = st.builds(
    Plan,
    objective=TEXT,
    objective_used=TEXT,
    reason=TEXT,
    units=st.lists(TEXT, max_size=4).map(tuple),
    placement=side_lists,
    cost=costs,
    feasible=st.booleans(),
    objective_value=st.none() | FLOAT,
    baselines=st.lists(baselines, max_size=3, unique_by=lambda b: b.name).map(
        lambda bs: {b.name: b for b in bs}
    ),
    link=links,
    power=powers,
    constraints=constraints,
)
scheduled_plans = st.builds(
    ScheduledPlan,
    plan=plans,
    plan_id=TEXT,
    pushed=st.booleans(),
    reason=TEXT,
    model=TEXT,
    source=TEXT,
)
report_outcomes = st.builds(
    ReportOutcome,
    replanned=st.booleans(),
    changed=st.booleans(),
    plan_id=TEXT,
    placement=placements,
)
objective_changes = st.builds(
    ObjectiveChange, objective=TEXT, deadline_ms=st.none() | FLOAT, weight=st.none() | FLOAT
)

# -- fleet mode

summaries = st.builds(ProfileSummary, model=TEXT, weights_hash=TEXT, units=UINT32, slowdown=FLOAT)
heartbeats = st.builds(
    AgentHeartbeat,
    agent_id=TEXT,
    address=TEXT,
    link=link_estimates,
    battery=FLOAT,
    profile=summaries,
    plan_id=TEXT,
    rate_hz=FLOAT,
)
fleet_agents = st.builds(
    FleetAgentView,
    agent_id=TEXT,
    address=TEXT,
    plan=scheduled_plans.map(lambda p: _replace(p, model="m", source="scheduler")),
    link=link_estimates,
    battery=FLOAT,
    rate_hz=FLOAT,
    last_seen_s=FLOAT,
    alone_spec=TEXT,
    profile=summaries.map(lambda s: _replace(s, model="m")),
)
fleet_views = st.builds(
    FleetView,
    fleet=st.booleans(),
    agents=st.lists(fleet_agents, max_size=2).map(tuple),
    servers=FLOAT,
    replicas=UINT32,
    utilisation=FLOAT,
    utilisation_alone=FLOAT,
    cloud_load=FLOAT,
    rounds=UINT32,
    converged=st.booleans(),
    capacity_source=TEXT,
)
cloud_capacities = st.builds(
    CloudCapacityInfo,
    workers=UINT32,
    cpus=FLOAT,
    threads=UINT32,
    units=st.lists(st.builds(UnitService, UINT32, UINT64, FLOAT), max_size=3).map(tuple),
    load=loads,
)


def _replace(value: Any, **changes: Any) -> Any:
    from dataclasses import replace

    return replace(value, **changes)


# ---------------------------------------------------------------------- the pairs

# name of the pair (serde.<name>_to_proto / serde.<name>_from_proto) -> its values
PAIRS: dict[str, st.SearchStrategy[Any]] = {
    "side": sides,
    "sides": side_lists,
    "placement": placements,
    "codec": codecs,
    "load": loads,
    "unit": units,
    "service_info": service_infos,
    "link_estimate": link_estimates,
    "execute_request": execute_requests,
    "execute_reply": execute_replies,
    "profile_query": profile_queries,
    "profile": profiles(),
    "profile_reply": profiles(),
    "facts": facts,
    "classify_request": classify_requests,
    "result": results,
    "classify_reply": st.lists(results, max_size=2),
    "assigned_plan": assigned_plans,
    "agent_info": agent_infos,
    "plan_result": plans,
    "link": links,
    "scheduled_plan": scheduled_plans,
    "scheduled_training_plan": st.builds(ScheduledTrainingPlan, plans, UINT32, TEXT, TEXT, TEXT),
    "training_plan_query": st.builds(TrainingPlanQuery, TEXT, UINT32),
    "report_outcome": report_outcomes,
    "replan_request": st.builds(ReplanRequest, TEXT, st.booleans()),
    "link_report": st.builds(LinkReport, link_estimates, TEXT),
    "battery_report": FLOAT,
    "load_report": st.builds(LoadReport, FLOAT, loads),
    "objective_change": objective_changes,
    "heartbeat": heartbeats,
    "heartbeat_reply": st.builds(HeartbeatReply, st.booleans(), TEXT, FLOAT, FLOAT),
    "plan_request": TEXT,
    "fleet_view": fleet_views,
    "cloud_capacity": cloud_capacities,
}


def test_every_converter_has_its_pair_and_a_round_trip_here() -> None:
    names = set(serde.__all__)
    to = {n.removesuffix("_to_proto") for n in names if n.endswith("_to_proto")}
    back = {n.removesuffix("_from_proto") for n in names if n.endswith("_from_proto")}
    assert to == back, f"unpaired converters: {sorted(to ^ back)}"
    assert names == {f"{p}_to_proto" for p in to} | {f"{p}_from_proto" for p in to}
    assert to == set(PAIRS), f"pairs without a round trip here: {sorted(to ^ set(PAIRS))}"


def _round_trip(name: str) -> Callable[[Any], Any]:
    to, back = getattr(serde, f"{name}_to_proto"), getattr(serde, f"{name}_from_proto")

    def through(value: Any) -> Any:
        message = to(value)
        # ... and through the bytes on the wire too
        wire = (
            type(message).FromString(message.SerializeToString())
            if hasattr(message, "SerializeToString")
            else message
        )
        return back(wire)

    return through


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_round_trip(name: str) -> None:
    through = _round_trip(name)

    @settings(max_examples=60, deadline=None)
    @given(PAIRS[name])
    def check(value: Any) -> None:
        assert through(value) == value

    check()


# ------------------------------------------------------------------------ refusals


def test_malformed_messages_are_refused_with_domain_errors() -> None:
    from collabdnn.wire.proto import cloud_pb2, common_pb2, mobile_pb2, scheduler_pb2, tensor_pb2

    with pytest.raises(PlacementError, match="unspecified platform"):
        serde.side_from_proto(common_pb2.PLATFORM_UNSPECIFIED)
    with pytest.raises(PlacementError, match="unspecified platform"):
        serde.side_from_proto(99)  # a number from a newer build
    assert serde.placement_from_proto(common_pb2.Placement()) is None
    with pytest.raises(PlacementError, match="needs a placement"):
        serde.assigned_plan_from_proto(mobile_pb2.Plan(plan_id="x"))
    with pytest.raises(CodecError):
        serde.codec_from_proto(tensor_pb2.CodecOptions(level=99))
    bad_link = common_pb2.LinkEstimate(up_mbps=-1.0, down_mbps=1.0, rtt_ms=1.0)
    with pytest.raises(PlanRequestError, match="bad link report"):
        serde.link_report_from_proto(scheduler_pb2.LinkReport(link=bad_link))
    with pytest.raises(ProfileError, match="no profile"):
        serde.profile_reply_from_proto(cloud_pb2.ProfileReply())
    message = serde.profile_to_proto(_profile())
    message.side = common_pb2.PLATFORM_UNSPECIFIED
    with pytest.raises(ProfileError, match="side"):
        serde.profile_from_proto(message)
    message.side, message.units[0].index = common_pb2.CLOUD, 3
    with pytest.raises(ProfileError, match="index"):
        serde.profile_from_proto(message)
    with pytest.raises(ProfileError, match="JSON"):
        serde.facts_to_proto({"when": object()})


def _profile() -> Profile:
    unit = UnitProfile(0, "preprocess", "preprocess", 0, 0, LatencyStats(1, 1, 1, 1), 4, 4, 0, 0)
    return Profile(side=Side.MOBILE, model="m", units=(unit,), input_bytes=10, host={"cores": 8})


# ------------------------------------------------------------- the plan, printed


def _real_plan() -> ScheduledPlan:
    names = ("preprocess", "conv1", "pool1", "fc1")
    inp = PlanInput(
        units=tuple(UnitCost(n, "conv", 10.0 + i, 1.0 + i / 3) for i, n in enumerate(names)),
        boundaries=(
            Boundary(150_000),
            *(Boundary(50_000 // (i + 1), 0.5, 0.25, 0.1, 0.2) for i in range(len(names))),
        ),
    )
    result = plan(inp, Link(5.85, 13.0, 70.0, "4g"), power_model("4g"), "deadline",
                  Constraints(deadline_ms=60.0, battery_fraction=0.5))  # fmt: skip
    return ScheduledPlan(result, "3-MMCC", True, "link changed by 30%", "alexnet")


def test_the_scheduled_plan_prints_the_same_json_after_the_wire() -> None:
    live = _real_plan()
    message = serde.scheduled_plan_to_proto(live)
    back = serde.scheduled_plan_from_proto(type(message).FromString(message.SerializeToString()))
    assert back == live
    assert json.dumps(back.to_dict(), indent=2) == json.dumps(live.to_dict(), indent=2)
    out = back.to_dict()
    assert out["source"] == "scheduler" and out["placement"][0] == "mobile"
    assert set(out["baselines"]) == {"mobile_only", "cloud_only", "best_single_cut"}
    assert "cut" in out["baselines"]["best_single_cut"]


# ------------------------------------------------------------------ split training


def _training_pairs() -> dict[str, st.SearchStrategy[Any]]:
    from collabdnn.planning.training_profiles import TrainingProfile, TrainingUnitProfile
    from collabdnn.training import spec as t

    STEP = st.integers(-(2**63), 2**63 - 1)
    SMALL = st.floats(min_value=0.0, max_value=0.99)
    optimizers = st.builds(
        t.OptimizerConfig,
        kind=st.sampled_from(t.OPTIMIZERS),
        lr=st.floats(min_value=1e-9, max_value=1e3),
        momentum=SMALL,
        weight_decay=NONNEG,
        beta1=SMALL,
        beta2=SMALL,
        eps=NONNEG,
    )
    states = st.builds(
        t.TrainingState,
        session_id=TEXT,
        step=STEP,
        digests=st.lists(st.tuples(TEXT, TEXT), max_size=3).map(tuple),
        checkpoint=TEXT,
    )
    frames = st.binary(max_size=16)
    resumes = st.none() | st.builds(t.Resume, NAME, STEP)
    return {
        "optimizer": optimizers,
        "begin_training": st.builds(
            t.BeginTraining,
            TEXT,
            st.builds(t.TrainingSpec, TEXT, TEXT, TEXT, optimizers, UINT64),
            resumes,
        ),
        "train_forward": st.builds(
            t.TrainForward,
            TEXT,
            STEP,
            INT32,
            INT32,
            st.none() | frames,
            st.none(),
            st.none() | codecs,
        )
        | st.builds(t.TrainForward, TEXT, STEP, INT32, INT32, st.none(), BLOBS, st.none() | codecs),
        "train_backward": st.builds(t.TrainBackward, TEXT, STEP, INT32, frames, st.none() | codecs),
        "tensor_reply": st.builds(t.TensorReply, st.none() | frames, FLOAT),
        "step_call": st.builds(t.StepCall, TEXT, STEP),
        "status_request": st.builds(t.StatusRequest, TEXT, st.booleans(), st.booleans()),
        "training_state": states,
        "start_training": st.builds(
            t.StartTraining, TEXT, optimizers, UINT64, st.integers(1, 2**31 - 1), resumes
        ),
        "training_profile_query": st.builds(
            t.TrainingProfileQuery, TEXT, TEXT, BLOBS, st.integers(1, 99), st.integers(1, 99)
        ),
        "training_profile": st.builds(
            TrainingProfile,
            sides,
            TEXT,
            INT32,
            STEP,
            st.lists(
                st.builds(
                    TrainingUnitProfile,
                    INT32,
                    TEXT,
                    TEXT,
                    STEP,
                    FLOAT,
                    FLOAT,
                    FLOAT,
                    STEP,
                    STEP,
                    FLOAT,
                    FLOAT,
                    STEP,
                    FLOAT,
                    FLOAT,
                ),
                max_size=3,
            ).map(tuple),
            INT32,
            INT32,
        ),
        "training_run": st.builds(
            t.TrainingRun,
            TEXT,
            TEXT,
            TEXT,
            TEXT,
            TEXT,
            st.lists(TEXT, max_size=3).map(tuple),
            STEP,
            TEXT,
        ),
        "train_step": st.builds(
            t.TrainStep, TEXT, STEP, BLOBS, st.lists(INT32, max_size=3).map(tuple)
        ),
        "step_result": st.builds(t.StepResult, STEP, FLOAT, FLOAT, STEP, STEP, INT32),
        "finish_training": st.builds(t.FinishTraining, TEXT, st.booleans()),
        "training_result": st.builds(
            t.TrainingResult, STEP, TEXT, states, st.none() | states, TEXT
        ),
    }


def test_every_training_converter_has_a_round_trip_here() -> None:
    from collabdnn.wire.serde import training

    names = {n for n in vars(training) if n.endswith(("_to_proto", "_from_proto"))}
    names -= {"codec_to_proto", "codec_from_proto"}  # imported from common
    pairs = {n.removesuffix("_to_proto") for n in names if n.endswith("_to_proto")}
    assert names == {f"{p}_to_proto" for p in pairs} | {f"{p}_from_proto" for p in pairs}
    assert pairs == set(_training_pairs())


@pytest.mark.parametrize("name", sorted(_training_pairs()))
def test_training_round_trip(name: str) -> None:
    from collabdnn.wire.serde import training

    to, back = getattr(training, f"{name}_to_proto"), getattr(training, f"{name}_from_proto")

    @settings(max_examples=40, deadline=None)
    @given(_training_pairs()[name])
    def check(value: Any) -> None:
        message = to(value)
        assert back(type(message).FromString(message.SerializeToString())) == value

    check()


def test_training_messages_refuse_bad_optimizers() -> None:
    from collabdnn.errors import TrainingConfigError
    from collabdnn.wire.proto import training_pb2
    from collabdnn.wire.serde import training

    for bad in (
        training_pb2.OptimizerSettings(kind="lbfgs", lr=0.1),
        training_pb2.OptimizerSettings(kind="sgd", lr=0.0),
        training_pb2.OptimizerSettings(kind="adam", lr=0.1, beta1=1.0),
        training_pb2.OptimizerSettings(kind="sgd", lr=float("nan")),
    ):
        with pytest.raises(TrainingConfigError):
            training.optimizer_from_proto(bad)
