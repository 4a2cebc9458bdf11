"""One training step over a placement, driven from the mobile side.

The forward pass runs segment by segment as in inference (images or a codec frame go
up, a frame comes down); the loss is computed on the phone, where the labels are; the
backward pass walks the segments in reverse, sending each boundary's gradient across
the link with the same lossless codec. Only activations, gradients and the images of
unit 0 cross the link, never a parameter: ``bytes_up`` and ``bytes_down`` count every
byte of them.

The update is committed in two phases, so that both sides apply step ``k`` or neither
does: after every backward pass succeeded the cloud commits first (its commit is
idempotent: a retried commit of ``k`` answers "committed ``k``"), then the phone
applies its own staged update, which cannot fail. A failure before the cloud's commit
aborts the step on both sides (staged gradients dropped, batch-norm buffers restored)
and the step is run again from the same batch; dropout masks are seeded by step and
unit, so the retry computes what the first attempt would have.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F

from collabdnn.codec import DEFAULT_MAX_BYTES, CodecConfig, decode, encode
from collabdnn.errors import TensorMismatchError, TrainingStateError
from collabdnn.placement import Side, segments
from collabdnn.training.side import SideTrainer
from collabdnn.training.spec import StepResult

log = logging.getLogger(__name__)

CloudInput = bytes | tuple[bytes, ...]


class RemoteSide(Protocol):
    """The cloud's half of a run, frame in and frame out (over gRPC, or in process)."""

    def forward(self, step: int, start: int, end: int, payload: CloudInput) -> bytes:
        """Run units ``[start, end)``; ``payload`` is a codec frame, or images at unit 0."""
        ...

    def backward(self, step: int, start: int, grad: bytes) -> bytes | None:
        """Back-propagate the frame of the segment's output gradient; the input's, or None."""
        ...

    def commit(self, step: int) -> int:
        """Apply step ``step``'s staged update; the last committed step."""
        ...

    def abort(self, step: int) -> int:
        """Drop step ``step``'s staged update; the last committed step."""
        ...


class StepFailed(TrainingStateError):
    """A step failed on every attempt (neither side applied it), or the cloud's commit
    ended with its outcome unknown (the run cannot go on)."""


@dataclass
class _Traffic:
    up: int = 0
    down: int = 0


class StepDriver:
    """Runs steps of one run on the phone's :class:`SideTrainer` and a remote cloud.

    ``transient(exc)`` says whether a failure of the cloud is worth another attempt
    (the link, a deadline, a restarting server); ``attempts`` bounds them per step.
    """

    def __init__(
        self,
        trainer: SideTrainer,
        remote: RemoteSide | None,
        codec: CodecConfig | None = None,
        attempts: int = 3,
        transient: Callable[[BaseException], bool] = lambda exc: False,
        max_frame_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.trainer = trainer
        self.remote = remote
        self.codec = codec or CodecConfig()
        self.attempts = max(1, attempts)
        self.transient = transient
        self.max_frame_bytes = max_frame_bytes
        self.segments = segments(trainer.sides)
        self.uses_cloud = any(seg.side is Side.CLOUD for seg in self.segments)
        if self.uses_cloud and remote is None:
            raise TrainingStateError("the placement puts units in the cloud but there is none")

    def step(self, step: int, images: Sequence[bytes], labels: Sequence[int]) -> StepResult:
        """Run and commit step ``step`` on one batch; StepFailed (or the first error that
        is not transient) when it cannot, with neither side having applied it."""
        begin = time.perf_counter()
        target = torch.tensor(list(labels), dtype=torch.int64)
        traffic = _Traffic()
        for attempt in range(1, self.attempts + 1):
            try:
                loss = self._forward_backward(step, list(images), target, traffic)
            except Exception as exc:
                self._abort(step)
                if not self.transient(exc) or attempt == self.attempts:
                    raise
                log.warning("step %d attempt %d failed (%s); retrying", step, attempt, exc)
                continue
            if self._commit(step):
                ms = (time.perf_counter() - begin) * 1e3
                return StepResult(step, loss, ms, traffic.up, traffic.down, attempt)
            self._abort(step)
        raise StepFailed(f"step {step} failed {self.attempts} times; neither side applied it")

    def _forward_backward(
        self, step: int, images: list[bytes], target: torch.Tensor, traffic: _Traffic
    ) -> float:
        trainer = self.trainer
        x: object = images
        for seg in self.segments:
            if seg.side is Side.MOBILE:
                x = trainer.forward(step, seg.start, seg.end, x)
                continue
            assert self.remote is not None
            payload: CloudInput
            if seg.start == 0:
                payload = tuple(images)
                traffic.up += sum(len(image) for image in images)
            else:
                assert isinstance(x, torch.Tensor)
                payload = encode(x, self.codec)
                traffic.up += len(payload)
            frame = self.remote.forward(step, seg.start, seg.end, payload)
            traffic.down += len(frame)
            x = decode(frame, self.max_frame_bytes)
            problem = trainer.model.output_problem(seg.end, len(images), x)
            if problem:
                raise TensorMismatchError(f"the cloud's reply for step {step}: {problem}")
        assert isinstance(x, torch.Tensor)
        with torch.enable_grad():
            logits = x.detach().requires_grad_(True)
            loss = F.cross_entropy(logits, target.to(logits.device))
            loss.backward()
        grad = logits.grad
        for seg in reversed(self.segments):
            if grad is None or not trainer.needs_backward(seg.end):
                break
            if seg.side is Side.MOBILE:
                grad = trainer.backward(step, seg.start, grad)
                continue
            assert self.remote is not None
            frame = encode(grad, self.codec)
            traffic.up += len(frame)
            reply = self.remote.backward(step, seg.start, frame)
            if reply is None:
                grad = None
                continue
            traffic.down += len(reply)
            grad = decode(reply, self.max_frame_bytes)
        return float(loss.item())

    def _commit(self, step: int) -> bool:
        """Phase two: the cloud first (retried: its commit is idempotent), then the phone.
        False when the cloud no longer holds the step (the step is run again)."""
        if self.uses_cloud:
            assert self.remote is not None
            for attempt in range(1, self.attempts + 1):
                try:
                    committed = self.remote.commit(step)
                except TrainingStateError:
                    return False
                except Exception as exc:
                    if not self.transient(exc) or attempt == self.attempts:
                        # the phone does not apply it; the abort reaches the cloud too
                        # when it can (then neither side has applied the step)
                        self._abort(step)
                        raise StepFailed(
                            f"step {step}: the cloud's commit failed ({exc}); whether it "
                            "applied the step is unknown, so this run stops here (resume "
                            "from the last global checkpoint)"
                        ) from exc
                    continue
                if committed != step:
                    return False
                break
        self.trainer.commit(step)
        return True

    def _abort(self, step: int) -> None:
        self.trainer.abort(step)
        if self.uses_cloud and self.remote is not None:
            try:
                self.remote.abort(step)
            except Exception as exc:  # the cloud drops it on its own after a timeout
                log.info("aborting step %d in the cloud failed: %s", step, exc)
