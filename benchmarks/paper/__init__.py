"""The ``collabdnn bench`` benchmark suite: the paper's experiment on real shaped links.

Why a package inside ``collabdnn`` rather than scripts under ``benchmarks/``: the
console script ``collabdnn bench`` (``make bench``) must work from an installed
package, and it re-executes itself inside a private network namespace, so its code has
to be importable there.  The parts:

1. :mod:`~benchmarks.paper.parts` ``paper``: AlexNet over 3G/4G/Wi-Fi rates shaped with
   ``tc``, the mobile side throttled by a cgroup CPU quota and one torch thread;
   mobile-only, cloud-only, best single cut and the planner's plan, per objective.
2. ``cuts``: every single cut measured, to check the planner's pick.
3. ``overhead``: each plan against its physical bound; a cloud hop against a raw gRPC
   echo and against ``torch.distributed.rpc`` (:mod:`~benchmarks.paper.torch_rpc`).
4. ``throughput``: several requests in flight against the bottleneck-stage bound.
5. ``gpu``: the cloud on CUDA, where there is one.

:mod:`~benchmarks.paper.testbed` starts the services and measures requests;
:mod:`~benchmarks.paper.report` writes the JSON, markdown tables and plots.
"""

from __future__ import annotations

from benchmarks.paper.config import PARTS, BenchConfig

__all__ = ["PARTS", "BenchConfig"]
