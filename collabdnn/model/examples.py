"""An example of bringing your own CNN: ``--model collabdnn.model.examples:tiny_cnn``.

Any ``package.module:factory`` works the same way: the factory takes no arguments and
returns an ``nn.Module`` (ImageNet preprocessing at 224x224, ImageNet's labels when it
has 1,000 outputs), or a :class:`~collabdnn.model.registry.CustomModel` that also says
how to preprocess and what the outputs mean. The model must trace with ``torch.fx``
(no data-dependent Python control flow in ``forward``), take one image tensor and
return one tensor of logits. It is cut wherever one tensor alone is live, so a
residual block or a concatenation of branches stays in one unit.

Both sides of a split must be started with the same name and weights (``seed:N``, or
a state-dict file): the name and a hash of the weights are what they compare. A cloud
imports only the module it was started with.

This one is a small residual network with an Inception-style block, for 64x64 photos
and ten classes (CIFAR-10's names): seeded weights make it a fast stand-in in tests.
"""

from __future__ import annotations

import torch
from torch import nn

from collabdnn.model.registry import CustomModel, Preprocessing

__all__ = ["LABELS", "TinyCNN", "tiny_cnn"]

LABELS = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


def _conv(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class Residual(nn.Module):
    """Two convolutions and a skip connection."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv(channels, channels), _conv(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.body(x))


class Branches(nn.Module):
    """Two branches side by side, concatenated (as in Inception)."""

    def __init__(self, c_in: int, each: int) -> None:
        super().__init__()
        self.narrow = nn.Conv2d(c_in, each, 1)
        self.wide = nn.Sequential(_conv(c_in, each), _conv(each, each))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.narrow(x), self.wide(x)], dim=1)


class TinyCNN(nn.Module):
    """Stem, residual block, branches, strided conv, residual block, classifier."""

    def __init__(self, num_classes: int = len(LABELS)) -> None:
        super().__init__()
        self.stem = _conv(3, 16, stride=2)
        self.block1 = Residual(16)
        self.mixed = Branches(16, 16)
        self.down = _conv(32, 48, stride=2)
        self.block2 = Residual(48)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(48, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block2(self.down(self.mixed(self.block1(self.stem(x)))))
        return self.fc(torch.flatten(self.pool(x), 1))


def tiny_cnn() -> CustomModel:
    """A tiny residual CNN for 64x64 photos and CIFAR-10's ten classes (an example)."""
    return CustomModel(
        TinyCNN(),
        preprocessing=Preprocessing(crop=64, resize=72),
        labels=LABELS,
        description="example custom model: a tiny residual CNN, 64x64, 10 classes",
    )
