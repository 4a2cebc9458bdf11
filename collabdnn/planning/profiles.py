"""Profile files (what a profiler measured on one side) and the planner's input.

A *profile* is a versioned JSON file written by the profiler on one side (mobile or
cloud) for one model::

    {"schema": "collabdnn.profile/1", "side": "mobile", "model": "alexnet",
     "weights_hash": "...", "device": "cpu", "threads": 1, "batch_size": 1,
     "created": "2025-01-01T00:00:00+00:00", "host": {...free-form...},
     "codec": {"level": 1, "shuffle": false},
     "input_bytes": 123456,
     "units": [{"index": 0, "name": "preprocess", "kind": "preprocess",
                "flops": 0, "params": 0,
                "latency_ms": {"median": 1.2, "p10": 1.1, "p90": 1.5, "repeats": 20,
                               "mean": 1.3, "cpu": 1.2},
                "output_bytes": 602112, "encoded_bytes": 500000,
                "encode_ms": 0.8, "decode_ms": 0.5}, ...]}

``latency_ms.mean`` and ``latency_ms.cpu`` (the mean wall and CPU time of a run) and
``host.cpu_quota`` (cores, when the side ran under a cgroup CPU quota) are optional.
``input_bytes`` is the encoded image shipped when unit 0 (preprocessing) runs in the
cloud; ``output_bytes`` is the raw size of a unit's output tensor and ``encoded_bytes``
what crosses the link after the codec.  Unknown keys are ignored so that later
profilers can add fields without breaking older planners.

:func:`plan_input_from_profiles` turns a mobile and a cloud profile into a
:class:`PlanInput`: per-unit latencies on both sides and the N+1 *boundaries* between
units (boundary ``i`` is the data present once units ``[0, i)`` are done).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collabdnn.crossing import PHOTO, tensor_codec_name
from collabdnn.errors import CollabError
from collabdnn.placement import Side
from collabdnn.planning.cfs import DEFAULT_PERIOD_MS, CpuLimit, throttled_ms

__all__ = [
    "SCHEMA",
    "Boundary",
    "Codec",
    "CodecFigures",
    "CodecOption",
    "LatencyStats",
    "PlanInput",
    "Profile",
    "ProfileError",
    "UnitCost",
    "UnitProfile",
    "load_profile",
    "plan_input_from_profiles",
    "quota_scale",
    "save_profile",
    "slower_profile",
    "throttled_request",
]

SCHEMA = "collabdnn.profile/1"


class ProfileError(CollabError, ValueError):
    """A profile file is missing, malformed, or does not fit its partner profile."""


# --------------------------------------------------------------------------- profiles


@dataclass(frozen=True)
class LatencyStats:
    """Latency of repeated runs of one unit, in ms.

    ``median`` is robust to the odd slow run; ``mean`` is what a long run adds up to.
    They differ under a cgroup CPU quota: each throttling pause lands in whichever unit
    is running, so a short unit's median drops the pauses and the sum of medians
    under-predicts a request. ``cpu`` is the mean CPU time of a run (the process's, all
    its threads): what a quota divides (:meth:`expected`). ``mean`` and ``cpu`` are
    None in profiles written before they were recorded.
    """

    median: float
    p10: float
    p90: float
    repeats: int
    mean: float | None = None
    cpu: float | None = None

    def expected(self, quota: float | None, threads: int = 1) -> float:
        """What the planner uses: the median; under a CPU quota of ``quota`` cores that
        binds (fewer than the ``threads`` torch computes with), the CPU time over the
        quota: a busy process runs no faster than its quota lets it, whichever units
        its pauses happened to land in while it was profiled. The mean where the CPU
        time was not recorded.

        That is a phone never idle; :func:`plan_input_from_profiles` scales it for one
        idle between requests (:mod:`collabdnn.planning.cfs`). Measured in
        benchmarks/bench_quota.py (AlexNet mobile-only, one thread, back to back): the sum
        of CPU times over the quota is 3-6 % under the caller's latency (the request's
        own CPU outside the units is missing); the sum of means of a few profiling runs
        is 25-51 % under (a 100 ms period's pauses are long and few), the sum of medians
        38-77 % under.
        """
        if quota is None or quota >= max(threads, 1):
            return self.median
        if self.cpu is None:
            return self.median if self.mean is None else self.mean
        return self.cpu / quota

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "median": self.median,
            "p10": self.p10,
            "p90": self.p90,
            "repeats": self.repeats,
        }
        for key in ("mean", "cpu"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out

    def scaled(self, factor: float) -> LatencyStats:
        """Every time ``factor`` times longer (a slower device)."""

        def times(value: float | None) -> float | None:
            return None if value is None else value * factor

        return LatencyStats(
            self.median * factor,
            self.p10 * factor,
            self.p90 * factor,
            self.repeats,
            times(self.mean),
            times(self.cpu),
        )

    @classmethod
    def from_dict(cls, data: Any, where: str = "latency_ms") -> LatencyStats:
        obj = _mapping(data, where)
        stats = cls(
            median=_number(obj, "median", where),
            p10=_number(obj, "p10", where),
            p90=_number(obj, "p90", where),
            repeats=_integer(obj, "repeats", where),
            mean=_number(obj, "mean", where) if "mean" in obj else None,
            cpu=_number(obj, "cpu", where) if "cpu" in obj else None,
        )
        if not stats.p10 <= stats.median <= stats.p90:
            raise ProfileError(
                f"{where}: expected p10 <= median <= p90, got "
                f"{stats.p10} / {stats.median} / {stats.p90}"
            )
        return stats


@dataclass(frozen=True)
class Codec:
    """The activation codec the sizes and encode/decode times were measured with."""

    level: int = 1
    shuffle: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"level": self.level, "shuffle": self.shuffle}

    @classmethod
    def from_dict(cls, data: Any, where: str = "codec") -> Codec:
        obj = _mapping(data, where)
        level = obj.get("level", 1)
        shuffle = obj.get("shuffle", False)
        if not isinstance(level, int) or isinstance(level, bool):
            raise ProfileError(f"{where}.level must be an integer, got {level!r}")
        if not isinstance(shuffle, bool):
            raise ProfileError(f"{where}.shuffle must be true or false, got {shuffle!r}")
        return cls(level=level, shuffle=shuffle)


@dataclass(frozen=True)
class CodecFigures:
    """One more codec measured on the same data: ``name`` (:mod:`collabdnn.crossing`),
    its size on the link and its encode/decode times on this side. For a ``crop:*``
    codec of the photo, ``encode_ms`` includes ``crop_ms``, this side's time for
    preprocessing's crop stage (decode, resize, crop), which the receiver then skips."""

    name: str
    encoded_bytes: int
    encode_ms: float
    decode_ms: float
    crop_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "encoded_bytes": self.encoded_bytes,
            "encode_ms": self.encode_ms,
            "decode_ms": self.decode_ms,
        }
        if self.crop_ms:
            out["crop_ms"] = self.crop_ms
        return out

    @classmethod
    def from_dict(cls, data: Any, where: str = "codec") -> CodecFigures:
        obj = _mapping(data, where)
        crop = _number(obj, "crop_ms", where) if "crop_ms" in obj else 0.0
        return cls(
            name=_string(obj, "name", where),
            encoded_bytes=_integer(obj, "encoded_bytes", where),
            encode_ms=_number(obj, "encode_ms", where),
            decode_ms=_number(obj, "decode_ms", where),
            crop_ms=crop,
        )


def _figures_list(obj: Mapping[str, Any], key: str, where: str) -> tuple[CodecFigures, ...]:
    raw = obj.get(key, [])
    if not isinstance(raw, list):
        raise ProfileError(f"{where}.{key} must be a list")
    return tuple(CodecFigures.from_dict(item, f"{where}.{key}[{i}]") for i, item in enumerate(raw))


@dataclass(frozen=True)
class UnitProfile:
    """What the profiler measured for one unit on one side."""

    index: int
    name: str
    kind: str
    flops: int
    params: int
    latency_ms: LatencyStats
    output_bytes: int
    encoded_bytes: int
    encode_ms: float
    decode_ms: float
    # Other codecs measured on the same output (the planner may choose any per crossing).
    codecs: tuple[CodecFigures, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out = {
            "index": self.index,
            "name": self.name,
            "kind": self.kind,
            "flops": self.flops,
            "params": self.params,
            "latency_ms": self.latency_ms.to_dict(),
            "output_bytes": self.output_bytes,
            "encoded_bytes": self.encoded_bytes,
            "encode_ms": self.encode_ms,
            "decode_ms": self.decode_ms,
        }
        if self.codecs:
            out["codecs"] = [c.to_dict() for c in self.codecs]
        return out

    @classmethod
    def from_dict(cls, data: Any, where: str = "unit") -> UnitProfile:
        obj = _mapping(data, where)
        return cls(
            index=_integer(obj, "index", where),
            name=_string(obj, "name", where),
            kind=_string(obj, "kind", where),
            flops=_integer(obj, "flops", where),
            params=_integer(obj, "params", where),
            latency_ms=LatencyStats.from_dict(
                _get(obj, "latency_ms", where), f"{where}.latency_ms"
            ),
            output_bytes=_integer(obj, "output_bytes", where),
            encoded_bytes=_integer(obj, "encoded_bytes", where),
            encode_ms=_number(obj, "encode_ms", where),
            decode_ms=_number(obj, "decode_ms", where),
            codecs=_figures_list(obj, "codecs", where),
        )


@dataclass(frozen=True)
class Profile:
    """One side's profile of one model (see the module docstring for the JSON)."""

    side: Side
    model: str
    units: tuple[UnitProfile, ...]
    input_bytes: int
    weights_hash: str = ""
    device: str = "cpu"
    threads: int = 1
    batch_size: int = 1
    created: str = ""
    host: Mapping[str, Any] = field(default_factory=dict)
    codec: Codec = field(default_factory=Codec)
    schema: str = SCHEMA
    # Other ways to send the photo (``crop:*``, the lossless uint8 crop) measured here.
    input_codecs: tuple[CodecFigures, ...] = ()

    def __post_init__(self) -> None:
        _validate_profile(self)

    @property
    def unit_names(self) -> tuple[str, ...]:
        return tuple(unit.name for unit in self.units)

    @property
    def cpu_quota(self) -> float | None:
        """The cgroup CPU quota (cores) the profile was measured under; None: none."""
        quota = self.host.get("cpu_quota")
        return float(quota) if isinstance(quota, int | float) and quota > 0 else None

    @property
    def cpu_limit(self) -> CpuLimit | None:
        """The quota with its CFS period (profiles that did not record the period: the
        kernel's default, 100 ms); None: no quota."""
        cores = self.cpu_quota
        if cores is None:
            return None
        period = self.host.get("cpu_period_ms")
        if isinstance(period, int | float) and 1.0 <= period <= 1000.0:
            return CpuLimit(cores, float(period))
        return CpuLimit(cores, DEFAULT_PERIOD_MS)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "side": str(self.side),
            "model": self.model,
            "weights_hash": self.weights_hash,
            "device": self.device,
            "threads": self.threads,
            "batch_size": self.batch_size,
            "created": self.created,
            "host": dict(self.host),
            "codec": self.codec.to_dict(),
            "input_bytes": self.input_bytes,
            "units": [unit.to_dict() for unit in self.units],
            **(
                {"input_codecs": [c.to_dict() for c in self.input_codecs]}
                if self.input_codecs
                else {}
            ),
        }

    @classmethod
    def from_dict(cls, data: Any) -> Profile:
        obj = _mapping(data, "profile")
        schema = obj.get("schema")
        if schema != SCHEMA:
            raise ProfileError(f"unsupported profile schema {schema!r}; expected {SCHEMA!r}")
        units_raw = _get(obj, "units", "profile")
        if not isinstance(units_raw, list):
            raise ProfileError("profile.units must be a list")
        host = obj.get("host", {})
        if not isinstance(host, dict):
            raise ProfileError("profile.host must be an object")
        return cls(
            schema=schema,
            side=_side(_string(obj, "side", "profile")),
            model=_string(obj, "model", "profile"),
            weights_hash=_string(obj, "weights_hash", "profile", default=""),
            device=_string(obj, "device", "profile", default="cpu"),
            threads=_integer(obj, "threads", "profile", default=1),
            batch_size=_integer(obj, "batch_size", "profile", default=1),
            created=_string(obj, "created", "profile", default=""),
            host=host,
            codec=Codec.from_dict(obj.get("codec", {}), "profile.codec"),
            input_bytes=_integer(obj, "input_bytes", "profile"),
            input_codecs=_figures_list(obj, "input_codecs", "profile"),
            units=tuple(
                UnitProfile.from_dict(unit, f"profile.units[{i}]")
                for i, unit in enumerate(units_raw)
            ),
        )


def load_profile(path: str | Path) -> Profile:
    """Read and validate a profile file; :class:`ProfileError` says what is wrong."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError(f"cannot read profile {path}: {exc.strerror or exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProfileError(f"{path} is not valid JSON: {exc}") from exc
    try:
        return Profile.from_dict(data)
    except ProfileError as exc:
        raise ProfileError(f"{path}: {exc}") from exc


def save_profile(profile: Profile, path: str | Path) -> None:
    """Write ``profile`` as indented JSON (atomically: a temp file, then a rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(profile.to_dict(), indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def _validate_profile(profile: Profile) -> None:
    if profile.schema != SCHEMA:
        raise ProfileError(f"unsupported profile schema {profile.schema!r}; expected {SCHEMA!r}")
    object.__setattr__(profile, "side", _side(profile.side))
    if not profile.model:
        raise ProfileError("model must be a non-empty string")
    if not profile.units:
        raise ProfileError("a profile needs at least one unit")
    if profile.batch_size < 1:
        raise ProfileError(f"batch_size must be >= 1, got {profile.batch_size}")
    if profile.threads < 0:
        raise ProfileError(f"threads must be >= 0, got {profile.threads}")
    for position, unit in enumerate(profile.units):
        if unit.index != position:
            raise ProfileError(
                f"units must be listed in order with index 0, 1, ...; "
                f"unit {unit.name!r} at position {position} has index {unit.index}"
            )
    names = profile.unit_names
    if len(set(names)) != len(names):
        raise ProfileError(f"unit names must be unique, got {list(names)}")


def slower_profile(profile: Profile, factor: float) -> Profile:
    """``profile`` as if measured on a device ``factor`` times slower (latencies and
    codec times scaled; sizes kept).

    Why: on one machine both sides run on the same CPU, so nothing is ever worth
    offloading; a phone is typically several times slower than a server, and scaling
    the measured mobile profile says so without pretending to have measured it (the
    profile's ``host`` records the factor).
    """

    def slower(codecs: tuple[CodecFigures, ...]) -> tuple[CodecFigures, ...]:
        return tuple(
            dataclasses.replace(
                c,
                encode_ms=c.encode_ms * factor,
                decode_ms=c.decode_ms * factor,
                crop_ms=c.crop_ms * factor,
            )
            for c in codecs
        )

    units = tuple(
        dataclasses.replace(
            u,
            latency_ms=u.latency_ms.scaled(factor),
            encode_ms=u.encode_ms * factor,
            decode_ms=u.decode_ms * factor,
            codecs=slower(u.codecs),
        )
        for u in profile.units
    )
    host = {**profile.host, "slowed_by": factor}
    return dataclasses.replace(
        profile, units=units, host=host, input_codecs=slower(profile.input_codecs)
    )


# ----------------------------------------------------------------------- planner input


@dataclass(frozen=True)
class UnitCost:
    """Latency of one unit on each side, in ms (cloud figures before the load factor)."""

    name: str
    kind: str
    mobile_ms: float
    cloud_ms: float

    def __post_init__(self) -> None:
        for attr in ("mobile_ms", "cloud_ms"):
            _check_nonnegative(f"unit {self.name!r} {attr}", getattr(self, attr))


@dataclass(frozen=True)
class CodecOption:
    """One way to send a boundary: a codec (:mod:`collabdnn.crossing`), the bytes it puts
    on the link and its encode/decode time on each side.

    ``cloud_saved_ms`` is work the cloud no longer does when the boundary arrives this
    way: a ``crop:*`` photo codec has the phone run preprocessing's crop stage (its time
    is in ``mobile_encode_ms``), so the cloud's unit 0 only normalises.
    """

    name: str
    bytes: int
    mobile_encode_ms: float = 0.0
    mobile_decode_ms: float = 0.0
    cloud_encode_ms: float = 0.0
    cloud_decode_ms: float = 0.0
    cloud_saved_ms: float = 0.0

    def __post_init__(self) -> None:
        for attr in _OPTION_FIGURES:
            _check_nonnegative(f"codec option {self.name!r} {attr}", getattr(self, attr))


_OPTION_FIGURES = (
    "bytes",
    "mobile_encode_ms",
    "mobile_decode_ms",
    "cloud_encode_ms",
    "cloud_decode_ms",
    "cloud_saved_ms",
)


@dataclass(frozen=True)
class Boundary:
    """The data between two units: its size on the link and the codec's time per side.

    Boundary ``i`` is what exists once units ``[0, i)`` are done: boundary 0 is the
    encoded photo, boundary ``i > 0`` unit ``i-1``'s encoded output, and boundary N the
    logits.  Moving it mobile->cloud costs ``mobile_encode_ms`` then ``cloud_decode_ms``;
    cloud->mobile costs ``cloud_encode_ms`` then ``mobile_decode_ms``.
    """

    bytes: int
    mobile_encode_ms: float = 0.0
    mobile_decode_ms: float = 0.0
    cloud_encode_ms: float = 0.0
    cloud_decode_ms: float = 0.0
    # The codec these figures are for ("": the profile's one), and other codecs the
    # planner may choose instead for this boundary.
    codec: str = ""
    alternatives: tuple[CodecOption, ...] = ()

    def __post_init__(self) -> None:
        for attr in _OPTION_FIGURES[:-1]:
            _check_nonnegative(f"boundary {attr}", getattr(self, attr))
        names = [option.name for option in self.options()]
        if len(set(names)) != len(names):
            raise ValueError(f"a boundary's codec options must have distinct names, got {names}")

    def options(self) -> tuple[CodecOption, ...]:
        """Every way to send this boundary: its own codec first, then the alternatives."""
        own = CodecOption(
            self.codec,
            self.bytes,
            self.mobile_encode_ms,
            self.mobile_decode_ms,
            self.cloud_encode_ms,
            self.cloud_decode_ms,
        )
        return (own, *self.alternatives)


@dataclass(frozen=True)
class PlanInput:
    """Everything the planner needs about the model: N units and N+1 boundaries."""

    units: tuple[UnitCost, ...]
    boundaries: tuple[Boundary, ...]

    def __post_init__(self) -> None:
        if not self.units:
            raise ValueError("a plan input needs at least one unit")
        if len(self.boundaries) != len(self.units) + 1:
            raise ValueError(
                f"a plan input with {len(self.units)} units needs {len(self.units) + 1} "
                f"boundaries (input + one per unit output), got {len(self.boundaries)}"
            )

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(unit.name for unit in self.units)


def plan_input_from_profiles(
    mobile: Profile, cloud: Profile, request_gap_ms: float | None = None
) -> PlanInput:
    """Combine the two sides' profiles into the planner's input.

    The profiles must describe the same model, units (names and kinds, in order), batch
    size and codec, otherwise their figures cannot be combined. A unit's latency is its
    median, or on a side profiled under a binding CPU quota its CPU time over the quota
    (:meth:`LatencyStats.expected`): right for a phone that is never idle. A phone idle
    ``request_gap_ms`` between requests (None: back to back) starts each one with
    some of the quota's budget unspent; its units are then scaled alike, by what
    :func:`~collabdnn.planning.cfs.throttled_ms` predicts for the whole mobile-only
    request over its CPU time over the quota (:func:`quota_scale`).
    Bytes on the link come from the mobile profile (both sides encode the same tensors
    with the same codec); the encode/decode times of each side come from that side's
    profile.
    """
    if mobile.side != Side.MOBILE:
        raise ProfileError(f"the mobile profile says side={str(mobile.side)!r}")
    if cloud.side != Side.CLOUD:
        raise ProfileError(f"the cloud profile says side={str(cloud.side)!r}")
    _check_same(mobile, cloud)
    scale = quota_scale(mobile, request_gap_ms)
    units = tuple(
        UnitCost(
            name=m.name,
            kind=m.kind,
            mobile_ms=scale * m.latency_ms.expected(mobile.cpu_quota, mobile.threads),
            cloud_ms=c.latency_ms.expected(cloud.cpu_quota, cloud.threads),
        )
        for m, c in zip(mobile.units, cloud.units, strict=True)
    )
    photo = _alternatives(mobile.input_codecs, cloud.input_codecs, cloud.units[0].latency_ms.median)
    boundaries = [Boundary(bytes=mobile.input_bytes, codec=PHOTO, alternatives=photo)]
    codec = tensor_codec_name(mobile.codec.level, mobile.codec.shuffle)
    boundaries += [
        Boundary(
            bytes=m.encoded_bytes,
            mobile_encode_ms=m.encode_ms,
            mobile_decode_ms=m.decode_ms,
            cloud_encode_ms=c.encode_ms,
            cloud_decode_ms=c.decode_ms,
            codec=codec,
            alternatives=_alternatives(m.codecs, c.codecs, exclude=codec),
        )
        for m, c in zip(mobile.units, cloud.units, strict=True)
    ]
    return PlanInput(units=units, boundaries=tuple(boundaries))


def quota_scale(profile: Profile, request_gap_ms: float | None) -> float:
    """How much of its CPU time over the quota a side profiled under a binding quota
    takes per request, when it is idle ``request_gap_ms`` on average between requests
    (1.0: back to back, or where the model does not apply: :func:`throttled_request`).

    One factor for the whole request, so that costs stay additive for the shortest
    path and the mobile-only prediction is the model's. A split's mobile part is
    shorter and starts with more of its budget unspent, so it is priced a little slow:
    the planner errs towards the phone.
    """
    request = throttled_request(profile)
    if request_gap_ms is None or request is None:
        return 1.0
    cpu, limit = request
    return throttled_ms(cpu, limit, request_gap_ms) / (cpu / limit.cores)


def throttled_request(profile: Profile) -> tuple[float, CpuLimit] | None:
    """(CPU time of a request run wholly on this side, its quota) where the CFS model
    (:mod:`collabdnn.planning.cfs`) applies: a quota of less than a core, on a side
    profiled with one thread (the model walks one) that recorded every unit's CPU time.
    None elsewhere: the fluid figure (:meth:`LatencyStats.expected`) stands."""
    limit = profile.cpu_limit
    if limit is None or limit.cores >= 1.0 or profile.threads != 1:
        return None
    cpus = [unit.latency_ms.cpu for unit in profile.units]
    if not cpus or any(cpu is None for cpu in cpus):
        return None
    total = math.fsum(cpu for cpu in cpus if cpu is not None)
    return (total, limit) if total > 0.0 else None


def _alternatives(
    mobile: tuple[CodecFigures, ...],
    cloud: tuple[CodecFigures, ...],
    cloud_unit0_ms: float = 0.0,
    exclude: str = "",
) -> tuple[CodecOption, ...]:
    """The codec options both sides measured (sizes from the mobile side, as for the
    profile's own codec). A photo crop saves the cloud its crop time, at most its whole
    unit 0."""
    theirs = {c.name: c for c in cloud}
    return tuple(
        CodecOption(
            m.name,
            m.encoded_bytes,
            mobile_encode_ms=m.encode_ms,
            mobile_decode_ms=m.decode_ms,
            cloud_encode_ms=theirs[m.name].encode_ms,
            cloud_decode_ms=theirs[m.name].decode_ms,
            cloud_saved_ms=min(theirs[m.name].crop_ms, cloud_unit0_ms),
        )
        for m in mobile
        if m.name in theirs and m.name != exclude
    )


def _check_same(mobile: Profile, cloud: Profile) -> None:
    if mobile.model != cloud.model:
        raise ProfileError(
            f"the profiles describe different models: mobile {mobile.model!r}, "
            f"cloud {cloud.model!r}"
        )
    m_units = [(u.name, u.kind) for u in mobile.units]
    c_units = [(u.name, u.kind) for u in cloud.units]
    if m_units != c_units:
        raise ProfileError(
            f"the profiles of {mobile.model!r} list different units: mobile "
            f"{[n for n, _ in m_units]}, cloud {[n for n, _ in c_units]}"
        )
    if mobile.batch_size != cloud.batch_size:
        raise ProfileError(
            f"the profiles use different batch sizes: mobile {mobile.batch_size}, "
            f"cloud {cloud.batch_size}"
        )
    if mobile.codec != cloud.codec:
        raise ProfileError(
            f"the profiles use different codecs: mobile {mobile.codec.to_dict()}, "
            f"cloud {cloud.codec.to_dict()}"
        )


# ---------------------------------------------------------------------------- helpers

_MISSING = object()


def _mapping(data: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ProfileError(f"{where} must be a JSON object, got {type(data).__name__}")
    return data


def _get(obj: Mapping[str, Any], key: str, where: str, default: Any = _MISSING) -> Any:
    if key in obj:
        return obj[key]
    if default is _MISSING:
        raise ProfileError(f"{where} is missing {key!r}")
    return default


def _number(obj: Mapping[str, Any], key: str, where: str) -> float:
    value = _get(obj, key, where)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ProfileError(f"{where}.{key} must be a finite number, got {value!r}")
    if value < 0:
        raise ProfileError(f"{where}.{key} must be >= 0, got {value!r}")
    return float(value)


def _integer(obj: Mapping[str, Any], key: str, where: str, default: Any = _MISSING) -> int:
    value = _get(obj, key, where, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProfileError(f"{where}.{key} must be an integer, got {value!r}")
    if value < 0:
        raise ProfileError(f"{where}.{key} must be >= 0, got {value!r}")
    return value


def _string(obj: Mapping[str, Any], key: str, where: str, default: Any = _MISSING) -> str:
    value = _get(obj, key, where, default)
    if not isinstance(value, str):
        raise ProfileError(f"{where}.{key} must be a string, got {value!r}")
    return value


def _side(value: str) -> Side:
    if value not in tuple(Side):
        raise ProfileError(f"side must be 'mobile' or 'cloud', got {value!r}")
    return Side(value)


def _check_nonnegative(what: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    if value < 0:
        raise ValueError(f"{what} must be >= 0, got {value!r}")
