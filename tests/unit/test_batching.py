"""Dynamic batching in the cloud (cloud_server.batching): real AlexNet units, threads
standing for concurrent Execute handlers."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import torch

from cloud_server.batching import Batcher, BatchSettings, exact_units
from collabdnn.errors import CancelledError
from collabdnn.samples import read_images, sample_images
from collabdnn.services import BatchInfo

FEATURES = (1, 9)  # conv1 .. pool3: convolutions and pooling
HEAD = (9, 12)  # fc1 .. fc3


@pytest.fixture(scope="module")
def inputs(alexnet) -> list[torch.Tensor]:
    return [alexnet.run(0, 1, [image]) for image in read_images(sample_images())[:2]]


@pytest.fixture(scope="module")
def exact(alexnet) -> dict[int, bool]:
    return exact_units(alexnet, read_images(sample_images())[:2], (2, 4))


def run_together(batcher: Batcher, work: list[tuple[int, int, Any, Any]]) -> list[Any]:
    """Each (start, end, x, stop) in its own thread, all at once; results or errors."""
    out: list[Any] = [None] * len(work)
    gate = threading.Barrier(len(work))

    def one(i: int) -> None:
        start, end, x, stop = work[i]
        gate.wait()
        try:
            out[i] = batcher.run(start, end, x, stop)
        except Exception as exc:
            out[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(work))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return out


def test_batching_is_measured_and_only_exact_ranges_batch(alexnet, exact) -> None:
    assert set(exact) == set(range(1, alexnet.num_units))
    assert all(exact[u] for u in range(*FEATURES)), "conv and pool units batch bit for bit here"
    batcher = Batcher(alexnet, BatchSettings(max_rows=4), exact)
    assert batcher.batchable(*FEATURES) == all(exact[u] for u in range(*FEATURES))
    assert batcher.batchable(*HEAD) == all(exact[u] for u in range(*HEAD))
    assert not batcher.batchable(0, 3), "images are never batched"
    assert Batcher(alexnet, BatchSettings(max_rows=4, inexact=True), exact).batchable(*HEAD)
    assert not Batcher(alexnet, BatchSettings(), exact).batchable(*FEATURES), "off by default"


def test_concurrent_calls_run_as_one_batch_with_batch_one_bits(alexnet, exact, inputs) -> None:
    batcher = Batcher(alexnet, BatchSettings(max_rows=4, timeout_ms=2000), exact)
    xs = [inputs[i % 2] for i in range(4)]
    results = run_together(batcher, [(*FEATURES, x, None) for x in xs])
    assert batcher.batches == 1
    for x, (output, times, info) in zip(xs, results, strict=True):
        assert torch.equal(output, alexnet.run(*FEATURES, x))
        assert info == BatchInfo(requests=4, rows=4, bit_exact=True)
        assert len(times) == FEATURES[1] - FEATURES[0]


def test_a_cancelled_member_leaves_and_the_others_get_their_rows(alexnet, exact, inputs) -> None:
    batcher = Batcher(alexnet, BatchSettings(max_rows=3, timeout_ms=2000), exact)
    gone = threading.Event()

    def cancelled() -> None:
        gone.set()
        raise CancelledError("the caller went away")

    work = [
        (*FEATURES, inputs[0], None),
        (*FEATURES, inputs[1], cancelled),
        (*FEATURES, inputs[0], None),
    ]
    results = run_together(batcher, work)
    assert gone.is_set()
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(errors) == 1 and isinstance(errors[0], CancelledError)
    for (start, end, x, stop), result in zip(work, results, strict=True):
        if stop is None:
            output, _, info = result
            assert torch.equal(output, alexnet.run(start, end, x))
            assert info.bit_exact and info.requests in (2, 3)


def test_an_inexact_range_batched_on_request_says_so(alexnet, exact, inputs) -> None:
    pool3 = [alexnet.run(1, 9, x) for x in inputs]
    batcher = Batcher(alexnet, BatchSettings(max_rows=2, timeout_ms=2000, inexact=True), exact)
    results = run_together(batcher, [(*HEAD, x, None) for x in pool3])
    for x, (output, _, info) in zip(pool3, results, strict=True):
        assert info.requests == 2
        same = torch.equal(output, alexnet.run(*HEAD, x))
        assert info.bit_exact == all(exact[u] for u in range(*HEAD))
        if info.bit_exact:
            assert same
        assert torch.allclose(output, alexnet.run(*HEAD, x), rtol=1e-5, atol=1e-5)
