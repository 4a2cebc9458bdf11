"""Every torchvision classifier cuts into a chain of single-tensor units (slow).

Checked on the meta device: the model is built without weights and every unit runs on
meta tensors, so shapes are propagated without arithmetic (ViT-H/14 at 518x518 and
RegNet-Y-128GF take a second, not minutes). A representative set is then run for real,
with seeded weights, to check that every cut is bit-exact through the codec.
"""

from __future__ import annotations

import pytest
import torch

from collabdnn.model.registry import get_spec, torchvision_names
from collabdnn.model.split_model import load_model, skeleton_units
from tests.unit.test_any_model import assert_bit_exact_through_codec

pytestmark = pytest.mark.slow

# DAG models of every family the partitioner must handle: residual and dense blocks,
# Inception branches, squeeze-and-excitation, channel shuffle, layer scale (ConvNeXt),
# a class token (ViT), windowed attention with a relative position bias (Swin).
BIT_EXACT = [
    "squeezenet1_1",
    "googlenet",
    "inception_v3",
    "densenet121",
    "mobilenet_v3_small",
    "efficientnet_b0",
    "mnasnet0_5",
    "regnet_y_400mf",
    "resnext50_32x4d",
    "convnext_tiny",
    "swin_t",
    "vit_b_16",
]


@pytest.mark.parametrize("name", torchvision_names())
def test_every_classifier_traces_with_a_tensor_at_every_boundary(name):
    spec = get_spec(name)
    model_name, units = skeleton_units(spec)  # runs every unit: a tuple would fail here
    assert model_name == name
    assert units[0].output_shape == (1, 3, spec.crop, spec.crop)
    assert units[-1].output_shape == (1, 1000)
    assert all(u.dtype == "float32" for u in units)
    assert len({u.name for u in units}) == len(units), "unit names are unique"
    assert len(units) >= 5, f"{name} cut into only {len(units)} units"


@pytest.mark.parametrize("name", BIT_EXACT)
def test_every_cut_is_bit_exact_through_the_codec(name, cat_bytes):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the services in the gRPC tests
    try:
        assert_bit_exact_through_codec(load_model(name, "seed:0"), cat_bytes)
    finally:
        torch.set_num_threads(threads)
