"""Predict unit latencies where nothing was measured, in the manner of Neurosurgeon.

Neurosurgeon (Kang et al., ASPLOS 2017) fits one regression per layer kind from layer
configuration to latency, so that a device profiled once can be planned for models and
batch sizes it never ran. Here every kind gets::

    latency_ms ≈ a·flops + b·output_bytes + c·input_bytes + d      (all >= 0)

fitted by least squares on measured :class:`~collabdnn.planning.profiles.Profile` units. The
features come from the profile itself (FLOPs, per-batch output bytes, and the previous
unit's output bytes, or the encoded photo for preprocessing), so a predictor can be
fitted from profile files alone, without loading any model. Coefficients must be
non-negative (more work never takes less time); a negative one is dropped and the rest
refitted. Rows are weighted by ``1/latency`` by default, so that the fit minimises
*relative* error: otherwise the few slow units decide everything and the many fast ones
are predicted at ±100 %.

A kind with too few points to fit four coefficients uses the global model (fitted on
all units) scaled by that kind's median ratio of measured to predicted latency; a kind
never seen uses the global model unscaled. So does a kind seen in only one model when
the fit spans several: one architecture's units of a kind (ResNet's blocks all have
about the same FLOPs) cannot tell size from architecture, and such a fit extrapolated
to another model's blocks was off by about 200 % where the scaled global model was off
by about 55 % (leave-one-model-out, ``benchmarks/bench_predictor.py``).

Sizes and codec times of a predicted profile come from the same profiles: the median
compression ratio per kind and a linear fit of encode/decode time against bytes.

A predicted profile is marked ``host["predicted"] = true`` and every latency has
``repeats = 0`` (profiles.py keeps ``host`` verbatim but drops unknown unit keys).
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from collabdnn.placement import Side
from collabdnn.planning.profiles import Codec, LatencyStats, Profile, ProfileError, UnitProfile

if TYPE_CHECKING:
    from collabdnn.model.split_model import SplitModel
    from collabdnn.model.units import UnitInfo

__all__ = [
    "FEATURES",
    "PREDICTOR_SCHEMA",
    "HoldoutPrediction",
    "LatencyPredictor",
    "LinearModel",
    "Sample",
    "fit",
    "holdout_error",
    "holdout_predictions",
    "predict_profile",
    "samples_from_profile",
    "summarise_errors",
]

PREDICTOR_SCHEMA = "collabdnn.planning.predictor/1"
FEATURES = ("flops", "output_bytes", "input_bytes", "intercept")
MIN_POINTS = 5  # one more than the coefficients, or a kind's fit just interpolates
MIN_LATENCY_MS = 1e-3  # a unit never takes no time; keeps planners from dividing by zero
WEIGHTINGS = ("relative", "absolute")


# ------------------------------------------------------------------------------ samples


@dataclass(frozen=True)
class Sample:
    """One measured unit as the regression sees it: features and the latency."""

    model: str
    unit: str
    kind: str
    flops: float
    output_bytes: float
    input_bytes: float
    latency_ms: float

    @property
    def features(self) -> tuple[float, float, float, float]:
        return (self.flops, self.output_bytes, self.input_bytes, 1.0)


def samples_from_profile(profile: Profile) -> list[Sample]:
    """The regression samples of a profile; FLOPs are per image, so scale by the batch."""
    samples = []
    previous_bytes = profile.input_bytes
    for unit in profile.units:
        samples.append(
            Sample(
                model=profile.model,
                unit=unit.name,
                kind=unit.kind,
                flops=float(unit.flops * profile.batch_size),
                output_bytes=float(unit.output_bytes),
                input_bytes=float(previous_bytes),
                latency_ms=unit.latency_ms.median,
            )
        )
        previous_bytes = unit.output_bytes
    return samples


# ------------------------------------------------------------------------------- models


@dataclass(frozen=True)
class LinearModel:
    """``latency = coef · (flops, output_bytes, input_bytes, 1)``.

    ``source`` says how it was made: fitted on its kind, the global model scaled, or global.
    """

    coef: tuple[float, float, float, float]
    points: int
    source: str = "fit"  # "fit", "scaled-global" or "global"

    def predict(self, features: Sequence[float]) -> float:
        value = sum(c * f for c, f in zip(self.coef, features, strict=True))
        return max(float(value), MIN_LATENCY_MS)

    def to_dict(self) -> dict[str, Any]:
        return {
            "coef": dict(zip(FEATURES, self.coef, strict=True)),
            "points": self.points,
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LinearModel:
        coef = data["coef"]
        return cls(
            coef=tuple(float(coef[name]) for name in FEATURES),  # type: ignore[arg-type]
            points=int(data["points"]),
            source=str(data.get("source", "fit")),
        )


@dataclass(frozen=True)
class CodecModel:
    """Link sizes and codec times for units that were never encoded."""

    ratio_by_kind: Mapping[str, float]  # encoded bytes / output bytes, median
    ratio: float  # over all kinds, for unseen ones
    encode_ms: tuple[float, float]  # ms per byte, ms
    decode_ms: tuple[float, float]

    def encoded_bytes(self, kind: str, output_bytes: int) -> int:
        return max(1, round(output_bytes * self.ratio_by_kind.get(kind, self.ratio)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "ratio_by_kind": dict(self.ratio_by_kind),
            "ratio": self.ratio,
            "encode_ms": {"per_byte": self.encode_ms[0], "intercept": self.encode_ms[1]},
            "decode_ms": {"per_byte": self.decode_ms[0], "intercept": self.decode_ms[1]},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CodecModel:
        def pair(obj: Mapping[str, Any]) -> tuple[float, float]:
            return float(obj["per_byte"]), float(obj["intercept"])

        return cls(
            ratio_by_kind={k: float(v) for k, v in data["ratio_by_kind"].items()},
            ratio=float(data["ratio"]),
            encode_ms=pair(data["encode_ms"]),
            decode_ms=pair(data["decode_ms"]),
        )


@dataclass(frozen=True)
class LatencyPredictor:
    """Per-kind latency models for one side, plus what a predicted profile needs besides."""

    side: str
    device: str
    threads: int
    models: tuple[str, ...]  # the models whose profiles it was fitted on
    kinds: Mapping[str, LinearModel]
    global_model: LinearModel
    codec_model: CodecModel
    codec: Codec = field(default_factory=Codec)
    image_bytes: int = 0  # median encoded photo, per image
    weighting: str = "relative"

    def model_for(self, kind: str) -> LinearModel:
        return self.kinds.get(kind, self.global_model)

    def predict(self, unit: UnitInfo, input_bytes: int, batch_size: int = 1) -> float:
        """Predicted latency in ms of ``unit`` for a batch whose input is ``input_bytes``."""
        features = (
            float(unit.flops * batch_size),
            float(unit.output_bytes * batch_size),
            float(input_bytes),
            1.0,
        )
        return self.model_for(unit.kind).predict(features)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": PREDICTOR_SCHEMA,
            "side": str(self.side),
            "device": self.device,
            "threads": self.threads,
            "models": list(self.models),
            "kinds": {kind: m.to_dict() for kind, m in sorted(self.kinds.items())},
            "global": self.global_model.to_dict(),
            "codec_model": self.codec_model.to_dict(),
            "codec": self.codec.to_dict(),
            "image_bytes": self.image_bytes,
            "weighting": self.weighting,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LatencyPredictor:
        if data.get("schema") != PREDICTOR_SCHEMA:
            raise ProfileError(
                f"unsupported predictor schema {data.get('schema')!r}; expected "
                f"{PREDICTOR_SCHEMA!r}"
            )
        try:
            return cls(
                side=str(data["side"]),
                device=str(data["device"]),
                threads=int(data["threads"]),
                models=tuple(data["models"]),
                kinds={k: LinearModel.from_dict(v) for k, v in data["kinds"].items()},
                global_model=LinearModel.from_dict(data["global"]),
                codec_model=CodecModel.from_dict(data["codec_model"]),
                codec=Codec.from_dict(data.get("codec", {})),
                image_bytes=int(data.get("image_bytes", 0)),
                weighting=str(data.get("weighting", "relative")),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ProfileError(f"malformed predictor: {exc!r}") from exc


# -------------------------------------------------------------------------------- fitting


def fit(
    profiles: Iterable[Profile], *, min_points: int = MIN_POINTS, weighting: str = "relative"
) -> LatencyPredictor:
    """Fit a predictor on measured profiles of one side (any models and batch sizes).

    Profiles of both sides, of different devices or codecs cannot be mixed: their
    latencies and sizes describe different machines or encodings.
    """
    profiles = list(profiles)
    if not profiles:
        raise ProfileError("fitting a predictor needs at least one profile")
    first = profiles[0]
    for profile in profiles[1:]:
        for attr in ("side", "device", "codec"):
            if getattr(profile, attr) != getattr(first, attr):
                raise ProfileError(
                    f"cannot fit one predictor on profiles with different {attr}: "
                    f"{getattr(first, attr)!r} ({first.model}) and "
                    f"{getattr(profile, attr)!r} ({profile.model})"
                )
    samples = [s for p in profiles for s in samples_from_profile(p)]
    kinds, global_model = fit_latency_models(samples, min_points=min_points, weighting=weighting)
    return LatencyPredictor(
        side=first.side,
        device=first.device,
        threads=first.threads,
        models=tuple(dict.fromkeys(p.model for p in profiles)),
        kinds=kinds,
        global_model=global_model,
        codec_model=_fit_codec(profiles),
        codec=first.codec,
        image_bytes=round(statistics.median(p.input_bytes / p.batch_size for p in profiles)),
        weighting=weighting,
    )


def fit_latency_models(
    samples: Sequence[Sample], *, min_points: int = MIN_POINTS, weighting: str = "relative"
) -> tuple[dict[str, LinearModel], LinearModel]:
    """Per-kind models and the global one (see the module docstring for the fallbacks)."""
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
    if not samples:
        raise ProfileError("no measured units to fit")
    global_model = LinearModel(_fit_nonnegative(samples, weighting), len(samples), "global")
    by_kind: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        by_kind[sample.kind].append(sample)
    many_models = len({s.model for s in samples}) > 1
    kinds = {}
    for kind, group in by_kind.items():
        spans_models = len({s.model for s in group}) > 1 or not many_models
        if len(group) >= min_points and spans_models:
            kinds[kind] = LinearModel(_fit_nonnegative(group, weighting), len(group), "fit")
        else:
            kinds[kind] = _scaled(global_model, group)
    return kinds, global_model


def _fit_nonnegative(
    samples: Sequence[Sample], weighting: str
) -> tuple[float, float, float, float]:
    """Least squares with non-negative coefficients, by dropping the most negative one.

    Columns are scaled to [0, 1] first: FLOPs (1e9) and the intercept (1) differ by nine
    orders of magnitude, which would make the solve ill-conditioned.
    """
    x = np.array([s.features for s in samples], dtype=np.float64)
    y = np.array([s.latency_ms for s in samples], dtype=np.float64)
    if weighting == "relative":
        w = 1.0 / np.maximum(y, MIN_LATENCY_MS)
        x, y = x * w[:, None], y * w
    scale = np.abs(x).max(axis=0)
    active = [j for j in range(x.shape[1]) if scale[j] > 0]
    coef = np.zeros(x.shape[1])
    while active:
        solution = np.linalg.lstsq(x[:, active] / scale[active], y, rcond=None)[0]
        worst = int(np.argmin(solution))
        if solution[worst] >= 0:
            coef[active] = solution / scale[active]
            break
        active.pop(worst)
    a, b, c, d = (float(c) for c in coef)  # one per feature: (flops, out, in, 1)
    return a, b, c, d


def _scaled(global_model: LinearModel, group: Sequence[Sample]) -> LinearModel:
    """The global model times the kind's median measured/predicted ratio."""
    ratios = [s.latency_ms / global_model.predict(s.features) for s in group]
    factor = statistics.median(ratios)
    coef = tuple(c * factor for c in global_model.coef)
    return LinearModel(coef, len(group), "scaled-global")  # type: ignore[arg-type]


def _fit_codec(profiles: Sequence[Profile]) -> CodecModel:
    units = [u for p in profiles for u in p.units if u.output_bytes > 0]
    by_kind: dict[str, list[float]] = defaultdict(list)
    for unit in units:
        by_kind[unit.kind].append(unit.encoded_bytes / unit.output_bytes)
    ratios = [r for group in by_kind.values() for r in group]
    return CodecModel(
        ratio_by_kind={kind: statistics.median(group) for kind, group in by_kind.items()},
        ratio=statistics.median(ratios) if ratios else 1.0,
        encode_ms=_fit_line([(u.output_bytes, u.encode_ms) for u in units]),
        decode_ms=_fit_line([(u.output_bytes, u.decode_ms) for u in units]),
    )


def _fit_line(points: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """``ms ≈ a·bytes + b`` with a, b >= 0, reusing the latency fit's solver."""
    samples = [Sample("", "", "", 0.0, float(b), 0.0, float(ms)) for b, ms in points]
    if not samples:
        return 0.0, 0.0
    coef = _fit_nonnegative(samples, "absolute")
    return coef[1], coef[3]


# ----------------------------------------------------------------------------- predicting


def predict_profile(
    model: SplitModel,
    predictor: LatencyPredictor,
    *,
    side: str | None = None,
    batch_size: int = 1,
    image_bytes: int | None = None,
) -> Profile:
    """A profile of ``model`` at ``batch_size`` from the predictor alone (nothing runs).

    ``image_bytes`` is the size of one encoded photo (default: the median of the
    profiles the predictor was fitted on); the batch's input is that times the batch.
    """
    side = side or predictor.side
    if side != predictor.side:
        raise ProfileError(
            f"the predictor was fitted on {predictor.side} profiles; it cannot predict the "
            f"{side} side"
        )
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    input_bytes = (image_bytes or predictor.image_bytes) * batch_size
    units = []
    previous = input_bytes
    for info in model.units:
        units.append(_predicted_unit(predictor, info, previous, batch_size))
        previous = info.output_bytes * batch_size
    return Profile(
        side=Side(side),
        model=model.name,
        units=tuple(units),
        input_bytes=input_bytes,
        weights_hash=model.weights_hash,
        device=predictor.device,
        threads=predictor.threads,
        batch_size=batch_size,
        host={
            "predicted": True,
            "predicted_from": list(predictor.models),
            "weighting": predictor.weighting,
        },
        codec=predictor.codec,
    )


def _predicted_unit(
    predictor: LatencyPredictor, info: UnitInfo, input_bytes: int, batch_size: int
) -> UnitProfile:
    latency = predictor.predict(info, input_bytes, batch_size)
    output_bytes = info.output_bytes * batch_size
    codec = predictor.codec_model
    encoded = codec.encoded_bytes(info.kind, output_bytes)
    return UnitProfile(
        index=info.index,
        name=info.name,
        kind=info.kind,
        flops=info.flops,
        params=info.params,
        latency_ms=LatencyStats(median=latency, p10=latency, p90=latency, repeats=0),
        output_bytes=output_bytes,
        encoded_bytes=encoded,
        encode_ms=codec.encode_ms[0] * output_bytes + codec.encode_ms[1],
        decode_ms=codec.decode_ms[0] * output_bytes + codec.decode_ms[1],
    )


# ------------------------------------------------------------------------------ held out


@dataclass(frozen=True)
class HoldoutPrediction:
    """One unit predicted by a predictor that never saw it (or its model)."""

    model: str
    unit: str
    kind: str
    measured_ms: float
    predicted_ms: float

    @property
    def ape(self) -> float:
        """Absolute percentage error."""
        return abs(self.predicted_ms - self.measured_ms) / self.measured_ms * 100.0


def holdout_predictions(
    profiles: Iterable[Profile],
    *,
    by: str = "model",
    min_points: int = MIN_POINTS,
    weighting: str = "relative",
) -> list[HoldoutPrediction]:
    """Predict every unit with a fit that excludes it.

    ``by="model"`` leaves one model out at a time (the honest test: can it plan a model
    it never ran?) and needs profiles of two or more models; ``by="unit"`` leaves out one
    unit at a time.
    """
    samples = [s for p in profiles for s in samples_from_profile(p)]
    if by == "model":
        groups = sorted({s.model for s in samples})
        if len(groups) < 2:
            raise ProfileError("leave-one-model-out needs profiles of at least two models")
        held = [[s for s in samples if s.model == g] for g in groups]
    elif by == "unit":
        held = [[s] for s in samples]
    else:
        raise ValueError(f"by must be 'model' or 'unit', got {by!r}")
    predictions = []
    for test in held:
        train = [s for s in samples if not any(s is t for t in test)]
        kinds, global_model = fit_latency_models(train, min_points=min_points, weighting=weighting)
        for s in test:
            model = kinds.get(s.kind, global_model)
            predictions.append(
                HoldoutPrediction(s.model, s.unit, s.kind, s.latency_ms, model.predict(s.features))
            )
    return predictions


def summarise_errors(predictions: Iterable[HoldoutPrediction]) -> dict[str, dict[str, float]]:
    """Median and mean absolute percentage error per kind, and over ``"all"`` units."""
    by_kind: dict[str, list[float]] = defaultdict(list)
    for p in predictions:
        if p.measured_ms > 0 and math.isfinite(p.predicted_ms):
            by_kind[p.kind].append(p.ape)
            by_kind["all"].append(p.ape)
    return {
        kind: {
            "units": len(errors),
            "median_ape": statistics.median(errors),
            "mean_ape": statistics.fmean(errors),
        }
        for kind, errors in sorted(by_kind.items(), key=lambda kv: (kv[0] == "all", kv[0]))
    }


def holdout_error(
    profiles: Iterable[Profile],
    *,
    by: str = "model",
    min_points: int = MIN_POINTS,
    weighting: str = "relative",
) -> dict[str, dict[str, float]]:
    """Held-out error per kind: ``{kind: {"units", "median_ape", "mean_ape"}}`` in percent."""
    return summarise_errors(
        holdout_predictions(profiles, by=by, min_points=min_points, weighting=weighting)
    )
