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
) -> list[ClassifyResult]:
    """Classify each image with one Classify call (a deadline per image)."""
    from collabdnn.transport.channels import open_channel
    from collabdnn.wire import serde
    from collabdnn.wire.proto import mobile_pb2, mobile_pb2_grpc

    results = []
    with open_channel(agent, security_config=security_config) as channel:
        stub = mobile_pb2_grpc.MobileAgentStub(channel)
        for image in images:
            request = mobile_pb2.ClassifyRequest(
                images=[image], top_k=top_k, return_logits=return_logits
            )
            if placement is not None:
                request.placement.CopyFrom(serde.placement_to_proto(placement))
            reply = stub.Classify(request, timeout=timeout)
            results += [serde.result_from_proto(r) for r in reply.results]
    return results
