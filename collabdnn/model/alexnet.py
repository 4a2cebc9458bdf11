"""AlexNet in two variants, cut into the paper's units.

Units follow Table 3 of the paper: conv1, pool1, conv2, pool2, conv3, conv4, conv5,
pool3, fc1, fc2, fc3. ReLU rides with the layer before it; the dropout in front of
fc1/fc2 rides with the unit that follows it (it is the identity at inference, and this
keeps each fc unit self-contained). pool3 also holds the flatten (and torchvision's
adaptive average pool, the identity at 224x224), so its output is the 9,216-vector.
"""

from __future__ import annotations

import torch
from torch import nn

from collabdnn.model.units import UnitModule


class AlexNet2012(nn.Module):
    """The 2012 AlexNet of the paper's Table 3.

    227x227 input; 96/256/384/384/256 filters; ungrouped convolutions (the original
    split conv2, conv4 and conv5 over two GPUs); no local response normalisation;
    4096/4096/1000 fully connected. 62,378,344 parameters.
    """

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 96, kernel_size=11, stride=4),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(96, 256, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(256, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.flatten = nn.Flatten(1)
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.flatten(self.features(x)))


_FEATURE_UNITS = (
    ("conv1", (0, 2)),
    ("pool1", (2, 3)),
    ("conv2", (3, 5)),
    ("pool2", (5, 6)),
    ("conv3", (6, 8)),
    ("conv4", (8, 10)),
    ("conv5", (10, 12)),
)
_CLASSIFIER_UNITS = (("fc1", (0, 3)), ("fc2", (3, 6)), ("fc3", (6, 7)))


def _alexnet_units(model: nn.Module, pool3_tail: list[nn.Module]) -> list[UnitModule]:
    f, c = _sequential(model, "features"), _sequential(model, "classifier")
    units = [UnitModule(name, nn.Sequential(*f[a:b])) for name, (a, b) in _FEATURE_UNITS]
    units.append(UnitModule("pool3", nn.Sequential(f[12], *pool3_tail), kind="pool"))
    units += [UnitModule(name, nn.Sequential(*c[a:b])) for name, (a, b) in _CLASSIFIER_UNITS]
    return units


def _sequential(model: nn.Module, name: str) -> nn.Sequential:
    part = getattr(model, name)
    if not isinstance(part, nn.Sequential):
        raise TypeError(f"{type(model).__name__}.{name} is not an nn.Sequential")
    return part


def _module(model: nn.Module, name: str) -> nn.Module:
    part = getattr(model, name)
    if not isinstance(part, nn.Module):
        raise TypeError(f"{type(model).__name__}.{name} is not a module")
    return part


def partition_torchvision_alexnet(model: nn.Module) -> list[UnitModule]:
    """torchvision's AlexNet: features, avgpool, flatten, classifier."""
    return _alexnet_units(model, [_module(model, "avgpool"), nn.Flatten(1)])


def partition_alexnet_2012(model: nn.Module) -> list[UnitModule]:
    return _alexnet_units(model, [_module(model, "flatten")])


def build_alexnet_2012() -> nn.Module:
    return AlexNet2012()
