"""The model registry: a mapping from name to how to build and cut the model.

Nothing here imports torch or torchvision at module level, so listing models is cheap.
Add a model by adding one entry to ``MODELS``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from collabdnn.errors import UnknownModelError

if TYPE_CHECKING:
    from torch import nn

    from collabdnn.model.units import UnitModule


@dataclass(frozen=True)
class ModelSpec:
    """How to build a model, cut it into units and find its official weights."""

    name: str
    description: str
    build: Callable[[], nn.Module]
    partition: Callable[[nn.Module], list[UnitModule]]
    crop: int = 224  # input side after preprocessing
    resize: int = 256  # shorter side before the centre crop
    torchvision_weights: str | None = None  # torchvision model name whose weights load here


def _torchvision(name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import torchvision

        return torchvision.models.get_model(name, weights=None)

    return build


def _alexnet_2012() -> nn.Module:
    from collabdnn.model.alexnet import build_alexnet_2012

    return build_alexnet_2012()


def _partition_alexnet(model: nn.Module) -> list[UnitModule]:
    from collabdnn.model.alexnet import partition_torchvision_alexnet

    return partition_torchvision_alexnet(model)


def _partition_alexnet_2012(model: nn.Module) -> list[UnitModule]:
    from collabdnn.model.alexnet import partition_alexnet_2012

    return partition_alexnet_2012(model)


def _partition_fx(model: nn.Module) -> list[UnitModule]:
    from collabdnn.model.fx_chain import partition_fx

    return partition_fx(model)


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
            _partition_fx,
            torchvision_weights="resnet18",
        ),
        ModelSpec(
            "mobilenet_v2",
            "torchvision MobileNetV2, cut between inverted-residual blocks (torch.fx)",
            _torchvision("mobilenet_v2"),
            _partition_fx,
            torchvision_weights="mobilenet_v2",
        ),
        ModelSpec(
            "vgg11",
            "torchvision VGG-11, one unit per conv/pool/fc layer (torch.fx)",
            _torchvision("vgg11"),
            _partition_fx,
            torchvision_weights="vgg11",
        ),
    )
}


def get_spec(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        known = ", ".join(sorted(MODELS))
        raise UnknownModelError(f"unknown model {name!r}; known models: {known}") from None
