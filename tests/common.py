"""Constants and helpers shared by the test folders (import them; fixtures live in conftest).

``REPO`` is the repository root: tests find files through it, never through
``Path(__file__).parent...`` (tests move between folders), and read nothing outside it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collabdnn.testbed.procs import Service

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"
MODEL = "alexnet"
WEIGHTS = "seed:0"
COMMON = ["--model", MODEL, "--weights", WEIGHTS, "--threads", "1"]


def stop_cleanly(service: Service) -> None:
    """SIGTERM must end a service gracefully, with exit status 0."""
    assert service.stop() == 0, f"{service.name} did not stop cleanly:\n{service.log_tail()}"
