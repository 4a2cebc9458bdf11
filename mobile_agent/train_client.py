"""A thin client of the agent's training calls (no torch): start, one step per batch, finish.

``collabdnn train``, tests and benchmarks drive a run through :func:`train`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence

from collabdnn.training.spec import (
    FinishTraining,
    StartTraining,
    StepResult,
    TrainingResult,
    TrainingRun,
    TrainStep,
)
from collabdnn.transport.security import PLAINTEXT, SecurityConfig

Batch = tuple[Sequence[bytes], Sequence[int]]


def train(
    agent: str,
    batches: Iterable[Batch],
    start: StartTraining,
    *,
    timeout: float = 120.0,
    checkpoint: bool = False,
    checkpoint_every: int = 0,
    security_config: SecurityConfig = PLAINTEXT,
    on_start: Callable[[TrainingRun], None] | None = None,
    on_step: Callable[[StepResult], None] | None = None,
) -> tuple[TrainingRun, list[StepResult], TrainingResult]:
    """Run every batch as one step (a deadline of ``timeout`` seconds per call); a
    resumed run (``start.resume``) numbers its steps on from the checkpoint's. With
    ``checkpoint_every`` both sides checkpoint every that many steps; with
    ``checkpoint`` at the end. The run is finished on the agent (its cloud session
    closed) even when a step fails."""
    from collabdnn.transport.channels import open_channel
    from collabdnn.wire.training_stubs import TrainerStub

    results: list[StepResult] = []
    with open_channel(agent, security_config=security_config) as channel:
        stub = TrainerStub(channel)
        run = stub.start(start, timeout=timeout)
        if on_start is not None:
            on_start(run)
        finished = False
        try:
            for done, (images, labels) in enumerate(batches, start=1):
                call = TrainStep(run.session_id, run.step + done, tuple(images), tuple(labels))
                result = stub.step(call, timeout=timeout)
                results.append(result)
                if on_step is not None:
                    on_step(result)
                if checkpoint_every and done % checkpoint_every == 0:
                    stub.checkpoint(FinishTraining(run.session_id, True), timeout=timeout)
            final = stub.finish(FinishTraining(run.session_id, checkpoint), timeout=timeout)
            finished = True
        finally:
            if not finished:  # free the run; the step's own error is what the caller sees
                with contextlib.suppress(Exception):
                    stub.finish(FinishTraining(run.session_id), timeout=timeout)
    return run, results, final
