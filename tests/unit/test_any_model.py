"""Bring your own CNN: torchvision classifiers by name, custom models, the partitioner,
merged units, and the cloud refusing names it was not started with before importing."""

from __future__ import annotations

import importlib
import json
import sys

import pytest
import torch
from torch import nn

from collabdnn.cli import main
from collabdnn.codec import decode, encode
from collabdnn.errors import UnknownModelError, WeightsError
from collabdnn.model.examples import LABELS, TinyCNN
from collabdnn.model.fx_chain import partition_fx, restore_layout
from collabdnn.model.merge import merge_groups
from collabdnn.model.registry import (
    MODELS,
    CustomModel,
    Preprocessing,
    get_spec,
    known_model,
    model_names,
    parse_model_name,
    torchvision_names,
    torchvision_spec,
)
from collabdnn.model.split_model import SplitModel, load_model, skeleton_units
from collabdnn.model.units import UnitModule
from collabdnn.model.weights import build_skeleton, build_with_weights

TINY = "collabdnn.model.examples:tiny_cnn"


def chain_on_meta(units: list[UnitModule], shape: tuple[int, ...]) -> list[object]:
    """Every unit's output, run on meta tensors (no arithmetic)."""
    x: object = torch.empty(shape, device="meta")
    outputs = []
    for unit in units:
        x = unit.module(x)
        outputs.append(x)
    return outputs


def assert_bit_exact_through_codec(model: SplitModel, image: bytes) -> None:
    """Each unit fed its input through the codec computes the same bits, and the chain
    equals the whole model: so every cut is bit-exact."""
    x = model.run(0, 1, image)
    whole = model.forward_whole(x)
    for index in range(1, model.num_units):
        y = model.run(index, index + 1, x)
        assert torch.equal(model.run(index, index + 1, decode(encode(x))), y), (
            f"{model.name}: unit {index} ({model.units[index].name}) differs after the codec"
        )
        x = y
    assert torch.equal(x, whole), f"{model.name}: the chain of units differs from the model"


# ------------------------------------------------------------------------------ registry


def test_every_torchvision_classifier_is_a_model_name_registered_first():
    names = model_names()
    assert names[: len(MODELS)] == list(MODELS)
    assert set(torchvision_names()) <= set(names)
    assert len(names) == len(set(names)) >= 80
    for name in ("squeezenet1_1", "inception_v3", "vit_b_16", "shufflenet_v2_x1_0"):
        assert known_model(name) and known_model(f"{name}@8")
    assert not known_model("nosuchnet") and not known_model(TINY)


def test_preprocessing_comes_from_the_weights_transforms():
    inception = get_spec("inception_v3")
    assert (inception.crop, inception.resize, inception.interpolation) == (299, 342, "bilinear")
    efficientnet = get_spec("efficientnet_b0")
    assert (efficientnet.crop, efficientnet.resize, efficientnet.interpolation) == (
        224,
        256,
        "bicubic",
    )
    assert get_spec("vit_h_14").crop == 518 and get_spec("efficientnet_b7").crop == 600
    assert get_spec("inception_v3").torchvision_weights == "inception_v3"


@pytest.mark.parametrize("name", ["alexnet", "resnet18", "mobilenet_v2", "vgg11"])
def test_registered_torchvision_models_preprocess_as_their_weights_say(name):
    assert MODELS[name].preprocessing == torchvision_spec(name).preprocessing


def test_names_with_merged_units_parse():
    assert parse_model_name("resnet152@24").max_units == 24
    assert parse_model_name("a.b:c@5~0a1b2c").layout == "0a1b2c"
    assert parse_model_name("alexnet-2012").base == "alexnet-2012"


def test_unknown_names_are_clear_errors():
    with pytest.raises(UnknownModelError, match="every torchvision classifier"):
        get_spec("nope")
    with pytest.raises(UnknownModelError, match="cannot import no_such_package_xyz"):
        get_spec("no_such_package_xyz.models:net")
    with pytest.raises(UnknownModelError, match="has no 'nothing'"):
        get_spec("collabdnn.model.examples:nothing")
    with pytest.raises(UnknownModelError, match="returned int"):
        get_spec("tests.unit.test_any_model:not_a_model")


# ------------------------------------------------------------------------- custom models


def plain_module() -> nn.Module:
    """A custom model given as a bare module: ImageNet preprocessing at 224."""
    pool = nn.AdaptiveAvgPool2d(1)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, stride=4), nn.ReLU(), pool, nn.Flatten(), nn.Linear(4, 5)
    )


def not_a_model() -> int:
    return 3


def test_custom_model_with_its_preprocessing_and_labels(cat_bytes):
    model = load_model(TINY, "seed:0")
    assert model.name == TINY and model.spec.origin == "custom"
    assert model.units[0].output_shape == (1, 3, 64, 64)
    assert model.labels == list(LABELS)
    assert [u.name for u in model.units] == [
        "preprocess",
        *("stem", "block1", "mixed", "down", "block2", "pool", "fc"),
    ]
    assert model.run(0, model.num_units, cat_bytes).shape == (1, 10)
    assert load_model(TINY, "seed:0").weights_hash == model.weights_hash
    assert load_model(TINY, "seed:1").weights_hash != model.weights_hash
    assert_bit_exact_through_codec(model, cat_bytes)


def test_custom_model_as_a_bare_module_gets_imagenet_preprocessing(cat_bytes):
    model = load_model("tests.unit.test_any_model:plain_module", "seed:0")
    assert model.units[0].output_shape == (1, 3, 224, 224)
    assert model.labels is None  # five outputs: no names
    assert model.run(0, model.num_units, cat_bytes).shape == (1, 5)


def test_custom_model_weights_from_a_file(tmp_path):
    path = tmp_path / "tiny.pt"
    torch.save(TinyCNN().state_dict(), path)
    model = load_model(TINY, str(path))
    assert model.weights_hash == load_model(TINY, str(path)).weights_hash
    with pytest.raises(WeightsError, match="no official ImageNet weights"):
        load_model(TINY, "imagenet")


def test_preprocessing_is_checked():
    with pytest.raises(ValueError, match="crop <= resize"):
        Preprocessing(crop=80, resize=64)
    with pytest.raises(ValueError, match="interpolation"):
        Preprocessing(interpolation="sinc")
    assert CustomModel(nn.Identity()).preprocessing == Preprocessing()


def test_cloud_refuses_other_custom_names_without_importing(monkeypatch):
    from cloud_server.cloud import Cloud

    cloud = Cloud(load_model(TINY, "seed:0"))
    imported: list[str] = []
    real_import = importlib.import_module

    def spy(name: str, *args: object, **kwargs: object) -> object:
        imported.append(name)
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib, "import_module", spy)
    with pytest.raises(UnknownModelError, match="unknown model 'evil_pkg_xyz.payload:run'"):
        cloud.check_caller("evil_pkg_xyz.payload:run", cloud.model.weights_hash)
    with pytest.raises(UnknownModelError, match=f"serves model '{TINY}', not 'vgg11'"):
        cloud.check_caller("vgg11", cloud.model.weights_hash)
    assert imported == [] and "evil_pkg_xyz" not in sys.modules
    cloud.check_caller(TINY, cloud.model.weights_hash)  # its own model: accepted


# --------------------------------------------------------------------------- partitioner


class _LayerScale(nn.Module):
    """A parameter used directly (a get_attr node), as ConvNeXt's layer scale."""

    def __init__(self) -> None:
        super().__init__()
        self.c1, self.c2, self.c3 = (nn.Conv2d(4, 4, 3, padding=1) for _ in range(3))
        self.scale = nn.Parameter(torch.full((1, 4, 1, 1), 0.5))
        self.table = nn.Parameter(torch.rand(1, 4, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.table.exp()  # computed from weights alone, first, used last
        x = self.c1(x)
        x = self.c2(x) * self.scale
        return self.c3(x) + bias


class _Chunked(nn.Module):
    """ShuffleNetV2's pattern: chunk returns a tuple, alone live right after it."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(4, 8, 1)
        self.branch = nn.Conv2d(4, 4, 3, padding=1)
        self.c2 = nn.Conv2d(8, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.c1(x).chunk(2, dim=1)
        return self.c2(torch.cat([a, self.branch(b)], dim=1))


class _ChannelsLast(nn.Module):
    """A boundary laid out channels-last (ConvNeXt's blocks compute so)."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(4, 8, 3, padding=1)
        self.lin = nn.Linear(8, 8)
        self.c2 = nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.lin(self.c1(x).permute(0, 2, 3, 1)) * 2.0
        return self.c2(x.permute(0, 3, 1, 2))


def _run_units(units: list[UnitModule], x: torch.Tensor, codec: bool = True) -> torch.Tensor:
    with torch.inference_mode():
        for unit in units:
            x = unit.module(decode(encode(x.contiguous())) if codec else x)
    return x


def test_weights_used_directly_do_not_hide_cuts():
    torch.manual_seed(0)
    model = _LayerScale().eval()
    units = partition_fx(model, (1, 4, 8, 8))
    assert [u.name for u in units] == ["c1", "c2", "mul", "c3", "add"]
    x = torch.rand(2, 4, 8, 8)
    assert torch.equal(_run_units(units, x), model(x))


def test_a_tuple_is_never_a_unit_boundary():
    torch.manual_seed(0)
    model = _Chunked().eval()
    units = partition_fx(model, (1, 4, 8, 8))
    assert all(isinstance(y, torch.Tensor) for y in chain_on_meta(units, (1, 4, 8, 8)))
    assert [u.name for u in units] == ["c1", "branch", "c2"]  # cuts after the cat's inputs
    x = torch.rand(1, 4, 8, 8)
    assert torch.equal(_run_units(units, x), model(x))


def test_a_channels_last_boundary_is_laid_out_again():
    torch.manual_seed(0)
    model = _ChannelsLast().eval()
    units = partition_fx(model, (1, 4, 8, 8))
    assert [u.name for u in units] == ["c1", "lin", "mul", "c2"]
    restored = [any(n.target is restore_layout for n in u.module.graph.nodes) for u in units]
    assert restored == [False, True, False, True]  # after each permute
    x = torch.rand(1, 4, 8, 8)
    assert torch.equal(_run_units(units, x), model(x))


# Meta device: no weights, no arithmetic, so even ViT-B/16 takes a moment. The issue's
# counts before the fix: 3 units for convnext_tiny and vit_b_16 (parameters used
# directly hid cuts); ShuffleNetV2 had 13 tuple boundaries.
FAST_SUBSET = {"shufflenet_v2_x0_5": 15, "convnext_tiny": 25, "vit_b_16": 25}


@pytest.mark.parametrize("name", list(FAST_SUBSET))
def test_fast_subset_traces_with_a_tensor_at_every_boundary(name):
    spec = get_spec(name)
    units = spec.partition(build_skeleton(spec), spec.input_shape)
    outputs = chain_on_meta(units, spec.input_shape)
    assert all(isinstance(y, torch.Tensor) for y in outputs), name
    assert outputs[-1].shape == (1, 1000)  # type: ignore[attr-defined]
    assert len(units) >= FAST_SUBSET[name]
    assert len({u.name for u in units}) == len(units)


def test_shufflenet_is_bit_exact_at_every_cut_through_the_codec(cat_bytes):
    assert_bit_exact_through_codec(load_model("shufflenet_v2_x0_5", "seed:0"), cat_bytes)


def test_inception_checkpoint_with_auxiliary_heads_loads(tmp_path):
    """torchvision's checkpoints hold the auxiliary classifiers inference never uses."""
    import torchvision

    full = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=False)
    path = tmp_path / "googlenet.pt"
    torch.save(full.state_dict(), path)
    model = build_with_weights(get_spec("googlenet"), str(path))
    assert getattr(model, "aux1", None) is None
    assert torch.equal(model.fc.weight, full.fc.weight)


# ---------------------------------------------------------------------------- merging


def test_merge_groups_joins_the_cheapest_adjacent_pair_first():
    assert merge_groups([5, 1, 1, 5], 3) == [(0, 1), (1, 3), (3, 4)]
    assert merge_groups([5, 1, 1, 5], 2) == [(0, 3), (3, 4)]
    assert merge_groups([1, 2, 3], 5) == [(0, 1), (1, 2), (2, 3)]


def test_max_units_merges_by_flops_into_a_named_model(cat_bytes):
    full = load_model("resnet18", "seed:0")
    merged = load_model("resnet18", "seed:0", max_units=6)
    assert merged.name == "resnet18@6" and merged.num_units == 6
    assert load_model("resnet18@6", "seed:0").name == "resnet18@6"
    assert sum(u.flops for u in merged.units) == sum(u.flops for u in full.units)
    assert merged.units[-1].name.split("..")[-1] == full.units[-1].name  # ends at fc
    assert merged.units[0].name.split("..")[0] == full.units[0].name
    assert torch.equal(
        merged.run(0, merged.num_units, cat_bytes), full.run(0, full.num_units, cat_bytes)
    )
    assert_bit_exact_through_codec(merged, cat_bytes)
    assert load_model("resnet18@40", "seed:0").name == "resnet18"  # nothing to merge


def test_max_units_by_measured_times_names_the_layout():
    full = load_model(TINY, "seed:0")
    costs = [1.0, 1.0, 9.0, 9.0, 9.0, 1.0, 1.0]  # one per unit after preprocessing
    merged = load_model(TINY, "seed:0", max_units=4, unit_costs=costs)
    assert merged.name.startswith(f"{TINY}@4~") and merged.num_units == 4
    assert [u.name for u in merged.units][1:] == ["stem..mixed", "down", "block2..fc"]
    assert load_model(merged.name, "seed:0", unit_costs=costs).name == merged.name
    with pytest.raises(UnknownModelError, match="merged by measured unit times"):
        load_model(merged.name, "seed:0")
    with pytest.raises(UnknownModelError, match="another layout"):
        load_model(merged.name, "seed:0", unit_costs=[9.0] * 7)
    assert full.num_units == 8


def test_skeleton_counts_units_without_weights():
    name, units = skeleton_units(get_spec("resnet18"))
    assert name == "resnet18" and len(units) == 13  # preprocessing included
    assert [u.name for u in units] == [u.name for u in load_model("resnet18").units]
    name, units = skeleton_units(get_spec("efficientnet_b0"), max_units=10)
    assert name == "efficientnet_b0@10" and len(units) == 10


# -------------------------------------------------------------------------------- CLI


def test_models_lists_torchvision_and_counts_units(capsys):
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["models"]
    assert [r["model"] for r in rows][: len(MODELS)] == list(MODELS)
    assert {"inception_v3", "vit_b_16"} <= {r["model"] for r in rows}
    assert main(["models", "--units", "--json", "squeezenet1_1", TINY]) == 0
    rows = json.loads(capsys.readouterr().out)["models"]
    assert [(r["model"], r["units"], r["input"]) for r in rows] == [
        ("squeezenet1_1", 23, "224x224"),
        (TINY, 8, "64x64"),
    ]
    assert main(["models", "--units", "--max-units", "5", TINY]) == 0
    assert f"{TINY}@5" in capsys.readouterr().out


def test_summary_of_a_custom_model(capsys):
    assert main(["summary", TINY, "--max-units", "4", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["model"] == f"{TINY}@4" and len(data["units"]) == 4
    assert data["preprocessing"]["crop"] == 64


def test_unit_costs_from_a_profile_merge_by_measured_times(tmp_path, capsys):
    path = tmp_path / "tiny.json"
    args = ["--side", "mobile", "--model", TINY, "--repeats", "1", "--warmup", "0"]
    assert main(["profile", *args, "--no-progress", "-o", str(path)]) == 0
    capsys.readouterr()
    assert main(["summary", TINY, "--max-units", "4", "--unit-costs", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["model"].startswith(f"{TINY}@4~") and len(data["units"]) == 4
    with pytest.raises(
        SystemExit, match="profiles collabdnn.model.examples:tiny_cnn, not resnet18"
    ):
        main(["summary", "resnet18", "--max-units", "4", "--unit-costs", str(path)])


class _Untraceable(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2 if x.sum() > 0 else x  # data-dependent control flow


def untraceable() -> nn.Module:
    return _Untraceable()


def test_a_model_fx_cannot_trace_is_a_clear_error():
    with pytest.raises(UnknownModelError, match="torch.fx cannot trace _Untraceable"):
        load_model("tests.unit.test_any_model:untraceable")
    with pytest.raises(UnknownModelError, match="2 unit costs for 7 units"):
        load_model(TINY, max_units=3, unit_costs=[1.0, 2.0])
