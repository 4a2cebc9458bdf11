"""Where a model's parameters come from, and a stable hash that identifies them.

Both sides of a split must hold the same weights; the hash is how they check.
A weights spec is one of:

- ``seed:N``: deterministic random initialisation (tests, and demos without weights);
- ``imagenet``: torchvision's official weights, from the local torch cache only;
- a path to a saved state dict.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torch import nn

from collabdnn.errors import WeightsError
from collabdnn.model.registry import ModelSpec

_SEED = re.compile(r"^seed:(\d+)$")


def build_with_weights(spec: ModelSpec, weights: str) -> nn.Module:
    """Build ``spec``'s model and load ``weights`` into it; the model is in eval mode."""
    match = _SEED.match(weights)
    if match:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(match.group(1)))
            model = spec.build()
    else:
        model = spec.build()
        state = _imagenet_state(spec) if weights == "imagenet" else _file_state(Path(weights))
        state = _without_ignored_keys(spec, state)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[:4]
            raise WeightsError(
                f"weights {weights!r} do not fit model {spec.name!r}: {' '.join(first)}"
            ) from exc
    return model.eval()


def _without_ignored_keys(
    spec: ModelSpec, state: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """The checkpoint less the heads inference never uses (Inception's auxiliary ones)."""
    prefixes = spec.ignore_state_prefixes
    if not prefixes:
        return state
    return {k: v for k, v in state.items() if not k.startswith(prefixes)}


def build_skeleton(spec: ModelSpec) -> nn.Module:
    """``spec``'s model with every parameter and buffer on the meta device, in eval mode.

    Its structure without its weights: no memory and no initialisation, so cutting it
    into units and counting them is quick even for a model of 600 million parameters.
    """
    try:
        with torch.device("meta"):
            model = spec.build()
    except Exception:  # a builder that reads a tensor it made (RegNet's widths)
        with _parameters_on_meta():
            model = spec.build()
    return model.to("meta").eval()


@contextlib.contextmanager
def _parameters_on_meta() -> Iterator[None]:
    """Every parameter registered meanwhile moves to the meta device as it is made."""
    register = nn.Module.register_parameter

    def on_meta(self: nn.Module, name: str, param: nn.Parameter | None) -> None:
        if param is not None:
            param = nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)
        register(self, name, param)

    nn.Module.register_parameter = on_meta  # type: ignore[method-assign]
    try:
        yield
    finally:
        nn.Module.register_parameter = register  # type: ignore[method-assign]


def imagenet_weights_path(spec: ModelSpec) -> Path:
    """Where torch keeps the official checkpoint of ``spec`` (it may not be there)."""
    if spec.torchvision_weights is None:
        raise WeightsError(
            f"model {spec.name!r} has no official ImageNet weights; use seed:N or a file"
        )
    import torchvision

    enum = torchvision.models.get_model_weights(spec.torchvision_weights)
    filename = os.path.basename(urlparse(enum.DEFAULT.url).path)
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def _imagenet_state(spec: ModelSpec) -> dict[str, torch.Tensor]:
    path = imagenet_weights_path(spec)
    if not path.is_file():
        raise WeightsError(
            f"ImageNet weights for {spec.name!r} are not in the local torch cache ({path}). "
            "Nothing is downloaded at run time: fetch them once where there is network "
            '(python -c "import torchvision; torchvision.models.get_model('
            f"'{spec.torchvision_weights}', weights='DEFAULT')\") or use --weights seed:0"
        )
    return _file_state(path)


def _file_state(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise WeightsError(f"weights file {str(path)!r} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise WeightsError(f"cannot read weights file {str(path)!r}: {exc}") from exc
    if not isinstance(state, dict):
        raise WeightsError(f"weights file {str(path)!r} does not hold a state dict")
    return state


def weights_hash(model: nn.Module) -> str:
    """The weights' identity: every parameter and buffer's digest, combined in name order.

    Combined from per-entry digests (:func:`entry_digest`, :func:`combine_digests`)
    rather than hashed in one pass, so that split training can compute the whole
    model's hash from what each side reports about the units it holds, without either
    side ever holding the other's parameters.
    """
    return combine_digests(state_digests(model.state_dict()))


def entry_digest(name: str, tensor: torch.Tensor) -> str:
    """SHA-256 over one state entry: its name, dtype, shape and bytes."""
    digest = hashlib.sha256()
    data = tensor.detach().to("cpu").contiguous()
    digest.update(f"{name}|{data.dtype}|{tuple(data.shape)}|".encode())
    if data.numel():
        raw: Any = data.reshape(-1).view(torch.uint8).numpy()  # hashed in place
        digest.update(raw)
    return digest.hexdigest()


def state_digests(state: Mapping[str, torch.Tensor]) -> dict[str, str]:
    """Each entry's :func:`entry_digest`, by name."""
    return {name: entry_digest(name, tensor) for name, tensor in state.items()}


def combine_digests(digests: Mapping[str, str]) -> str:
    """The 16-hex-digit hash of a set of entry digests, taken in name order."""
    combined = hashlib.sha256()
    for name in sorted(digests):
        combined.update(f"{name}:{digests[name]}\n".encode())
    return combined.hexdigest()[:16]
