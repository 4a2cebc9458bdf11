"""Measure one side's per-unit training costs: forward and backward times, gradient sizes.

Each batch of real photos runs through the whole chain in training mode (dropout and
batch norm as in training, on a copy of the model: the served weights and statistics
stay as they are), unit by unit with each unit's input a fresh leaf, exactly as
:class:`~collabdnn.training.side.SideTrainer` runs a step; then the loss's gradient
goes back through every unit, each backward pass timed on its own. Every activation
and every gradient that would cross the link is encoded and decoded with the link
codec, so the sizes are the real ones (gradients compress differently from
activations). Each unit's optimizer update is timed too (on the copy, one optimizer per unit, as
each side holds its own), since a side pays it for the units it holds.
"""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from collabdnn.bounds import RequestLimits
from collabdnn.codec import CodecConfig, decode, encode
from collabdnn.errors import ImageError, LimitError
from collabdnn.measure.profiler import make_batches
from collabdnn.model.split_model import SplitModel
from collabdnn.placement import Side
from collabdnn.planning.training_profiles import TrainingProfile, TrainingUnitProfile
from collabdnn.training.optim import build_optimizer
from collabdnn.training.side import wants_input_grad
from collabdnn.training.spec import OptimizerConfig, TrainingProfileQuery

MAX_PROFILE_REPEATS = 5


def _timed_codec(tensor: torch.Tensor, codec: CodecConfig) -> tuple[int, float, float]:
    tick = time.perf_counter()
    frame = encode(tensor, codec)
    encode_ms = (time.perf_counter() - tick) * 1e3
    tick = time.perf_counter()
    decode(frame)
    return len(frame), encode_ms, (time.perf_counter() - tick) * 1e3


def profile_training(
    model: SplitModel,
    side: Side,
    images: Sequence[bytes],
    batch_size: int = 1,
    repeats: int = 3,
    warmup: int = 1,
    codec: CodecConfig | None = None,
    optimizer: OptimizerConfig | None = None,
) -> TrainingProfile:
    """Per-unit training costs of ``model`` on this side for batches of ``batch_size``."""
    codec = codec or CodecConfig()
    optimizer = optimizer or OptimizerConfig()
    work = copy.deepcopy(model)
    work.model.train()
    n = work.num_units
    wants_grad = wants_input_grad(work.units)
    fwd: list[list[float]] = [[] for _ in range(n)]
    bwd: list[list[float]] = [[] for _ in range(n)]
    upd: list[list[float]] = [[] for _ in range(n)]
    act: list[list[tuple[int, float, float]]] = [[] for _ in range(n)]
    grad: list[list[tuple[int, float, float]]] = [[] for _ in range(n)]
    input_bytes: list[int] = []
    batches = make_batches(images, batch_size)
    for round_ in range(warmup + repeats):
        measured = round_ >= warmup
        for batch in batches:
            leaves: list[torch.Tensor | None] = [None] * n
            outputs: list[torch.Tensor | None] = [None] * n
            with torch.enable_grad():
                tick = time.perf_counter()
                with torch.no_grad():
                    x = work.step(0, list(batch))
                times_f = [(time.perf_counter() - tick) * 1e3]
                outputs[0] = x
                for i in range(1, n):
                    leaf = x.detach().requires_grad_(wants_grad[i])
                    tick = time.perf_counter()
                    x = work.step(i, leaf)
                    times_f.append((time.perf_counter() - tick) * 1e3)
                    leaves[i], outputs[i] = leaf, x
                logits = x.detach().requires_grad_(True)
                F.cross_entropy(logits, torch.zeros(len(batch), dtype=torch.int64)).backward()
                g: torch.Tensor | None = logits.grad
                times_b = [0.0] * n
                grads: list[torch.Tensor | None] = [None] * n  # of each unit's output
                for i in range(n - 1, 0, -1):
                    out = outputs[i]
                    if g is None or out is None or not out.requires_grad:
                        break
                    grads[i] = g
                    tick = time.perf_counter()
                    out.backward(g)
                    times_b[i] = (time.perf_counter() - tick) * 1e3
                    leaf = leaves[i]
                    g = None if leaf is None or leaf.grad is None else leaf.grad.contiguous()
            tick_update = [0.0] * n
            for i in range(1, n):  # the optimizer's update of each unit, on its own
                params = [p for p in work.modules[i].parameters() if p.grad is not None]
                if params:
                    update = build_optimizer(params, optimizer)
                    tick = time.perf_counter()
                    update.step()
                    tick_update[i] = (time.perf_counter() - tick) * 1e3
            if not measured:
                work.model.zero_grad(set_to_none=True)
                continue
            input_bytes.append(sum(len(image) for image in batch))
            for i in range(n):
                fwd[i].append(times_f[i])
                bwd[i].append(times_b[i])
                upd[i].append(tick_update[i])
                out_i = outputs[i]
                assert out_i is not None
                act[i].append(_timed_codec(out_i.detach(), codec))
                grad_i = grads[i]
                grad[i].append((0, 0.0, 0.0) if grad_i is None else _timed_codec(grad_i, codec))
            work.model.zero_grad(set_to_none=True)

    def med(values: Sequence[float]) -> float:
        return float(statistics.median(values))

    units = tuple(
        TrainingUnitProfile(
            index=i,
            name=info.name,
            kind=info.kind,
            params=info.params,
            forward_ms=med(fwd[i]),
            backward_ms=med(bwd[i]),
            update_ms=med(upd[i]),
            output_bytes=info.output_bytes * batch_size,
            encoded_bytes=int(med([a[0] for a in act[i]])),
            encode_ms=med([a[1] for a in act[i]]),
            decode_ms=med([a[2] for a in act[i]]),
            grad_bytes=int(med([g[0] for g in grad[i]])),
            grad_encode_ms=med([g[1] for g in grad[i]]),
            grad_decode_ms=med([g[2] for g in grad[i]]),
        )
        for i, info in enumerate(work.units)
    )
    return TrainingProfile(
        side=side,
        model=model.name,
        batch_size=batch_size,
        input_bytes=int(med(input_bytes)),
        units=units,
        threads=torch.get_num_threads(),
        repeats=repeats,
    )


def answer_profile_query(
    model: SplitModel, side: Side, query: TrainingProfileQuery, limits: RequestLimits
) -> TrainingProfile:
    """A ProfileTraining call's answer on either side, bounded before any work: at most
    the side's images, bytes and batch per request, 1 to ``MAX_PROFILE_REPEATS`` repeats
    (the caller checks the model and weights)."""
    if not query.images:
        raise ImageError("a training profile needs at least one image")
    limits.check_images(query.images, "ProfileTraining")
    limits.check_batch(query.batch_size, "ProfileTraining")
    if not 1 <= query.repeats <= MAX_PROFILE_REPEATS:
        raise LimitError(f"repeats must be in 1..{MAX_PROFILE_REPEATS}, got {query.repeats}")
    return profile_training(model, side, query.images, query.batch_size, query.repeats, warmup=1)
