"""Split training without the network: the side trainers and the step protocol in process.

The cloud's half runs behind :class:`FrameRemote`, which passes only codec frames (and
the images of unit 0), as the wire does. With one thread, split training must equal
training on one side bit for bit: the same losses, the same final weights hash.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
import torch

from collabdnn.codec import decode, encode
from collabdnn.errors import LimitError, TrainingStateError
from collabdnn.model.split_model import SplitModel, load_model
from collabdnn.model.unit_info import UnitInfo
from collabdnn.model.weights import weights_hash
from collabdnn.placement import Placement, Side
from collabdnn.training.checkpoint import combine, save_side
from collabdnn.training.data import batch_order, load_image_folder
from collabdnn.training.hashing import whole_hash
from collabdnn.training.side import SideTrainer, wants_input_grad
from collabdnn.training.spec import OptimizerConfig, TrainingSpec
from collabdnn.training.step import CloudInput, StepDriver, StepFailed
from tests.common import SAMPLES, image_folder

TINY = "collabdnn.model.examples:tiny_cnn"
SGD = OptimizerConfig("sgd", 0.05, momentum=0.9, weight_decay=5e-4)
ADAM = OptimizerConfig("adam", 0.01, weight_decay=1e-4)


class Transient(Exception):
    """A failure of the link: worth another attempt."""


class FrameRemote:
    """The cloud's SideTrainer behind frames, as over gRPC; records what crossed, and
    fails on purpose where ``fail`` says (``(method, step, attempt)``)."""

    def __init__(self, trainer: SideTrainer, fail: Sequence[tuple[str, int]] = ()) -> None:
        self.trainer = trainer
        self.fail = list(fail)
        self.frames: list[bytes] = []

    def _maybe_fail(self, what: str, step: int) -> None:
        if (what, step) in self.fail:
            self.fail.remove((what, step))
            raise Transient(f"{what} of step {step} lost")

    def forward(self, step: int, start: int, end: int, payload: CloudInput) -> bytes:
        self._maybe_fail("forward", step)
        x = list(payload) if isinstance(payload, tuple) else decode(payload)
        if isinstance(payload, bytes):
            self.frames.append(payload)
        frame = encode(self.trainer.forward(step, start, end, x))
        self.frames.append(frame)
        return frame

    def backward(self, step: int, start: int, grad: bytes) -> bytes | None:
        self._maybe_fail("backward", step)
        self.frames.append(grad)
        upstream = self.trainer.backward(step, start, decode(grad))
        frame = None if upstream is None else encode(upstream)
        if frame is not None:
            self.frames.append(frame)
        return frame

    def commit(self, step: int) -> int:
        self._maybe_fail("commit", step)
        return self.trainer.commit(step)

    def abort(self, step: int) -> int:
        return self.trainer.abort(step)


@pytest.fixture(scope="module")
def tiny() -> SplitModel:
    torch.set_num_threads(1)
    return load_model(TINY, "seed:0")


@pytest.fixture(scope="module")
def photos() -> list[bytes]:
    return [p.read_bytes() for p in sorted(SAMPLES.iterdir()) if p.suffix in {".png", ".jpg"}]


def _pair(
    model: SplitModel, spec: str, optimizer: OptimizerConfig, fail: Sequence[tuple[str, int]] = ()
) -> tuple[SideTrainer, FrameRemote, StepDriver]:
    sides = Placement.parse(spec).resolve(model.num_units)
    mobile = SideTrainer(model, Side.MOBILE, sides, optimizer, seed=7)
    remote = FrameRemote(SideTrainer(model, Side.CLOUD, sides, optimizer, seed=7), fail)
    driver = StepDriver(mobile, remote, transient=lambda exc: isinstance(exc, Transient))
    return mobile, remote, driver


def _train(
    model: SplitModel,
    spec: str,
    optimizer: OptimizerConfig,
    batches: list[tuple[list[bytes], list[int]]],
    fail: Sequence[tuple[str, int]] = (),
) -> tuple[list[float], str, FrameRemote, int]:
    mobile, remote, driver = _pair(model, spec, optimizer, fail)
    results = [driver.step(k, images, labels) for k, (images, labels) in enumerate(batches, 1)]
    traffic = sum(r.bytes_up + r.bytes_down for r in results)
    digests = whole_hash(mobile.digests(), remote.trainer.digests())
    return [r.loss for r in results], digests, remote, traffic


def _batches(photos: list[bytes], steps: int = 3) -> list[tuple[list[bytes], list[int]]]:
    return [(photos, [0, 1, 2, 3])] * steps


# M then C; M -> C -> M (the paper's training pattern); C -> M; C -> M -> C; alternating
TINY_PLACEMENTS = ["MMCCCCCC", "MMMCCMMM", "CCCCCCCM", "MCCCCCMC", "MCMCMCMC", "cloud"]


@pytest.mark.parametrize("optimizer", [SGD, ADAM], ids=["sgd", "adam"])
def test_split_training_equals_local_training_bit_for_bit(tiny, photos, optimizer) -> None:
    batches = _batches(photos)
    losses, final, _, _ = _train(tiny, "mobile", optimizer, batches)
    assert losses[-1] < losses[0]  # it learns
    assert final != tiny.weights_hash
    for spec in TINY_PLACEMENTS:
        split_losses, split_final, _, _ = _train(tiny, spec, optimizer, batches)
        assert split_losses == losses, spec
        assert split_final == final, spec


@pytest.mark.slow
def test_alexnet_with_dropout_splits_mobile_cloud_mobile_bit_for_bit(tmp_path, photos) -> None:
    torch.set_num_threads(1)
    alexnet = load_model("alexnet", "seed:0")
    folder = image_folder(tmp_path, photos)
    data = load_image_folder(folder)
    batches = [
        ([data.images[i] for i in b], [data.labels[i] for i in b])
        for b in batch_order(len(data), 2, 2, seed=1)
    ]
    local, local_hash, _, _ = _train(alexnet, "mobile", SGD, batches)
    split, split_hash, remote, traffic = _train(alexnet, "MMMCCCCCCMMM", SGD, batches)
    assert split == local and split_hash == local_hash
    # what crossed: activations and gradients only, never a parameter
    shapes = {tuple(p.shape) for p in alexnet.model.parameters() if p.dim() > 1}
    assert traffic == sum(len(f) for f in remote.frames)
    assert not any(tuple(decode(f).shape) in shapes for f in remote.frames)
    assert traffic < sum(p.numel() for p in alexnet.model.parameters())


def test_whole_hash_is_the_inference_hash_and_the_global_checkpoint_loads(
    tiny, photos, tmp_path
) -> None:
    mobile, remote, driver = _pair(tiny, "MMMCCMMM", SGD)
    assert whole_hash(mobile.digests(), remote.trainer.digests()) == tiny.weights_hash
    for step, (images, labels) in enumerate(_batches(photos, 2), 1):
        driver.step(step, images, labels)
    spec = TrainingSpec(TINY, tiny.weights_hash, "MMMCCMMM", SGD)
    mine = save_side(mobile, spec, "run1", tmp_path / "mobile")
    theirs = save_side(remote.trainer, spec, "run1", tmp_path / "cloud")
    expected = whole_hash(mobile.digests(), remote.trainer.digests())
    assert combine(mine, theirs, tmp_path / "global.pt") == expected
    assert load_model(TINY, str(tmp_path / "global.pt")).weights_hash == expected
    # the inference model the trainers copied is untouched
    assert weights_hash(tiny.model) == tiny.weights_hash
    # sides at different steps are no global checkpoint
    driver.step(3, *_batches(photos, 1)[0])
    later = save_side(mobile, spec, "run1", tmp_path / "mobile")
    with pytest.raises(TrainingStateError, match="differ in step"):
        combine(later, theirs, tmp_path / "bad.pt")


def test_a_failed_step_is_retried_and_leaves_no_trace(tiny, photos) -> None:
    batches = _batches(photos)
    clean, clean_hash, _, _ = _train(tiny, "MMMCCMMM", SGD, batches)
    # the cloud's backward of step 2 is lost once, then its commit of step 3
    faulty, faulty_hash, _, _ = _train(
        tiny, "MMMCCMMM", SGD, batches, fail=[("backward", 2), ("commit", 3)]
    )
    assert faulty == clean and faulty_hash == clean_hash


def test_a_step_that_keeps_failing_is_applied_by_neither_side(tiny, photos) -> None:
    mobile, remote, driver = _pair(tiny, "MMMCCMMM", SGD, fail=[("backward", 1)] * 3)
    before = (mobile.digests(), remote.trainer.digests())
    with pytest.raises(Transient):
        driver.step(1, photos, [0, 1, 2, 3])
    # batch-norm statistics the forward pass changed are restored; nothing is staged
    assert (mobile.digests(), remote.trainer.digests()) == before
    assert mobile.step == remote.trainer.step == 0 and remote.trainer.saved_bytes == 0
    assert all(p.grad is None for p in mobile.optimizer.param_groups[0]["params"])
    driver.step(1, photos, [0, 1, 2, 3])  # and the run goes on from there
    assert mobile.step == remote.trainer.step == 1


def test_a_commit_the_cloud_no_longer_holds_runs_the_step_again(tiny, photos) -> None:
    mobile, remote, driver = _pair(tiny, "MMMCCMMM", SGD)
    cloud = remote.trainer
    real_commit = remote.commit
    calls: list[int] = []

    def commit_after_timeout(step: int) -> int:
        if not calls:  # the cloud dropped the staged step (its timeout) before the commit
            calls.append(step)
            cloud.abort(step)
        return real_commit(step)

    remote.commit = commit_after_timeout  # type: ignore[method-assign]
    result = driver.step(1, photos, [0, 1, 2, 3])
    assert result.attempts == 2 and mobile.step == cloud.step == 1


def test_steps_go_in_order_and_a_backward_needs_its_forward(tiny, photos) -> None:
    sides = Placement.parse("MMMCCMMM").resolve(tiny.num_units)
    cloud = SideTrainer(tiny, Side.CLOUD, sides, SGD)
    x = torch.zeros(1, *tiny.units[2].output_shape[1:])
    with pytest.raises(TrainingStateError, match="out of order"):
        cloud.forward(2, 3, 5, x)
    with pytest.raises(TrainingStateError, match="not all placed on the cloud side"):
        cloud.forward(1, 2, 5, x)
    with pytest.raises(TrainingStateError, match="no forward pass from unit 3"):
        cloud.backward(1, 3, torch.zeros(1))
    cloud.forward(1, 3, 5, x)
    with pytest.raises(TrainingStateError, match="have not run backward"):
        cloud.commit(1)
    assert cloud.abort(1) == 0 and cloud.saved_bytes == 0


def test_saved_activations_are_bounded(tiny) -> None:
    sides = Placement.parse("MMMCCMMM").resolve(tiny.num_units)
    cloud = SideTrainer(tiny, Side.CLOUD, sides, SGD, max_saved_bytes=10_000)
    x = torch.zeros(4, *tiny.units[2].output_shape[1:])
    with pytest.raises(LimitError, match="exceed 10,000 bytes"):
        cloud.forward(1, 3, 5, x)
    assert cloud.saved_bytes == 0


def test_the_codec_carries_gradients_bit_exactly() -> None:
    grad = torch.randn(4, 32, 16, 16) * 1e-7
    grad[0, 0, 0, 0] = float("-0.0")
    assert torch.equal(decode(encode(grad)), grad)


def test_the_image_folder_skips_and_counts_unreadable_images(tmp_path, photos) -> None:
    data = load_image_folder(image_folder(tmp_path, photos))
    assert data.classes == ("even", "odd")
    assert len(data) == 8 and sorted(set(data.labels)) == [0, 1]
    skipped = {Path(path).name: why for path, why in data.skipped}
    assert set(skipped) == {"empty.png", "text.jpg", "truncated.jpg"}
    assert skipped["empty.png"] == "empty file"
    order = list(batch_order(len(data), 3, 5, seed=2))
    assert order == list(batch_order(len(data), 3, 5, seed=2))
    assert all(len(b) == 3 for b in order)
    assert sorted(i for b in order[:2] for i in b[:]) != []  # batches run across epochs


def test_a_commit_whose_outcome_stays_unknown_stops_the_run_unapplied_here(tiny, photos) -> None:
    mobile, _, driver = _pair(tiny, "MMMCCMMM", SGD, fail=[("commit", 1)] * 3)
    with pytest.raises(StepFailed, match="whether it applied the step is unknown"):
        driver.step(1, photos, [0, 1, 2, 3])
    assert mobile.step == 0 and mobile.in_flight is None


def test_a_units_input_wants_a_gradient_only_past_parameters_after_unit_0() -> None:
    def units(params: list[int]) -> list[UnitInfo]:
        return [
            UnitInfo(i, f"u{i}", "layer", (1,), "float32", 4, p, 0) for i, p in enumerate(params)
        ]

    assert wants_input_grad(units([0, 0, 5, 0, 3])) == [False, False, False, True, True]
    assert wants_input_grad(units([7, 0, 0])) == [False, False, False]  # unit 0's do not count
    assert wants_input_grad(units([0, 1, 0])) == [False, False, True]


def test_the_training_profiler_measures_both_passes_and_gradient_sizes(tiny, photos) -> None:
    from collabdnn.measure.training_profiler import profile_training

    profile = profile_training(tiny, Side.MOBILE, photos[:2], batch_size=2, repeats=1, warmup=0)
    units = profile.units
    assert [u.name for u in units] == [u.name for u in tiny.units]
    assert units[0].grad_bytes == 0 and all(u.grad_bytes > 0 for u in units[1:])
    assert all(u.backward_ms > 0 and u.update_ms > 0 for u in units if u.params)
    assert profile.batch_size == 2 and profile.input_bytes == len(photos[0]) + len(photos[1])
    assert weights_hash(tiny.model) == tiny.weights_hash  # measured on a copy
