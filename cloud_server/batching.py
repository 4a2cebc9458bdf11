"""Dynamic batching in the cloud (opt-in: ``--batch-max N --batch-timeout-ms T``).

Why: many phones offloading the same unit range send the cloud one image each; a
batch of them costs less per image than each alone (one pass over each layer's
weights). Execute calls for the same range ``[start, end)`` that arrive within
``timeout_ms`` of the first run as one batch of at most ``max_rows`` rows; each gets
its own rows of the output back.

**Bit-exactness.** Batched kernels may sum in another order: on this machine's CPU
the convolution and pooling units of AlexNet give the same bits at every batch size,
the fully connected ones do not (differences of 1e-8 to 1e-7). So at start the cloud
measures, unit by unit on the sample photos' real activations, whether batch sizes 2
and ``max_rows`` give each row bit for bit what batch 1 gives (:func:`exact_units`);
only ranges made of such units are batched, unless ``inexact`` (``--batch-inexact``)
allows the rest. Every reply says how many requests shared its batch and whether its
output is bit-exact to a batch-1 run (``ExecuteReply.batching``).

**Deadlines and cancellation.** The first request of a batch runs it (in its own
handler thread); the others wait for their rows, checking their own deadline and
cancellation all the while: one that gives up leaves at once with its own status and
is dropped from the batch (before it starts, or at the next unit boundary after). The
batch stops only when every member has gone; a member that gives up never fails the
others, the runner included (its own request is then just dropped).

Images (``start == 0``) are never batched: preprocessing is per image anyway.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from collabdnn.bounds import StopCheck
from collabdnn.errors import CancelledError, WorkStopped
from collabdnn.services import BatchInfo

if TYPE_CHECKING:
    from collabdnn.model.split_model import SplitModel

log = logging.getLogger(__name__)

__all__ = ["BatchSettings", "Batcher", "exact_units"]


@dataclass(frozen=True)
class BatchSettings:
    max_rows: int = 1  # 1 = no batching (the default)
    timeout_ms: float = 2.0  # how long the first request waits for others
    inexact: bool = False  # also batch ranges whose outputs differ from batch 1

    @property
    def enabled(self) -> bool:
        return self.max_rows > 1


def exact_units(
    model: SplitModel, images: Sequence[bytes], sizes: Sequence[int]
) -> dict[int, bool]:
    """For each layer unit (1..N-1): whether, fed the same rows, a batch of each size in
    ``sizes`` gives every row bit for bit what batch 1 gives. Measured on the real
    activations of ``images`` (the sample photos), unit by unit in isolation."""
    import torch

    singles = [model.run(0, 1, [image]) for image in images]
    exact: dict[int, bool] = {}
    with torch.inference_mode():
        for unit in range(1, model.num_units):
            outputs = [model.step(unit, x) for x in singles]
            same = True
            for size in sizes:
                rows = [singles[i % len(singles)] for i in range(size)]
                batched = model.step(unit, torch.cat(rows))
                same = same and all(
                    torch.equal(batched[i : i + 1], outputs[i % len(outputs)]) for i in range(size)
                )
            exact[unit] = same
            singles = outputs
    return exact


@dataclass(eq=False)
class _Member:
    x: Any
    rows: int
    stop: StopCheck | None
    done: threading.Event = field(default_factory=threading.Event)
    output: Any = None
    error: BaseException | None = None
    gone: bool = False


@dataclass(eq=False)
class _Group:
    members: list[_Member] = field(default_factory=list)
    rows: int = 0
    full: threading.Event = field(default_factory=threading.Event)


class Batcher:
    """Groups Execute calls by unit range and runs each group as one batch."""

    def __init__(
        self, model: SplitModel, settings: BatchSettings, exact: dict[int, bool] | None = None
    ) -> None:
        self.model = model
        self.settings = settings
        self.exact = exact or {}
        self._lock = threading.Lock()
        self._open: dict[tuple[int, int], _Group] = {}
        self.batches = 0  # batches of two requests or more (tests, logs)

    def bit_exact(self, start: int, end: int) -> bool:
        return all(self.exact.get(unit, False) for unit in range(max(1, start), end))

    def batchable(self, start: int, end: int) -> bool:
        return (
            self.settings.enabled
            and start > 0
            and (self.settings.inexact or self.bit_exact(start, end))
        )

    def run(
        self, start: int, end: int, x: Any, should_stop: StopCheck | None = None
    ) -> tuple[Any, list[float], BatchInfo]:
        """Units ``[start, end)`` on ``x``, batched with others when allowed; returns
        the output (this request's rows), the batch's unit times and what was batched."""
        import torch

        rows = int(x.shape[0]) if isinstance(x, torch.Tensor) else 1
        if not self.batchable(start, end) or rows >= self.settings.max_rows:
            output, times = self.model.run_timed(start, end, x, should_stop)
            return output, times, BatchInfo(1, rows, True)
        member = _Member(x, rows, should_stop)
        with self._lock:
            key = (start, end)
            group = self._open.get(key)
            leader = group is None or group.rows + rows > self.settings.max_rows
            if leader:
                group = _Group()
                self._open[key] = group
            assert group is not None
            group.members.append(member)
            group.rows += rows
            if group.rows >= self.settings.max_rows:
                self._close(key, group)
        if leader:
            return self._lead(start, end, key, group, member)
        return self._follow(member)

    def _close(self, key: tuple[int, int], group: _Group) -> None:
        if self._open.get(key) is group:
            del self._open[key]
        group.full.set()

    def _follow(self, member: _Member) -> tuple[Any, list[float], BatchInfo]:
        while not member.done.wait(0.005):
            if member.stop is not None:
                try:
                    member.stop()
                except WorkStopped:
                    member.gone = True  # the batch leaves this member's rows alone
                    raise
        if member.error is not None:
            raise member.error
        return member.output

    def _lead(
        self, start: int, end: int, key: tuple[int, int], group: _Group, me: _Member
    ) -> tuple[Any, list[float], BatchInfo]:
        import torch

        group.full.wait(self.settings.timeout_ms / 1e3)
        with self._lock:
            self._close(key, group)
            members = list(group.members)
        live = [m for m in members if not m.gone]

        def should_stop() -> None:
            """Stop only when every member has gone; drop each that has."""
            for member in live:
                if member.gone or member.stop is None:
                    continue
                try:
                    member.stop()
                except WorkStopped as exc:
                    member.gone, member.error = True, exc
            if all(m.gone for m in live):
                if me.error is not None:
                    raise me.error
                raise CancelledError("every request of the batch has gone; work stopped")

        try:
            batch = torch.cat([m.x for m in live]) if len(live) > 1 else me.x
            output, times = self.model.run_timed(start, end, batch, should_stop)
        except BaseException as exc:  # every member shares the batch's failure
            for member in members:
                if member is not me:
                    member.error = member.error or exc
                    member.done.set()
            raise
        info = BatchInfo(
            len(live), sum(m.rows for m in live), len(live) == 1 or self.bit_exact(start, end)
        )
        if len(live) > 1:
            self.batches += 1
            log.debug(
                "batch of %d requests (%d rows) for [%d, %d)", len(live), info.rows, start, end
            )
        row = 0
        for member in live:
            member.output = (output[row : row + member.rows], times, info)
            row += member.rows
            if member is not me:
                member.done.set()
        if me.gone and me.error is not None:
            raise me.error
        assert me.output is not None
        return me.output


def describe(exact: dict[int, bool], model: SplitModel) -> str:
    """One line for the log: which units batch bit for bit."""
    yes = [model.units[u].name for u, ok in sorted(exact.items()) if ok]
    no = [model.units[u].name for u, ok in sorted(exact.items()) if not ok]
    return f"bit-exact when batched: {', '.join(yes) or 'none'}; not: {', '.join(no) or 'none'}"
