"""Real services as subprocesses, on free ports on 127.0.0.1 only.

The standard pair (cloud + agent, alexnet, seed:0 weights, one torch thread each) is
session-scoped: starting a service costs seconds on a small machine, so it starts once.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from collabdnn.testbed.procs import Service, start_healthy
from tests.common import COMMON, stop_cleanly


@pytest.fixture(scope="session")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = start_healthy("cloud", COMMON, log_dir=tmp_path_factory.mktemp("cloud"))
    yield service
    stop_cleanly(service)


@pytest.fixture(scope="session")
def agent(cloud: Service, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = start_healthy(
        "mobile", [*COMMON, "--cloud", cloud.address], log_dir=tmp_path_factory.mktemp("mobile")
    )
    yield service
    stop_cleanly(service)
