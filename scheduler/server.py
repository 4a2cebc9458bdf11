"""Start the scheduler: ``create_server(config)`` for embedding, ``serve(config)`` to run.

The port is bound at once (``--port 0`` is announced), then the scheduler profiles both
sides (or loads their profile files) in the background. Health is NOT_SERVING until
the first plan exists, then SERVING: from then on GetPlan answers, whether or not the
agent has taken the plan yet (pushing is retried in the background and GetPlan says
``pushed``). A scheduler that cannot profile (a side never serves, a bad profile file)
exits with status 1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import grpc

from collabdnn.transport.channels import DEFAULT_MAX_MESSAGE_MB
from collabdnn.transport.security import PLAINTEXT, SecurityConfig
from collabdnn.transport.server import BuiltServer, ServerConfig, build_server
from collabdnn.wire.proto import scheduler_pb2_grpc
from collabdnn.wire.stubs import SCHEDULER_SERVICE
from scheduler.core import Scheduler, SchedulerSettings
from scheduler.fleet import FleetScheduler, FleetSettings

SERVICE_NAME = SCHEDULER_SERVICE
DEFAULT_PORT = 50052


@dataclass(frozen=True)
class SchedulerConfig:
    settings: SchedulerSettings = field(default_factory=SchedulerSettings)
    fleet: FleetSettings | None = None  # fleet mode (many agents); None = one --mobile agent
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    health_port: int | None = None  # plaintext grpc.health.v1 only (Kubernetes probes)
    max_message_mb: float = DEFAULT_MAX_MESSAGE_MB
    workers: int = 4
    grace_s: float = 5.0
    security: SecurityConfig = PLAINTEXT


def _build(config: SchedulerConfig) -> BuiltServer:
    from scheduler.servicer import SchedulerServicer

    core = (
        Scheduler(config.settings)
        if config.fleet is None
        else FleetScheduler(config.settings, config.fleet)
    )

    def register(server: grpc.Server) -> None:
        scheduler_pb2_grpc.add_SchedulerServicer_to_server(SchedulerServicer(core), server)

    def load() -> str:
        core.start()
        if isinstance(core, FleetScheduler):
            return f"fleet mode for {core.model} (objective {core.objective})"
        snap = core.snapshot()
        return f"plan {snap.plan_id} for {snap.model} (objective {snap.plan.objective})"

    server_config = ServerConfig(
        host=config.host,
        port=config.port,
        health_port=config.health_port,
        max_message_mb=config.max_message_mb,
        workers=config.workers,
        security=config.security,
        grace_s=config.grace_s,
    )
    return build_server(
        "scheduler",
        server_config,
        services=[SERVICE_NAME],
        register=register,
        load=load,
        cleanup=(core.stop,),
    )


def create_server(config: SchedulerConfig) -> tuple[grpc.Server, int]:
    """A bound, unstarted server whose profiling starts in the background; and its port."""
    return _build(config).embedded()


def serve(config: SchedulerConfig, on_bound: Callable[[str, int], None] | None = None) -> int:
    """Run until SIGTERM/SIGINT; ``on_bound(host, port)`` is called once the port is bound."""
    return _build(config).serve(on_bound)
