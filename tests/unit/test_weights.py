"""Weights specs and the hash that both sides compare."""

from __future__ import annotations

import pytest
import torch

from collabdnn.errors import WeightsError
from collabdnn.model.registry import get_spec
from collabdnn.model.split_model import load_model
from collabdnn.model.weights import build_with_weights, imagenet_weights_path, weights_hash


def test_seeded_weights_are_deterministic():
    spec = get_spec("resnet18")
    a, b, c = (build_with_weights(spec, w) for w in ("seed:1", "seed:1", "seed:2"))
    assert weights_hash(a) == weights_hash(b)
    assert weights_hash(a) != weights_hash(c)


def test_seeding_does_not_disturb_global_rng():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_with_weights(get_spec("resnet18"), "seed:5")
    assert torch.equal(torch.rand(3), expected)


def test_state_dict_file_round_trip(tmp_path):
    spec = get_spec("resnet18")
    model = build_with_weights(spec, "seed:3")
    path = tmp_path / "resnet18.pt"
    torch.save(model.state_dict(), path)
    loaded = load_model("resnet18", str(path))
    assert loaded.weights_hash == weights_hash(model)


def test_mismatched_state_dict_is_refused(tmp_path):
    path = tmp_path / "alexnet.pt"
    torch.save(build_with_weights(get_spec("alexnet"), "seed:0").state_dict(), path)
    with pytest.raises(WeightsError, match="do not fit model 'resnet18'"):
        load_model("resnet18", str(path))


def test_missing_and_garbage_files(tmp_path):
    with pytest.raises(WeightsError, match="does not exist"):
        load_model("resnet18", str(tmp_path / "absent.pt"))
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="cannot read weights file"):
        load_model("resnet18", str(bad))


def test_imagenet_weights_absent_from_cache_is_clear(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    spec = get_spec("alexnet")
    assert str(imagenet_weights_path(spec)).startswith(str(tmp_path))
    with pytest.raises(WeightsError, match="not in the local torch cache"):
        build_with_weights(spec, "imagenet")
    with pytest.raises(WeightsError, match="no official ImageNet weights"):
        build_with_weights(get_spec("alexnet-2012"), "imagenet")
