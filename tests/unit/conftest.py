"""Unit tests run in this process only: starting a service subprocess here is an error.

(In-process gRPC servers on port 0 are fine; a test that needs a real service belongs
in tests/integration/.)
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_service_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    from collabdnn.testbed.procs import Service

    def refuse(self: Service, *args: object, **kwargs: object) -> Service:
        raise AssertionError(
            f"a unit test started the {self.command!r} service: move it to tests/integration/"
        )

    monkeypatch.setattr(Service, "start", refuse)
