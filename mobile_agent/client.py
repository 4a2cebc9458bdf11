"""A thin client of the mobile agent: classify image bytes, get results (no torch).

The ``classify`` command, the demo, tests and benchmarks all call the agent through it.
"""

from __future__ import annotations

from collections.abc import Sequence

from collabdnn.placement import Placement
from collabdnn.results import ClassifyResult
from collabdnn.transport.security import PLAINTEXT, SecurityConfig


def classify(
    agent: str,
    images: Sequence[bytes],
    placement: Placement | None = None,
    *,
    timeout: float = 60.0,
    top_k: int = 5,
    return_logits: bool = False,
    security_config: SecurityConfig = PLAINTEXT,
    codecs: dict[int, str] | None = None,
) -> list[ClassifyResult]:
    """Classify each image with one Classify call (a deadline per image)."""
    from collabdnn.services import ClassifyRequest
    from collabdnn.transport.channels import open_channel
    from collabdnn.wire.stubs import AgentStub

    results = []
    with open_channel(agent, security_config=security_config) as channel:
        stub = AgentStub(channel)
        for image in images:
            request = ClassifyRequest(
                (image,), placement, top_k, return_logits, tuple(sorted((codecs or {}).items()))
            )
            results += stub.classify(request, timeout=timeout)
    return results
