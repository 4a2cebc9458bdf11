"""Start the scheduler: ``create_server(config)`` for embedding, ``serve(config)`` to run.

The port is bound at once (``--port 0`` is announced), then the scheduler profiles both
sides (or loads their profile files) in the background. Health is NOT_SERVING until
the first plan exists, then SERVING: from then on GetPlan answers, whether or not the
agent has taken the plan yet (pushing is retried in the background and GetPlan says
``pushed``). A scheduler that cannot profile (a side never serves, a bad profile file)
exits with status 1.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc

from collabdnn.transport.channels import DEFAULT_MAX_MESSAGE_MB
from collabdnn.transport.security import PLAINTEXT, SecurityConfig
from collabdnn.transport.server import Health, bind, load_in_background, new_server, start_and_run
from collabdnn.wire.proto import scheduler_pb2_grpc
from collabdnn.wire.stubs import SCHEDULER_SERVICE
from scheduler.core import Scheduler, SchedulerSettings

log = logging.getLogger(__name__)

SERVICE_NAME = SCHEDULER_SERVICE
DEFAULT_PORT = 50052


@dataclass(frozen=True)
class SchedulerConfig:
    settings: SchedulerSettings = field(default_factory=SchedulerSettings)
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    max_message_mb: float = DEFAULT_MAX_MESSAGE_MB
    workers: int = 4
    grace_s: float = 5.0
    security: SecurityConfig = PLAINTEXT


@dataclass
class SchedulerServer:
    server: grpc.Server
    port: int
    health: Health
    failed: threading.Event
    core: Scheduler


def _build(config: SchedulerConfig) -> SchedulerServer:
    from scheduler.servicer import SchedulerServicer

    server = new_server(config.max_message_mb, config.workers, config.security)
    core = Scheduler(config.settings)
    scheduler_pb2_grpc.add_SchedulerServicer_to_server(SchedulerServicer(core), server)
    health = Health(server, [SERVICE_NAME])
    port = bind(server, config.host, config.port, config.security)
    failed = threading.Event()

    def load() -> None:
        core.start()
        health.set(True)
        snap = core.snapshot()
        log.info(
            "serving plan %s for %s on %s:%d (objective %s)",
            snap.plan_id,
            snap.model,
            config.host,
            port,
            snap.plan.objective,
        )

    load_in_background("scheduler", load, failed)
    return SchedulerServer(server, port, health, failed, core)


def create_server(config: SchedulerConfig) -> tuple[grpc.Server, int]:
    """A bound, unstarted server whose profiling starts in the background; and its port."""
    built = _build(config)
    return built.server, built.port


def serve(config: SchedulerConfig, on_bound: Callable[[str, int], None] | None = None) -> int:
    """Run until SIGTERM/SIGINT; ``on_bound(host, port)`` is called once the port is bound."""
    built = _build(config)
    return start_and_run(
        built.server,
        built.port,
        built.health,
        built.failed,
        host=config.host,
        grace_s=config.grace_s,
        on_bound=on_bound,
        describe=config.security.describe(),
        cleanup=(built.core.stop,),
    )
