"""Checkpoints of a split training run: one per side, and the global one built from both.

Each side writes its own file, on its own disk: the state entries it owns, its
optimizer state and the step, with the run's identity (session, model, starting
weights hash, placement). No parameter crosses the link for this either. The *global*
checkpoint is a plain state dict of the whole model (what ``--weights FILE`` loads),
put together from a mobile and a cloud checkpoint of the same run at the same step
(:func:`combine`); its weights hash is the one the run reported, which is what both
sides of inference compare.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from collabdnn.errors import TrainingStateError
from collabdnn.model.weights import combine_digests, state_digests
from collabdnn.training.side import SideTrainer
from collabdnn.training.spec import Resume, TrainingSpec

FORMAT = "collabdnn-training-side/1"
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def side_checkpoint_name(session_id: str, side: str, step: int) -> str:
    return f"{session_id}-{side}-step{step}.pt"


def save_side(trainer: SideTrainer, spec: TrainingSpec, session_id: str, folder: Path) -> Path:
    """Write ``trainer``'s side at its last committed step into ``folder``; its path."""
    if trainer.in_flight is not None:
        raise TrainingStateError(
            f"step {trainer.in_flight} is in flight: a checkpoint is taken between steps"
        )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / side_checkpoint_name(session_id, trainer.side.value, trainer.step)
    payload = {
        "format": FORMAT,
        "session_id": session_id,
        "model": spec.model,
        "weights_hash": spec.weights_hash,
        "placement": spec.placement,
        "side": trainer.side.value,
        "step": trainer.step,
        "state": trainer.own_state(),
        "optimizer": trainer.optimizer.state_dict(),
    }
    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)  # never a half-written checkpoint under the final name
    return path


def resume_side(trainer: SideTrainer, spec: TrainingSpec, resume: Resume, folder: Path) -> None:
    """Put ``trainer`` where this side's checkpoint of run ``resume`` left it: the owned
    entries, the optimizer state and the step. The checkpoint must be of the same model,
    starting weights and placement (TrainingStateError otherwise)."""
    if not _NAME.match(resume.session_id):
        raise TrainingStateError("a session id is 1 to 64 letters, digits, '.', '_' or '-'")
    name = side_checkpoint_name(resume.session_id, trainer.side.value, resume.step)
    path = folder / name
    if not path.is_file():
        raise TrainingStateError(f"no checkpoint {name!r} on the {trainer.side.value} side")
    payload = load_side(path)
    want = {"model": spec.model, "weights_hash": spec.weights_hash, "placement": spec.placement}
    differ = [k for k, v in want.items() if payload[k] != v]
    if differ:
        raise TrainingStateError(
            f"checkpoint {name!r} is of another run: it differs in "
            + ", ".join(f"{k} ({payload[k]!r}, not {want[k]!r})" for k in differ)
        )
    trainer.restore(payload["state"], payload["optimizer"], int(payload["step"]))


def load_side(path: Path) -> dict[str, Any]:
    """A side checkpoint, checked for its format; TrainingStateError otherwise."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise TrainingStateError(f"cannot read checkpoint {str(path)!r}: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise TrainingStateError(f"{str(path)!r} is not a side checkpoint of split training")
    return payload


def combine(mobile: Path, cloud: Path | None, out: Path) -> str:
    """Write the global checkpoint (a whole-model state dict) from the two sides'
    checkpoints of one run at one step (the mobile one alone when the run placed every
    unit on the phone); returns its weights hash."""
    if cloud is None:
        part = load_side(mobile)
        if "C" in part["placement"]:
            raise TrainingStateError("this run placed units in the cloud: combine both sides")
        return _write(part["state"], out)
    parts = [load_side(mobile), load_side(cloud)]
    keys = ("session_id", "model", "weights_hash", "placement", "step")
    differ = [k for k in keys if parts[0][k] != parts[1][k]]
    if differ:
        raise TrainingStateError(
            "the two checkpoints are not of the same run at the same step: they differ in "
            + ", ".join(f"{k} ({parts[0][k]!r} vs {parts[1][k]!r})" for k in differ)
        )
    if [p["side"] for p in parts] != ["mobile", "cloud"]:
        raise TrainingStateError("combine takes the mobile side's checkpoint, then the cloud's")
    state = {**parts[0]["state"], **parts[1]["state"]}
    if len(state) != len(parts[0]["state"]) + len(parts[1]["state"]):
        raise TrainingStateError("the two checkpoints hold some of the same entries")
    return _write(state, out)


def _write(state: dict[str, torch.Tensor], out: Path) -> str:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(out)
    return combine_digests(state_digests(state))
