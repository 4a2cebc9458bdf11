"""Bounded work per request, in process: limits checked before any work, stop checks at
unit boundaries, admission that lets abandoned requests go, replies judged by shape.

The same behaviour against real services is in tests/integration/test_abuse.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import grpc
import pytest
import torch

from cloud_server.cloud import Cloud
from collabdnn.bounds import RequestLimits, stop_check
from collabdnn.codec import CodecConfig, encode
from collabdnn.errors import (
    CancelledError,
    CodecError,
    DeadlineError,
    ImageError,
    LimitError,
    ShuttingDownError,
    TensorMismatchError,
    WorkStopped,
)
from collabdnn.model.split_model import SplitModel
from collabdnn.services import ExecuteRequest, Load
from collabdnn.transport.admission import Admission
from collabdnn.wire.status import code_for
from tests.badinputs import zstd_bomb, zstd_frame
from tests.common import tiny_png


class _Context:
    """What a stop check asks of a servicer context: its time left, and a callback when
    the call terminates (run when ``active`` turns false, as gRPC runs it on cancel)."""

    def __init__(self, remaining: float | None = 10.0, active: bool = True) -> None:
        self.remaining, self._active = remaining, active
        self.callbacks: list[Callable[[], None]] = []

    def time_remaining(self) -> float | None:
        return self.remaining

    def add_callback(self, callback: Callable[[], None]) -> bool:
        if not self._active:
            return False
        self.callbacks.append(callback)
        return True

    @property
    def active(self) -> bool:
        return self._active

    @active.setter
    def active(self, value: bool) -> None:
        self._active = value
        if not value:
            for callback in self.callbacks:
                callback()


class _Stopper:
    """A stop check that lets ``allow`` units start, then stops the work."""

    def __init__(self, allow: int) -> None:
        self.allow, self.calls = allow, 0

    def __call__(self) -> None:
        self.calls += 1
        if self.calls > self.allow:
            raise DeadlineError("deadline passed")


# --- limits ----------------------------------------------------------------------------


def test_request_limits_refuse_images_bytes_and_batch() -> None:
    limits = RequestLimits(max_images=2, max_request_bytes=100, max_batch=4)
    limits.check_images([b"x" * 50, b"y" * 50], "Classify")
    with pytest.raises(LimitError, match="holds 3 images; at most 2"):
        limits.check_images([b"x"] * 3, "Classify")
    with pytest.raises(LimitError, match="101 bytes of images; at most 100"):
        limits.check_images([b"x" * 51, b"y" * 50], "Classify")
    with pytest.raises(LimitError, match="at most 1 are accepted"):
        limits.check_images([b"x", b"y"], "Execute", max_images=1)
    limits.check_batch(4, "Execute")
    with pytest.raises(LimitError, match="batch 5; at most 4"):
        limits.check_batch(5, "Execute")
    with pytest.raises(ValueError):
        RequestLimits(max_batch=0)


def test_each_stopped_work_has_its_own_status_code() -> None:
    assert code_for(LimitError("x")) == grpc.StatusCode.INVALID_ARGUMENT
    assert code_for(CancelledError("x")) == grpc.StatusCode.CANCELLED
    assert code_for(DeadlineError("x")) == grpc.StatusCode.DEADLINE_EXCEEDED
    assert code_for(ShuttingDownError("x")) == grpc.StatusCode.UNAVAILABLE


def test_stop_check_follows_the_deadline_the_caller_and_the_server() -> None:
    stop_check(_Context())()  # a live call with time left: carry on
    stop_check(_Context(remaining=None))()  # no deadline
    with pytest.raises(DeadlineError):
        stop_check(_Context(remaining=0.0))()  # type: ignore[arg-type]
    with pytest.raises(CancelledError):
        stop_check(_Context(active=False))()  # type: ignore[arg-type]
    halt = threading.Event()
    check = stop_check(_Context(), halt)  # type: ignore[arg-type]
    check()
    halt.set()
    with pytest.raises(ShuttingDownError):
        check()


# --- stopping at unit boundaries -----------------------------------------------------------


def test_run_timed_stops_at_the_next_unit_boundary(alexnet: SplitModel) -> None:
    x = torch.zeros(1, *alexnet.units[0].output_shape[1:])
    stopper = _Stopper(allow=3)
    with pytest.raises(DeadlineError):
        alexnet.run_timed(1, alexnet.num_units, x, stopper)
    assert stopper.calls == 4  # three units ran, the fourth never started
    _, times = alexnet.run_timed(1, alexnet.num_units, x, _Stopper(allow=100))
    assert len(times) == alexnet.num_units - 1


def test_images_of_a_batch_are_checked_one_by_one_with_the_same_result(
    alexnet: SplitModel, cat_bytes: bytes
) -> None:
    images = [cat_bytes, tiny_png(64), cat_bytes]
    whole, _ = alexnet.run_timed(0, 1, images)
    one_by_one, _ = alexnet.run_timed(0, 1, images, _Stopper(allow=100))
    assert torch.equal(whole, one_by_one)
    stopper = _Stopper(allow=2)  # unit 0 starts, then the first image; not the second
    with pytest.raises(WorkStopped):
        alexnet.run_timed(0, 1, images, stopper)
    assert stopper.calls == 3


def test_profile_stops_between_units(alexnet: SplitModel, cat_bytes: bytes) -> None:
    from collabdnn.measure.profiler import profile_model

    stopper = _Stopper(allow=20)
    with pytest.raises(DeadlineError):
        profile_model(alexnet, "cloud", [cat_bytes], repeats=50, warmup=1, should_stop=stopper)
    assert stopper.calls == 21


def test_a_decoder_running_out_of_memory_is_the_images_fault(
    alexnet: SplitModel, cat_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An image whose decoding exhausts memory (Pillow raising MemoryError, as a 40 MP
    strip did) is refused as that request's fault (INVALID_ARGUMENT): were it an
    internal error, a cloud meeting it would open the agent's breaker for everyone."""

    def exhausted(data: bytes) -> None:
        raise MemoryError

    monkeypatch.setattr(alexnet.preprocess, "crop_pixels", exhausted)
    with pytest.raises(ImageError, match="more memory"):
        alexnet.run_timed(0, 2, cat_bytes)
    monkeypatch.setattr(alexnet.preprocess, "crop_pixels", lambda data: 1 / 0)
    with pytest.raises(ImageError, match="ZeroDivisionError"):
        alexnet.run_timed(0, 2, [cat_bytes, cat_bytes], _Stopper(allow=100))


# --- the cloud: bounded before it starts -----------------------------------------------


def _execute(alexnet: SplitModel, start: int, **fields: object) -> ExecuteRequest:
    values: dict[str, object] = {
        "model": alexnet.name,
        "weights_hash": alexnet.weights_hash,
        "start": start,
        "end": alexnet.num_units,
        "reply_codec": CodecConfig(),
    }
    values.update(fields)
    return ExecuteRequest(**values)  # type: ignore[arg-type]


def test_the_cloud_judges_a_frame_by_its_header_before_decoding(alexnet: SplitModel) -> None:
    cloud = Cloud(alexnet, limits=RequestLimits(max_batch=4))
    # A header claiming 200 x 3 x 224 x 224 floats (120 MB) ahead of 1 MB of zstd that
    # is not even that size: refused for the batch, so nothing was decompressed.
    huge = zstd_frame((200, 3, 224, 224), zstd_bomb(1 << 20))
    with pytest.raises(LimitError, match="batch 200; at most 4"):
        cloud.check(_execute(alexnet, 1, tensor=huge))
    wrong = zstd_frame((1, 3, 225, 224), b"")
    with pytest.raises(TensorMismatchError, match=r"takes shape \['B', 3, 224, 224\]"):
        cloud.check(_execute(alexnet, 1, tensor=wrong))
    with pytest.raises(CodecError):
        cloud.check(_execute(alexnet, 1, tensor=b"CDNF"))
    with pytest.raises(LimitError, match="holds 5 images; at most 4"):
        cloud.check(_execute(alexnet, 0, images=(tiny_png(),) * 5))
    batch = torch.zeros(4, *alexnet.units[7].output_shape[1:])
    reply = cloud.execute(_execute(alexnet, 8, tensor=encode(batch)), Load)
    assert len(reply.units) == alexnet.num_units - 8


def test_the_cloud_stops_when_asked(alexnet: SplitModel) -> None:
    cloud = Cloud(alexnet)
    frame = encode(torch.zeros(1, *alexnet.units[0].output_shape[1:]))
    stopper = _Stopper(allow=2)
    with pytest.raises(DeadlineError):
        cloud.execute(_execute(alexnet, 1, tensor=frame), Load, should_stop=stopper)
    assert stopper.calls == 3


# --- replies ---------------------------------------------------------------------------


def test_output_problem_names_shape_dtype_and_non_finite_values(alexnet: SplitModel) -> None:
    end = alexnet.num_units
    good = torch.zeros(1, 1000)
    assert alexnet.output_problem(end, 1, good) == ""
    assert "shaped [1, 5], not [1, 1000]" in alexnet.output_problem(end, 1, torch.zeros(1, 5))
    assert "shaped [2, 1000]" in alexnet.output_problem(end, 1, torch.zeros(2, 1000))
    assert "float64, not float32" in alexnet.output_problem(end, 1, good.double())
    nan = good.clone()
    nan[0, 3] = float("nan")
    assert "NaN" in alexnet.output_problem(end, 1, nan)
    assert "NaN" in alexnet.output_problem(end, 1, good + float("inf"))
    assert "not a tensor" in alexnet.output_problem(end, 1, b"x")
    assert alexnet.output_problem(4, 2, torch.zeros(2, *alexnet.units[3].output_shape[1:])) == ""


# --- admission -------------------------------------------------------------------------


class _Aborted(Exception):
    pass


class _AbortingContext(_Context):
    def abort(self, code: grpc.StatusCode, details: str) -> None:
        raise _Aborted(code, details)


def test_a_waiting_request_whose_caller_left_frees_its_place() -> None:
    admission = Admission(2, 1)
    running = threading.Event()
    release = threading.Event()

    def first() -> None:
        with admission.admit(_AbortingContext(), "first"):  # type: ignore[arg-type]
            running.set()
            release.wait(10)

    thread = threading.Thread(target=first)
    thread.start()
    assert running.wait(10)
    gone = _AbortingContext()
    check = stop_check(gone)  # type: ignore[arg-type]
    outcome: list[BaseException] = []

    def second() -> None:
        try:
            with admission.admit(gone, "second", check):  # type: ignore[arg-type]
                outcome.append(AssertionError("ran although its caller had left"))
        except WorkStopped as exc:
            outcome.append(exc)

    waiter = threading.Thread(target=second)
    waiter.start()
    time.sleep(0.2)
    assert admission.admitted == 2  # it waits for the one running place
    gone.active = False  # the caller cancels
    waiter.join(10)
    assert isinstance(outcome[0], CancelledError)
    assert admission.admitted == 1  # its place is free again, without having run
    release.set()
    thread.join(10)
    assert admission.admitted == 0
