"""Model registry and unit tables, checked against the paper's Table 3."""

from __future__ import annotations

import json

import pytest

from collabdnn.cli import main
from collabdnn.errors import UnknownModelError
from collabdnn.model.registry import MODELS, get_spec
from collabdnn.model.split_model import load_model

# Table 3: (unit, output shape C x H x W or features, parameters). conv2's weights are
# 5*5*96*256 = 614,400 (the table's "614,000" is a typo; its row total 614,656 is right).
TABLE_3 = [
    ("preprocess", (3, 227, 227), 0),
    ("conv1", (96, 55, 55), 34_944),
    ("pool1", (96, 27, 27), 0),
    ("conv2", (256, 27, 27), 614_656),
    ("pool2", (256, 13, 13), 0),
    ("conv3", (384, 13, 13), 885_120),
    ("conv4", (384, 13, 13), 1_327_488),
    ("conv5", (256, 13, 13), 884_992),
    ("pool3", (9216,), 0),  # Table 3's 6 x 6 x 256, flattened for fc1
    ("fc1", (4096,), 37_752_832),
    ("fc2", (4096,), 16_781_312),
    ("fc3", (1000,), 4_097_000),
]


def test_alexnet_2012_matches_table_3():
    model = load_model("alexnet-2012", "seed:0")
    got = [(u.name, u.output_shape[1:], u.params) for u in model.units]
    assert got == TABLE_3
    assert model.total_parameters == 62_378_344
    assert sum(u.params for u in model.units) == 62_378_344


def test_torchvision_alexnet_units(alexnet):
    assert [u.name for u in alexnet.units] == [name for name, _, _ in TABLE_3]
    assert alexnet.total_parameters == 61_100_840
    assert alexnet.units[1].flops == 64 * 55 * 55 * 3 * 11 * 11  # conv1 MACs
    assert alexnet.units[9].flops == 9216 * 4096  # fc1 MACs
    assert {u.kind for u in alexnet.units} == {"preprocess", "conv", "pool", "fc"}
    for unit in alexnet.units:
        numel = 1
        for dim in unit.output_shape:
            numel *= dim
        assert unit.output_bytes == 4 * numel


def test_unknown_model_is_a_clear_error():
    with pytest.raises(UnknownModelError, match="unknown model 'nope'.*alexnet"):
        get_spec("nope")


def test_registry_has_the_required_models():
    assert {"alexnet", "alexnet-2012", "resnet18", "mobilenet_v2", "vgg11"} <= set(MODELS)


def test_summary_prints_table_3_total(capsys):
    assert main(["summary", "alexnet-2012"]) == 0
    out = capsys.readouterr().out
    assert "62,378,344" in out
    for name, shape, params in TABLE_3:
        assert name in out
        assert f"{params:,}" in out
        assert " x ".join(map(str, shape)) in out


def test_summary_json(capsys):
    assert main(["summary", "alexnet", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["model"] == "alexnet"
    assert data["total_parameters"] == 61_100_840
    assert len(data["units"]) == 12
    assert {"name", "output_shape", "output_bytes", "params", "flops", "kind"} <= set(
        data["units"][0]
    )


def test_models_json(capsys):
    assert main(["models", "--json"]) == 0
    names = [m["model"] for m in json.loads(capsys.readouterr().out)["models"]]
    assert names[: len(MODELS)] == list(MODELS)  # registered first, then torchvision's


def test_summary_unknown_model_exits_with_message():
    with pytest.raises(SystemExit, match="unknown model"):
        main(["summary", "nope"])
