"""Split execution in one process: every cut point reproduces the whole model bit for bit."""

from __future__ import annotations

import pytest
import torch

from collabdnn.errors import TensorMismatchError, UnitRangeError
from collabdnn.model.split_model import load_model

# AlexNet runs in make test-fast; the other models (vgg11 alone takes seconds) in make test.
OTHER_MODELS = ["alexnet-2012", "resnet18", "mobilenet_v2", "vgg11"]
MODELS = ["alexnet", *(pytest.param(name, marks=pytest.mark.slow) for name in OTHER_MODELS)]


@pytest.mark.parametrize("name", MODELS)
def test_every_cut_is_bit_exact(name, cat_bytes):
    model = load_model(name, "seed:0")
    n = model.num_units
    x = model.run(0, 1, cat_bytes)
    whole = model.forward_whole(x)
    assert whole.shape == (1, 1000)
    assert torch.equal(model.run(0, n, cat_bytes), whole)
    for k in range(1, n + 1):
        head = model.run(1, k, x)
        tail = model.run(k, n, head)
        assert torch.equal(tail, whole), f"{name}: cut after unit {k - 1} differs"


def test_multi_switch_ranges_compose(alexnet, cat_bytes):
    """Any sequence of adjacent ranges equals the whole run (M->C->M->C patterns)."""
    n = alexnet.num_units
    whole = alexnet.run(0, n, cat_bytes)
    x = cat_bytes
    for start, end in [(0, 2), (2, 5), (5, 6), (6, 9), (9, n)]:
        x = alexnet.run(start, end, x)
    assert torch.equal(x, whole)


def test_batch_of_images(alexnet, sample_paths):
    images = [p.read_bytes() for p in sample_paths]
    batch = alexnet.run(0, alexnet.num_units, images)
    assert batch.shape == (len(images), 1000)
    single = alexnet.run(0, alexnet.num_units, images[0])
    torch.testing.assert_close(batch[:1], single)


def test_empty_range_is_identity(alexnet):
    x = torch.zeros(1, 64, 55, 55)
    assert alexnet.run(2, 2, x) is not None
    assert torch.equal(alexnet.run(2, 2, x), x)


@pytest.mark.parametrize("start,end", [(-1, 3), (3, 2), (0, 13), (13, 13)])
def test_out_of_range_units_are_refused(alexnet, start, end):
    with pytest.raises(UnitRangeError, match=r"unit range \["):
        alexnet.run(start, end, torch.zeros(1))


def test_wrong_shape_and_dtype_are_refused(alexnet):
    with pytest.raises(TensorMismatchError, match=r"shape \['B', 64, 55, 55\]"):
        alexnet.run(2, 3, torch.zeros(1, 64, 54, 55))
    with pytest.raises(TensorMismatchError, match="takes float32, got float16"):
        alexnet.run(2, 3, torch.zeros(1, 64, 55, 55, dtype=torch.float16))
    with pytest.raises(TensorMismatchError, match="image bytes"):
        alexnet.run(0, 1, torch.zeros(1, 3, 224, 224))


def test_unit_timings(alexnet, cat_bytes):
    out, times = alexnet.run_timed(0, alexnet.num_units, cat_bytes)
    assert out.shape == (1, 1000)
    assert len(times) == alexnet.num_units
    assert all(t > 0 for t in times)
