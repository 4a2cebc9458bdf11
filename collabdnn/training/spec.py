"""What split training's calls carry, as plain frozen data (torch-free at import).

:mod:`collabdnn.wire.serde.training` converts each to and from its message in
``training.proto``; the CLI, the agent and the cloud use these alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from collabdnn.errors import TrainingConfigError

if TYPE_CHECKING:
    from collabdnn.codec import CodecConfig

OPTIMIZERS = ("sgd", "adam")


@dataclass(frozen=True)
class OptimizerConfig:
    """``sgd`` (momentum, weight decay) or ``adam`` (betas, eps, weight decay)."""

    kind: str = "sgd"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8

    def __post_init__(self) -> None:
        if self.kind not in OPTIMIZERS:
            raise TrainingConfigError(
                f"unknown optimizer {self.kind!r}; use one of {', '.join(OPTIMIZERS)}"
            )
        numbers = (self.lr, self.momentum, self.weight_decay, self.beta1, self.beta2, self.eps)
        if not all(math.isfinite(x) and x >= 0 for x in numbers):
            raise TrainingConfigError(f"optimizer settings must be finite and >= 0: {self}")
        if self.lr <= 0:
            raise TrainingConfigError(f"the learning rate must be > 0, got {self.lr}")
        if not (self.momentum < 1 and self.beta1 < 1 and self.beta2 < 1):
            raise TrainingConfigError("momentum and betas must be < 1")


@dataclass(frozen=True)
class TrainingSpec:
    """What both sides agree on before a run: the model and the weights it starts from
    (by hash), one side per unit, the optimizer and the run's seed (dropout)."""

    model: str
    weights_hash: str
    placement: str  # one letter M/C per unit
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    seed: int = 0


@dataclass(frozen=True)
class Resume:
    """Where a run resumes: the checkpoints of run ``session_id`` at ``step``."""

    session_id: str
    step: int


@dataclass(frozen=True)
class BeginTraining:
    session_id: str
    spec: TrainingSpec
    resume: Resume | None = None


@dataclass(frozen=True)
class TrainForward:
    """Run units ``[start, end)`` of ``step``: a codec frame (``tensor``) or ``images``."""

    session_id: str
    step: int
    start: int
    end: int
    tensor: bytes | None = None
    images: tuple[bytes, ...] | None = None
    reply_codec: CodecConfig | None = None


@dataclass(frozen=True)
class TrainBackward:
    """The gradient frame of the output of the segment that began at ``start``."""

    session_id: str
    step: int
    start: int
    grad: bytes
    reply_codec: CodecConfig | None = None


@dataclass(frozen=True)
class TensorReply:
    output: bytes | None  # None: no gradient wanted upstream
    server_ms: float = 0.0


@dataclass(frozen=True)
class StepCall:
    """Commit or abort ``step``."""

    session_id: str
    step: int


@dataclass(frozen=True)
class StatusRequest:
    session_id: str
    checkpoint: bool = False
    end: bool = False


@dataclass(frozen=True)
class TrainingState:
    """One side's state: the last committed step, the digest of every state entry it
    owns (name -> SHA-256), the checkpoint it wrote (a path on its own disk)."""

    session_id: str
    step: int
    digests: tuple[tuple[str, str], ...] = ()
    checkpoint: str = ""


@dataclass(frozen=True)
class StartTraining:
    placement: str = ""  # "" = the training plan for batch_size (else the agent's plan)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    seed: int = 0
    batch_size: int = 1
    resume: Resume | None = None


@dataclass(frozen=True)
class TrainingProfileQuery:
    """Profile this side's training costs on ``images`` (the caller's model and weights)."""

    model: str
    weights_hash: str
    images: tuple[bytes, ...]
    batch_size: int = 1
    repeats: int = 1


@dataclass(frozen=True)
class TrainingRun:
    session_id: str
    model: str
    weights_hash: str
    placement: str
    placement_source: str
    labels: tuple[str, ...] = ()
    step: int = 0  # the last step done: a resumed run starts after it
    # who chose the placement: "request", "resume", "scheduler" or "agent"
    plan_source: str = ""


@dataclass(frozen=True)
class TrainStep:
    session_id: str
    step: int
    images: tuple[bytes, ...]
    labels: tuple[int, ...]


@dataclass(frozen=True)
class StepResult:
    step: int
    loss: float
    ms: float
    bytes_up: int
    bytes_down: int
    attempts: int = 1

    def to_json(self) -> dict[str, float | int]:
        return {
            "step": self.step,
            "loss": self.loss,
            "ms": round(self.ms, 3),
            "bytes_up": self.bytes_up,
            "bytes_down": self.bytes_down,
        }


@dataclass(frozen=True)
class FinishTraining:
    session_id: str
    checkpoint: bool = False


@dataclass(frozen=True)
class TrainingResult:
    step: int
    weights_hash: str  # the whole model's, combined from both sides' digests
    mobile: TrainingState
    cloud: TrainingState | None = None
    global_checkpoint: str = ""
