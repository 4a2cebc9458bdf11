"""A model cut into units, runnable over any half-open unit range ``[start, end)``.

Unit 0 takes image bytes; every other unit takes the previous unit's tensor. Running
``[0, k)`` then ``[k, N)`` performs exactly the operations of the whole model in the
same order, so the result is bit-identical to running it whole.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Sequence
from functools import cached_property
from typing import Any

import numpy as np
import torch
from torch import nn

from collabdnn.bounds import StopCheck
from collabdnn.codec import dtype_name
from collabdnn.errors import (
    CollabError,
    ImageError,
    TensorMismatchError,
    UnitRangeError,
    UnknownModelError,
)
from collabdnn.model.image_boundary import CropBatch, encode_crop
from collabdnn.model.merge import merge_units, merged_suffix
from collabdnn.model.preprocess import ImageLimits, Preprocess
from collabdnn.model.registry import ModelSpec, get_spec, parse_model_name
from collabdnn.model.units import UnitInfo, UnitModule, describe_units
from collabdnn.model.weights import build_skeleton, build_with_weights, weights_hash

log = logging.getLogger(__name__)

ImageInput = bytes | Sequence[bytes] | CropBatch


def cut_units(
    spec: ModelSpec,
    model: nn.Module,
    max_units: int | None = None,
    unit_costs: Sequence[float] | None = None,
    device: str | torch.device = "cpu",
) -> tuple[list[UnitModule], tuple[UnitInfo, ...], str]:
    """``model`` cut into units 1..N-1, every unit's facts (unit 0 included) and the
    model's name: ``spec.name``, plus a suffix when units were merged (``max_units``,
    by ``unit_costs`` per unmerged unit or by FLOPs)."""
    parts: list[UnitModule] = spec.partition(model, spec.input_shape)
    infos = describe_units(parts, spec.input_shape, device)
    name = spec.name
    if max_units is not None and len(parts) + 1 > max_units:
        merged = merge_units(parts, infos, max_units, unit_costs)
        parts, infos = merged.parts, merged.infos
        name += merged_suffix(max_units, merged.groups, by_flops=unit_costs is None)
    crop = spec.crop
    pre = UnitInfo(
        0, "preprocess", "preprocess", spec.input_shape, "float32", 4 * 3 * crop**2, 0, 0
    )
    return parts, (pre, *infos), name


def skeleton_units(
    spec: ModelSpec, max_units: int | None = None
) -> tuple[str, tuple[UnitInfo, ...]]:
    """The model's name and the units it cuts into, learnt without weights or
    arithmetic (the model on the meta device): what ``collabdnn models --units`` counts."""
    _, infos, name = cut_units(spec, build_skeleton(spec), max_units, device="meta")
    return name, infos


class SplitModel:
    """A model, its units, and where they run.

    ``max_units`` merges the cheapest adjacent units (by ``unit_costs``, one per unit
    of the unmerged model less preprocessing, else by FLOPs) until at most that many
    are left; the model's name then says so (see :mod:`collabdnn.model.merge`).
    """

    def __init__(
        self,
        spec: ModelSpec,
        model: nn.Module,
        weights: str,
        device: str = "cpu",
        image_limits: ImageLimits | None = None,
        max_units: int | None = None,
        unit_costs: Sequence[float] | None = None,
    ) -> None:
        self.spec = spec
        self.model = model.eval()
        self.weights = weights
        self.preprocess = Preprocess(
            spec.crop,
            spec.resize,
            image_limits,
            mean=spec.mean,
            std=spec.std,
            interpolation=spec.interpolation,
        )
        parts, self.units, self._name = cut_units(spec, model, max_units, unit_costs)
        self.modules: list[nn.Module] = [self.preprocess, *(p.module for p in parts)]
        self.device = torch.device("cpu")
        self.to(device)

    @cached_property
    def weights_hash(self) -> str:
        return weights_hash(self.model)

    @property
    def name(self) -> str:
        """The model's name on the wire: the spec's, plus ``@N`` when units were merged."""
        return self._name

    @cached_property
    def labels(self) -> list[str] | None:
        """Class names: the model's own, else ImageNet's for 1,000 outputs, else None."""
        if self.spec.labels is not None:
            return list(self.spec.labels)
        out = self.units[-1].output_shape
        return imagenet_labels() if len(out) == 2 and out[-1] == 1000 else None

    @property
    def num_units(self) -> int:
        return len(self.units)

    @property
    def total_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def to(self, device: str | torch.device) -> SplitModel:
        self.device = torch.device(device)
        self.model.to(self.device)
        self.preprocess.to(self.device)
        for module in self.modules:
            module.to(self.device)
        return self

    def check_range(self, start: int, end: int) -> None:
        if not 0 <= start <= end <= self.num_units:
            raise UnitRangeError(
                f"unit range [{start}, {end}) is outside [0, {self.num_units}) of {self.name}"
            )

    def check_input(self, start: int, x: Any) -> None:
        """Refuse an input that unit ``start`` cannot consume (shape or dtype)."""
        if start == 0:
            if not isinstance(x, bytes | bytearray | list | tuple | CropBatch):
                raise TensorMismatchError("unit 0 (preprocess) takes encoded image bytes")
            return
        if not isinstance(x, torch.Tensor):
            raise TensorMismatchError(f"unit {start} takes a tensor, got {type(x).__name__}")
        self.check_tensor(start, dtype_name(x.dtype), tuple(x.shape))

    def check_tensor(self, start: int, dtype: str, shape: Sequence[int]) -> None:
        """Refuse a tensor of ``dtype`` and ``shape`` that unit ``start`` (> 0) cannot
        consume: exactly the output shape of unit ``start - 1`` with any batch >= 1.

        Takes the facts alone, so that a frame can be judged by its header before its
        payload is decoded (the payload's size follows from them).
        """
        producer = self.units[start - 1]
        expected = producer.output_shape
        consumer = self.units[start].name if start < self.num_units else "the result"
        if dtype != producer.dtype:
            raise TensorMismatchError(
                f"unit {start} ({consumer}) takes {producer.dtype}, got {dtype}"
            )
        if len(shape) != len(expected) or tuple(shape[1:]) != expected[1:] or shape[0] < 1:
            want = ["B", *expected[1:]]
            raise TensorMismatchError(
                f"unit {start} ({consumer}) takes shape {want}, got {list(shape)}"
            )

    def output_problem(self, end: int, batch: int, x: Any) -> str:
        """What is wrong with ``x`` as the output of unit ``end - 1`` for a batch of
        ``batch`` (its shape, its dtype, a float that is not finite); "" when nothing.

        The agent checks the cloud's replies with it: a reply shaped [1, 5] would
        otherwise become a five-class answer, and NaN logits a confident one.
        """
        unit = self.units[end - 1]
        what = f"the output of unit {end - 1} ({unit.name})"
        want = (batch, *unit.output_shape[1:])
        if not isinstance(x, torch.Tensor):
            return f"{what} is not a tensor"
        if dtype_name(x.dtype) != unit.dtype:
            return f"{what} is {dtype_name(x.dtype)}, not {unit.dtype}"
        if tuple(x.shape) != want:
            return f"{what} is shaped {list(x.shape)}, not {list(want)}"
        if x.is_floating_point() and not _all_finite(x):
            return f"{what} holds NaN or infinite values"
        return ""

    def step(self, index: int, x: Any) -> Any:
        """Unit ``index`` alone, unchecked: the one code path every runner and profiler uses.

        Callers hold ``torch.inference_mode()`` and have checked the range and input.
        """
        return _canonical(self.modules[index](x))

    def run(self, start: int, end: int, x: Any) -> Any:
        """Execute units ``[start, end)`` on ``x``; returns the last unit's output.

        ``x`` is image bytes (or a list of them, a batch, or a :class:`CropBatch` of
        encoded uint8 crops) when ``start == 0``, otherwise a
        tensor shaped like unit ``start - 1``'s output (any batch size).
        """
        self.check_range(start, end)
        self.check_input(start, x)
        if isinstance(x, torch.Tensor):
            x = x.to(self.device)
        with torch.inference_mode():
            for index in range(start, end):
                x = self.step(index, x)
        return x

    def run_timed(
        self, start: int, end: int, x: Any, should_stop: StopCheck | None = None
    ) -> tuple[Any, list[float]]:
        """Like :meth:`run`, also returning each unit's wall time in milliseconds.

        ``should_stop()`` is called before every unit (and between the images of a
        batch at unit 0); the :class:`~collabdnn.errors.WorkStopped` it raises ends the
        run there, so a request whose caller has gone costs at most one more unit.
        """
        self.check_range(start, end)
        self.check_input(start, x)
        if isinstance(x, torch.Tensor):
            x = x.to(self.device)
        times = []
        sync = torch.cuda.synchronize if self.device.type == "cuda" else (lambda: None)
        with torch.inference_mode():
            for index in range(start, end):
                if should_stop is not None:
                    should_stop()
                begin = time.perf_counter()
                x = self._preprocess(x, should_stop) if index == 0 else self.step(index, x)
                sync()
                times.append((time.perf_counter() - begin) * 1e3)
        return x, times

    def _preprocess(self, images: ImageInput, should_stop: StopCheck | None) -> torch.Tensor:
        """Unit 0, image by image when there are several (checking ``should_stop``
        between them; the result is the same: preprocessing is per image).

        Whatever goes wrong decoding an image is that image's fault, the request's: an
        :class:`~collabdnn.errors.ImageError` (INVALID_ARGUMENT), never an internal
        error, so that one hostile image sent to the cloud cannot open the agent's
        circuit breaker for everyone (a MemoryError included: the decode was the
        request's, the service is fine once it is dropped).
        """
        if isinstance(images, CropBatch):
            if should_stop is None or len(images.images) < 2:
                return self._decode_images(images)
            singles: list[ImageInput] = [CropBatch((image,)) for image in images.images]
        elif isinstance(images, bytes | bytearray) or should_stop is None or len(images) < 2:
            return self._decode_images(images)
        else:
            singles = [[image] for image in images]
        parts = []
        for single in singles:
            should_stop()
            parts.append(self._decode_images(single))
        return _canonical(torch.cat(parts))

    def crop_images(self, images: bytes | Sequence[bytes], fmt: str) -> CropBatch:
        """The crop stage of unit 0 on ``images``, each crop encoded losslessly as
        ``fmt``: what a plan sends the cloud instead of the photos when its boundary-0
        codec is ``crop:FMT`` (the cloud's unit 0 then only normalises)."""
        batch = [images] if isinstance(images, bytes | bytearray) else list(images)
        return CropBatch(
            tuple(
                encode_crop(self._decode_images(bytes(image), self.preprocess.crop_pixels), fmt)
                for image in batch
            )
        )

    def preprocess_images(self, images: ImageInput) -> torch.Tensor:
        """Unit 0 on ``images``, outside inference mode (split training keeps its output
        for autograd); any decoding failure is an :class:`~collabdnn.errors.ImageError`."""
        return self._decode_images(images)

    def _decode_images(self, images: Any, decoder: Any = None) -> Any:
        try:
            return (decoder or functools.partial(self.step, 0))(images)
        except CollabError:
            raise
        except MemoryError as exc:
            log.warning("decoding an image ran out of memory: refused as the request's fault")
            raise ImageError("cannot decode image: it needs more memory than is available") from exc
        except Exception as exc:  # a decoder bug met by hostile bytes: still the image's
            log.warning("decoding an image failed unexpectedly", exc_info=True)
            raise ImageError(f"cannot decode image: {type(exc).__name__}: {exc}") from exc

    def forward_whole(self, x: torch.Tensor) -> torch.Tensor:
        """The unsplit model on a preprocessed tensor: the reference for split runs."""
        with torch.inference_mode():
            return self.model(x.to(self.device))


def _all_finite(x: torch.Tensor) -> bool:
    """Whether every value of ``x`` is finite. A CPU tensor is checked through numpy:
    one call instead of torch's two dispatched ops (2.6 against 9 us in a hot loop; the
    whole reply check took 0.15 ms on the agent's request path, a thread waking with
    cold caches)."""
    if x.device.type == "cpu" and x.dtype != torch.bfloat16:
        return bool(np.isfinite(x.numpy()).all())
    return bool(torch.isfinite(x).all())


def _canonical(x: Any) -> Any:
    """A unit's output in standard contiguous layout: the layout the codec delivers.

    Preprocessing permutes HWC pixels, which leaves a channels-last tensor, and conv
    kernels take another path (other float rounding) on channels-last input. Making
    every unit boundary contiguous means a unit computes the same bits whether its
    input came from the previous unit here or was decoded from the wire.
    """
    return x.contiguous() if isinstance(x, torch.Tensor) else x


def load_model(
    name: str,
    weights: str = "seed:0",
    device: str = "cpu",
    image_limits: ImageLimits | None = None,
    max_units: int | None = None,
    unit_costs: Sequence[float] | None = None,
) -> SplitModel:
    """Build model ``name`` with ``weights`` and cut it into units.

    ``name`` may carry ``@N`` (at most N units, merged by FLOPs) instead of
    ``max_units``; ``@N~layout`` needs the ``unit_costs`` that gave that layout.
    """
    parsed = parse_model_name(name)
    if parsed.max_units is not None:
        if max_units is not None and max_units != parsed.max_units:
            raise UnknownModelError(f"model {name!r} but at most {max_units} units asked for")
        max_units = parsed.max_units
        if parsed.layout is not None and unit_costs is None:
            raise UnknownModelError(
                f"model {name!r} was merged by measured unit times: give the same profile "
                "(--unit-costs) to rebuild it"
            )
    spec = get_spec(parsed.base)
    begin = time.perf_counter()
    model = build_with_weights(spec, weights)
    try:
        split = SplitModel(spec, model, weights, device, image_limits, max_units, unit_costs)
    except ValueError as exc:  # cannot be cut (fx_chain.ChainError), costs that do not fit
        raise UnknownModelError(f"model {name!r}: {exc}") from exc
    if parsed.layout is not None and split.name not in (name, parsed.base):
        raise UnknownModelError(
            f"model {name!r}: these unit costs merge into {split.name!r}, another layout"
        )
    log.info(
        "loaded %s (%s, %d units, %s parameters) on %s in %.1f s",
        split.name,
        weights,
        split.num_units,
        f"{split.total_parameters:,}",
        device,
        time.perf_counter() - begin,
    )
    return split


def imagenet_labels() -> list[str]:
    """The 1,000 ImageNet class names, from torchvision's weight metadata (no download)."""
    import torchvision

    return list(torchvision.models.AlexNet_Weights.IMAGENET1K_V1.meta["categories"])
