"""Measure one side's per-unit costs on real photos: ``t(i)``, ``s_i``, ``e_i``, ``d_i``.

:func:`profile_model` runs the whole unit chain on each sample photo (so unit ``i``
always sees the real output of unit ``i-1``; a zero or random tensor would compress
differently and take a different time through ReLU-heavy kernels), times every unit
separately, then encodes and decodes each unit's real output with the link codec and
with every other tensor codec the planner may choose per crossing
(:data:`collabdnn.crossing.TENSOR_CODECS`), and the photo's lossless crop in every
format (``crop:*``: this side's crop stage, then encoding and decoding the crop).

The function takes image *bytes* and returns a :class:`~collabdnn.planning.profiles.Profile`, so
the gRPC services can call it from their Profile handler (in a worker thread) with the
model they already hold and return ``profile.to_dict()``. It changes no global torch
setting; profiling calls in one process are serialised by a lock, because two profiles
measured at once would each time the other's work. ``should_stop`` (a
:data:`collabdnn.bounds.StopCheck`) is called between units, outside every timing: a
service's Profile ends there when its caller has gone.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import torch

from collabdnn.bounds import StopCheck, never_stop
from collabdnn.codec import CodecConfig, decode, encode
from collabdnn.crossing import CROP_FORMATS, TENSOR_CODECS, parse_tensor_codec, tensor_codec_name
from collabdnn.model.image_boundary import decode_crop, encode_crop
from collabdnn.model.split_model import SplitModel
from collabdnn.netem.throttle import current_cpu_limit
from collabdnn.placement import Side
from collabdnn.planning.profiles import (
    Codec,
    CodecFigures,
    LatencyStats,
    Profile,
    UnitProfile,
)

__all__ = ["ProgressCallback", "host_facts", "latency_stats", "make_batches", "profile_model"]

ProgressCallback = Callable[[int, int], None]
"""Called as ``callback(done, total)`` between measuring passes (never inside a timing)."""

_PROFILE_LOCK = threading.Lock()


@dataclass
class _UnitSamples:
    """Raw observations of one unit, gathered over all batches before summarising."""

    latencies_ms: list[float]
    cpu_ms: list[float]
    encoded_bytes: list[int]
    encode_ms: list[float]
    decode_ms: list[float]
    output_bytes: int = 0
    # Other codecs on the same outputs: name -> (sizes, encode ms, decode ms, crop ms).
    others: dict[str, tuple[list[int], list[float], list[float], list[float]]] = field(
        default_factory=dict
    )

    def other(self, name: str) -> tuple[list[int], list[float], list[float], list[float]]:
        return self.others.setdefault(name, ([], [], [], []))

    def figures(self) -> tuple[CodecFigures, ...]:
        return tuple(
            CodecFigures(
                name,
                int(statistics.median_low(sizes)),
                statistics.median(enc),
                statistics.median(dec),
                statistics.median(crop) if crop else 0.0,
            )
            for name, (sizes, enc, dec, crop) in self.others.items()
        )


def profile_model(
    model: SplitModel,
    side: str,
    images: Sequence[bytes],
    *,
    repeats: int = 10,
    warmup: int = 2,
    batch_size: int = 1,
    codec: CodecConfig | None = None,
    progress: bool | ProgressCallback = False,
    should_stop: StopCheck | None = None,
) -> Profile:
    """Profile every unit of ``model`` on this machine, as side ``side``.

    Each photo starts one batch of ``batch_size`` photos (the following ones, cycling),
    so every photo is measured even when there are fewer photos than the batch size.
    For each batch the whole chain runs ``warmup`` times untimed, then ``repeats`` times
    timed per unit; latency statistics pool all timed runs of all batches. Sizes and
    codec times are per batch: medians over the batches of the real outputs.
    """
    _check_arguments(side, images, repeats, warmup, batch_size)
    codec = codec or CodecConfig()
    batches = make_batches(images, batch_size)
    samples = [_UnitSamples([], [], [], [], []) for _ in model.units]
    photo = _UnitSamples([], [], [], [], [])  # the photo's crop codecs
    total = len(batches) * (warmup + repeats + 1)
    with _PROFILE_LOCK, _Progress(progress, total, f"profile {model.name} ({side})") as advance:
        for batch in batches:
            _measure_batch(
                model, batch, samples, repeats, warmup, codec, advance, should_stop or never_stop
            )
            _measure_crops(model, batch, photo, repeats, should_stop or never_stop)
    return Profile(
        side=Side(side),
        model=model.name,
        units=tuple(_unit_profile(info, s) for info, s in zip(model.units, samples, strict=True)),
        input_codecs=photo.figures(),
        input_bytes=int(statistics.median_low(sum(map(len, b)) for b in batches)),
        weights_hash=model.weights_hash,
        device=str(model.device),
        threads=torch.get_num_threads(),
        batch_size=batch_size,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        host={
            **host_facts(model.device),
            "weights": model.weights,
            "images": len(images),
            "warmup": warmup,
        },
        codec=Codec(level=codec.level, shuffle=codec.shuffle),
    )


def make_batches(images: Sequence[bytes], batch_size: int) -> list[list[bytes]]:
    """One batch per photo: the photo and the next ``batch_size - 1``, wrapping around."""
    n = len(images)
    return [[images[(start + k) % n] for k in range(batch_size)] for start in range(n)]


def latency_stats(
    values_ms: Sequence[float], cpu_ms: Sequence[float] | None = None
) -> LatencyStats:
    """Median, 10th and 90th percentile (clamped so p10 <= median <= p90) and mean of
    ``values_ms``; the mean of ``cpu_ms`` (each run's CPU time) when given."""
    arr = np.asarray(values_ms, dtype=np.float64)
    median = float(np.median(arr))
    p10, p90 = (float(v) for v in np.percentile(arr, [10, 90]))
    return LatencyStats(
        median=median,
        p10=min(p10, median),
        p90=max(p90, median),
        repeats=len(arr),
        mean=float(arr.mean()),
        cpu=float(np.mean(cpu_ms)) if cpu_ms else None,
    )


def host_facts(device: torch.device | str = "cpu") -> dict[str, Any]:
    """Facts about the machine a profile was measured on, to judge whether it still applies."""
    device = torch.device(device)
    limit = current_cpu_limit()
    facts: dict[str, Any] = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "physical_cores": _physical_cores(),
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": str(device),
        "device_name": _cpu_model(),
        # The cgroup CPU quota this process runs under (None: none), cores and CFS
        # period: a side profiled under one is planned with its CPU times over the
        # quota (LatencyStats.expected), and the period (collabdnn.planning.cfs).
        "cpu_quota": None if limit is None else limit[0],
        "cpu_period_ms": None if limit is None else limit[1],
    }
    if device.type == "cuda":
        facts["device_name"] = torch.cuda.get_device_name(device)
        facts["cuda"] = torch.version.cuda
    return facts


# ----------------------------------------------------------------------------- measuring


def _measure_batch(
    model: SplitModel,
    batch: list[bytes],
    samples: list[_UnitSamples],
    repeats: int,
    warmup: int,
    codec: CodecConfig,
    advance: Callable[[], None],
    should_stop: StopCheck = never_stop,
) -> None:
    """Warm up, time ``repeats`` passes of the chain, then measure the codec on the outputs."""
    sync = _synchronizer(model.device)
    outputs: list[Any] = []
    for _ in range(warmup):
        outputs, _times, _cpu = _timed_pass(model, batch, sync, should_stop)
        advance()
    for _ in range(repeats):
        outputs, times, cpu = _timed_pass(model, batch, sync, should_stop)
        for unit, elapsed, used in zip(samples, times, cpu, strict=True):
            unit.latencies_ms.append(elapsed)
            unit.cpu_ms.append(used)
        advance()
    for unit, output in zip(samples, outputs, strict=True):
        should_stop()
        _measure_codec(output, unit, codec, repeats, model.device, sync)
    advance()


def _timed_pass(
    model: SplitModel,
    batch: list[bytes],
    sync: Callable[[], None],
    should_stop: StopCheck = never_stop,
) -> tuple[list[Any], list[float], list[float]]:
    """Run the whole chain once; each unit's wall time and the process's CPU time
    meanwhile (every thread: torch's intra-op pool too), in ms. Nothing else in the
    loop (``should_stop()`` runs between units, before each timing starts)."""
    outputs: list[Any] = []
    times: list[float] = []
    cpu: list[float] = []
    x: Any = batch
    with torch.inference_mode():
        for index in range(model.num_units):
            should_stop()
            begin, used = time.perf_counter(), time.process_time()
            x = model.step(index, x)
            sync()
            times.append((time.perf_counter() - begin) * 1e3)
            cpu.append((time.process_time() - used) * 1e3)
            outputs.append(x)
    return outputs, times, cpu


def _measure_codec(
    output: torch.Tensor,
    unit: _UnitSamples,
    codec: CodecConfig,
    repeats: int,
    device: torch.device,
    sync: Callable[[], None],
) -> None:
    """Size and encode/decode times of one real output.

    Encoding includes the copy off the accelerator and decoding the copy back onto it,
    because a split run pays both whenever this boundary crosses the link.
    """
    unit.output_bytes = output.numel() * output.element_size()
    own = tensor_codec_name(codec.level, codec.shuffle)
    _time_codec(
        output, codec, repeats, device, sync, unit.encoded_bytes, unit.encode_ms, unit.decode_ms
    )
    for name in TENSOR_CODECS:
        if name == own:
            continue
        level, shuffle = parse_tensor_codec(name)
        if shuffle and not output.is_floating_point():
            continue  # the filter leaves integer data as it is: nothing to choose
        other = CodecConfig(level=level, shuffle=shuffle, threads=codec.threads)
        sizes, enc, dec, _ = unit.other(name)
        _time_codec(output, other, repeats, device, sync, sizes, enc, dec)


def _time_codec(
    output: torch.Tensor,
    codec: CodecConfig,
    repeats: int,
    device: torch.device,
    sync: Callable[[], None],
    sizes: list[int],
    encode_ms: list[float],
    decode_ms: list[float],
) -> None:
    """Append ``output``'s frame size and ``repeats`` encode and decode times."""
    frame = encode(output, codec)
    decode(frame)  # warm-up for both directions
    sizes.append(len(frame))
    for _ in range(repeats):
        begin = time.perf_counter()
        encode(output, codec)
        encode_ms.append((time.perf_counter() - begin) * 1e3)
    for _ in range(repeats):
        begin = time.perf_counter()
        decode(frame).to(device)
        sync()
        decode_ms.append((time.perf_counter() - begin) * 1e3)


def _measure_crops(
    model: SplitModel,
    batch: list[bytes],
    photo: _UnitSamples,
    repeats: int,
    should_stop: StopCheck = never_stop,
) -> None:
    """The photo's ``crop:FMT`` codecs on one batch: this side's crop stage (the
    first stage of unit 0), then each format's size and encode and decode times (per
    batch: the crop's time counts as encoding; the receiver's ``crop_ms`` is saved)."""
    crop = model.preprocess.crop
    for fmt in CROP_FORMATS:
        should_stop()
        sizes, enc, dec, crops = photo.other(f"crop:{fmt}")
        for _ in range(repeats):
            begin = time.perf_counter()
            pixels = [model.preprocess.crop_pixels(image) for image in batch]
            middle = time.perf_counter()
            encoded = [encode_crop(p, fmt) for p in pixels]
            end = time.perf_counter()
            crops.append((middle - begin) * 1e3)
            enc.append((end - begin) * 1e3)
            begin = time.perf_counter()
            for data in encoded:
                decode_crop(data, crop)
            dec.append((time.perf_counter() - begin) * 1e3)
        sizes.append(sum(map(len, encoded)))


def _unit_profile(info: Any, samples: _UnitSamples) -> UnitProfile:
    return UnitProfile(
        index=info.index,
        name=info.name,
        kind=info.kind,
        flops=info.flops,
        params=info.params,
        latency_ms=latency_stats(samples.latencies_ms, samples.cpu_ms),
        output_bytes=samples.output_bytes,
        encoded_bytes=int(statistics.median_low(samples.encoded_bytes)),
        encode_ms=statistics.median(samples.encode_ms),
        decode_ms=statistics.median(samples.decode_ms),
        codecs=samples.figures(),
    )


# ------------------------------------------------------------------------------ helpers


def _check_arguments(
    side: str, images: Sequence[bytes], repeats: int, warmup: int, batch_size: int
) -> None:
    if side not in tuple(Side):
        raise ValueError(f"side must be 'mobile' or 'cloud', got {side!r}")
    if not images:
        raise ValueError("profiling needs at least one image")
    if not all(isinstance(image, bytes | bytearray) for image in images):
        raise TypeError("images must be encoded image bytes (PNG, JPEG, ...)")
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")


def _synchronizer(device: torch.device) -> Callable[[], None]:
    """CUDA runs asynchronously: without a sync a timing would only cover the launch."""
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


class _Progress:
    """Adapts ``progress`` (False, True for a tqdm bar on stderr, or a callback)."""

    def __init__(self, progress: bool | ProgressCallback, total: int, desc: str) -> None:
        self._callback = progress if callable(progress) else None
        self._bar: Any = None
        self._done = 0
        self._total = total
        if progress is True:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit="pass", file=sys.stderr, leave=False)

    def __enter__(self) -> Callable[[], None]:
        return self._advance

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()

    def _advance(self) -> None:
        self._done += 1
        if self._bar is not None:
            self._bar.update(1)
        if self._callback is not None:
            self._callback(self._done, self._total)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _physical_cores() -> int | None:
    try:
        import psutil

        return psutil.cpu_count(logical=False)
    except ImportError:  # pragma: no cover - psutil is a dependency; stay usable without
        return None
