"""The model registry: from a name to how to build the model, cut it and preprocess for it.

A model name is one of:

- a registered name (``MODELS``): the paper's AlexNets and a few torchvision models;
- any classification model torchvision lists
  (``torchvision.models.list_models(module=torchvision.models)``: ``efficientnet_b0``,
  ``inception_v3``, ``vit_b_16``...), with the input size and preprocessing of its
  default ImageNet weights (read from torchvision's weight metadata: nothing is
  downloaded);
- ``package.module:factory``, a custom model: ``factory()`` returns an ``nn.Module`` or
  a :class:`CustomModel` (the module with its preprocessing and labels). Importing it
  runs that module's code, so a service imports only the model it was started with
  (:func:`known_model` answers for other names without importing anything).

Nothing here imports torch or torchvision at module level, so listing names is cheap.
Add a model by adding one entry to ``MODELS``.
"""

from __future__ import annotations

import functools
import importlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from collabdnn.errors import UnknownModelError

if TYPE_CHECKING:
    from torch import nn

    from collabdnn.model.units import UnitModule

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "box", "hamming", "lanczos")
_CUSTOM = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
_MERGED = re.compile(r"^(?P<base>.+)@(?P<max>\d+)(?:~(?P<layout>[0-9a-f]{6}))?$")

Partition = Callable[["nn.Module", tuple[int, ...]], "list[UnitModule]"]


@dataclass(frozen=True)
class Preprocessing:
    """Unit 0's parameters: resize the shorter side, centre-crop, normalise."""

    crop: int = 224  # input side after preprocessing
    resize: int = 256  # shorter side before the centre crop
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    interpolation: str = "bilinear"  # one of INTERPOLATIONS (Pillow's resampling filters)

    def __post_init__(self) -> None:
        if not 1 <= self.crop <= self.resize:
            raise ValueError(
                f"need 1 <= crop <= resize, got crop {self.crop}, resize {self.resize}"
            )
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError("mean and std need three values each, std > 0")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(
                f"interpolation {self.interpolation!r} is not one of {', '.join(INTERPOLATIONS)}"
            )


@dataclass(frozen=True)
class CustomModel:
    """What a custom model's factory may return instead of a bare ``nn.Module``.

    ``labels`` name the classes (one per output); ``preprocessing`` defaults to the
    ImageNet one at 224x224.
    """

    module: nn.Module
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    labels: Sequence[str] | None = None
    description: str = ""


def _partition_fx(model: nn.Module, input_shape: tuple[int, ...]) -> list[UnitModule]:
    from collabdnn.model.fx_chain import partition_fx

    return partition_fx(model, input_shape)


@dataclass(frozen=True)
class ModelSpec:
    """How to build a model, cut it into units, preprocess for it and find its weights."""

    name: str
    description: str
    build: Callable[[], nn.Module]
    partition: Partition = _partition_fx  # (model, input shape) -> units 1..N-1
    crop: int = 224  # input side after preprocessing
    resize: int = 256  # shorter side before the centre crop
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    interpolation: str = "bilinear"
    torchvision_weights: str | None = None  # torchvision model name whose weights load here
    labels: tuple[str, ...] | None = None  # class names; None: ImageNet's for 1,000 outputs
    # State-dict keys of heads that inference never uses (Inception's auxiliary
    # classifiers): dropped from a checkpoint before it is loaded.
    ignore_state_prefixes: tuple[str, ...] = ()
    origin: str = "registry"  # "registry", "torchvision" or "custom"

    @property
    def preprocessing(self) -> Preprocessing:
        return Preprocessing(self.crop, self.resize, self.mean, self.std, self.interpolation)

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (1, 3, self.crop, self.crop)


# --------------------------------------------------------------------------- registered


def _alexnet_2012() -> nn.Module:
    from collabdnn.model.alexnet import build_alexnet_2012

    return build_alexnet_2012()


def _partition_alexnet(model: nn.Module, input_shape: tuple[int, ...]) -> list[UnitModule]:
    from collabdnn.model.alexnet import partition_torchvision_alexnet

    return partition_torchvision_alexnet(model)


def _partition_alexnet_2012(model: nn.Module, input_shape: tuple[int, ...]) -> list[UnitModule]:
    from collabdnn.model.alexnet import partition_alexnet_2012

    return partition_alexnet_2012(model)


def _torchvision(name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import torchvision

        return torchvision.models.get_model(name, weights=None)

    return build


# Registered torchvision models state their preprocessing here, so that listing the
# registry needs no torchvision; a test checks it equals what their weights say.
MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "alexnet",
            "torchvision AlexNet (64/192/384/256/256 filters, 61,100,840 parameters)",
            _torchvision("alexnet"),
            _partition_alexnet,
            torchvision_weights="alexnet",
        ),
        ModelSpec(
            "alexnet-2012",
            "the paper's Table 3 AlexNet (227x227, 96/256/384/384/256, 62,378,344 parameters)",
            _alexnet_2012,
            _partition_alexnet_2012,
            crop=227,
        ),
        ModelSpec(
            "resnet18",
            "torchvision ResNet-18, one unit per residual block (torch.fx)",
            _torchvision("resnet18"),
            torchvision_weights="resnet18",
        ),
        ModelSpec(
            "mobilenet_v2",
            "torchvision MobileNetV2, cut between inverted-residual blocks (torch.fx)",
            _torchvision("mobilenet_v2"),
            resize=232,  # its default weights (IMAGENET1K_V2) were trained so
            torchvision_weights="mobilenet_v2",
        ),
        ModelSpec(
            "vgg11",
            "torchvision VGG-11, one unit per conv/pool/fc layer (torch.fx)",
            _torchvision("vgg11"),
            torchvision_weights="vgg11",
        ),
    )
}


# -------------------------------------------------------------------------- torchvision


@functools.cache
def torchvision_names() -> tuple[str, ...]:
    """Every classification model torchvision lists (not its detection, video, ... ones)."""
    import torchvision

    return tuple(torchvision.models.list_models(module=torchvision.models))


# Builder arguments that torchvision sets when it loads its own weights: a seeded
# model gets them too, so that it has the same structure as the ImageNet one.
_INCEPTION = {"transform_input": True, "aux_logits": False, "init_weights": True}
_BUILD_ARGS: dict[str, dict[str, Any]] = {"inception_v3": _INCEPTION, "googlenet": _INCEPTION}
_IGNORED_KEYS = {"inception_v3": ("AuxLogits.",), "googlenet": ("aux1.", "aux2.")}


def _interpolation_name(mode: Any) -> str:
    value = str(getattr(mode, "value", mode)).lower()
    return value if value in INTERPOLATIONS else "bilinear"


@functools.cache
def torchvision_spec(
    name: str, description: str | None = None, partition: Partition = _partition_fx
) -> ModelSpec:
    """The spec of torchvision classifier ``name``, preprocessing as its default weights'."""
    import torchvision

    weights = torchvision.models.get_model_weights(name).DEFAULT
    transforms = weights.transforms()  # an ImageClassification preset: attributes only
    crop = int(transforms.crop_size[0])
    resize = int(transforms.resize_size[0])
    kwargs = dict(_BUILD_ARGS.get(name, {}))
    min_size = weights.meta.get("min_size")
    if name.startswith("vit_") and min_size:
        kwargs["image_size"] = int(min_size[0])  # as torchvision sets it for its weights
    if name.startswith("maxvit") and min_size:
        kwargs["input_size"] = tuple(min_size)
    if description is None:
        params = weights.meta.get("num_params")
        top1 = weights.meta.get("_metrics", {}).get("ImageNet-1K", {}).get("acc@1")
        facts = [f"{params:,} parameters" if params else "", f"top-1 {top1}%" if top1 else ""]
        description = f"torchvision {name} ({', '.join(f for f in facts if f)})"

    def build() -> nn.Module:
        return torchvision.models.get_model(name, weights=None, **kwargs)

    return ModelSpec(
        name,
        description,
        build,
        partition,
        crop=crop,
        resize=max(resize, crop),
        mean=_triple(transforms.mean),
        std=_triple(transforms.std),
        interpolation=_interpolation_name(transforms.interpolation),
        torchvision_weights=name,
        ignore_state_prefixes=_IGNORED_KEYS.get(name, ()),
        origin="torchvision",
    )


def _triple(values: Sequence[float]) -> tuple[float, float, float]:
    a, b, c = (float(v) for v in values)
    return (a, b, c)


# ------------------------------------------------------------------------------- custom


def is_custom_name(name: str) -> bool:
    """Whether ``name`` has the ``package.module:factory`` form."""
    return bool(_CUSTOM.match(name))


def _resolve_factory(name: str) -> Callable[[], Any]:
    module_name, _, attr = name.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise UnknownModelError(
            f"custom model {name!r}: cannot import {module_name}: {exc}"
        ) from exc
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise UnknownModelError(
                f"custom model {name!r}: {module_name} has no {attr!r}"
            ) from None
    if not callable(target):
        raise UnknownModelError(f"custom model {name!r}: {attr} is not callable")
    return target


def _unwrap(name: str, made: Any) -> CustomModel:
    from torch import nn

    if isinstance(made, CustomModel):
        if not isinstance(made.module, nn.Module):
            raise UnknownModelError(
                f"custom model {name!r}: CustomModel.module is not an nn.Module"
            )
        return made
    if isinstance(made, nn.Module):
        return CustomModel(made)
    raise UnknownModelError(
        f"custom model {name!r}: the factory returned {type(made).__name__}, "
        "not an nn.Module or a CustomModel"
    )


@functools.cache
def custom_spec(name: str) -> ModelSpec:
    """The spec of ``package.module:factory``; calls the factory once to read its
    preprocessing and labels (and once more for each model built)."""
    import torch

    factory = _resolve_factory(name)
    with torch.random.fork_rng(devices=[]):
        first = _unwrap(name, factory())
    pre = first.preprocessing
    doc = (getattr(factory, "__doc__", None) or "").strip().splitlines()
    description = first.description or (doc[0] if doc else f"custom model {name}")
    labels = tuple(str(label) for label in first.labels) if first.labels is not None else None

    def build() -> nn.Module:
        return _unwrap(name, factory()).module

    return ModelSpec(
        name,
        description,
        build,
        crop=pre.crop,
        resize=pre.resize,
        mean=pre.mean,
        std=pre.std,
        interpolation=pre.interpolation,
        labels=labels,
        origin="custom",
    )


# ------------------------------------------------------------------------------- lookup


@dataclass(frozen=True)
class ModelName:
    """A model name taken apart: ``base[@N[~layout]]``.

    ``@N`` says the units were merged down to ``N`` by FLOPs; ``~layout`` (six hex
    digits) that they were merged by the measured times of a profile, and which
    layout that gave (see :mod:`collabdnn.model.merge`).
    """

    base: str
    max_units: int | None = None
    layout: str | None = None


def parse_model_name(name: str) -> ModelName:
    match = _MERGED.match(name)
    if match is None:
        return ModelName(name)
    return ModelName(match["base"], int(match["max"]), match["layout"])


def model_names() -> list[str]:
    """Every name ``get_spec`` knows without importing user code: registered first."""
    return [*MODELS, *(n for n in torchvision_names() if n not in MODELS)]


def known_model(name: str) -> bool:
    """Whether ``name`` is registered or a torchvision classifier (merged or not);
    imports nothing of the caller's choosing: custom names are never 'known'."""
    base = parse_model_name(name).base
    return base in MODELS or base in torchvision_names()


def get_spec(name: str) -> ModelSpec:
    """The spec of model ``name``; a custom ``package.module:factory`` is imported."""
    if name in MODELS:
        return MODELS[name]
    if not is_custom_name(name):
        if name in torchvision_names():
            return torchvision_spec(name)
        known = ", ".join(MODELS)
        raise UnknownModelError(
            f"unknown model {name!r}; known models: {known}, every torchvision classifier "
            "('collabdnn models' lists them) and package.module:factory"
        )
    return custom_spec(name)
