"""Start the mobile agent: ``create_server(config)`` for embedding, ``serve(config)`` to run.

Health is SERVING once the model is loaded; the cloud's identity is checked right
after, but a missing cloud does not keep the agent from serving (it runs locally).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc

from collabdnn.bounds import RequestLimits
from collabdnn.limits import (
    DEFAULT_MAX_ASPECT,
    DEFAULT_MAX_IMAGE_BYTES,
    DEFAULT_MAX_PIXELS,
    DEFAULT_MAX_SIDE,
)
from collabdnn.placement import AssignedPlan, Placement
from collabdnn.transport.admission import Admission, max_concurrent_rpcs, pool_threads
from collabdnn.transport.channels import DEFAULT_MAX_MESSAGE_MB, ChannelPool
from collabdnn.transport.security import PLAINTEXT, SecurityConfig
from collabdnn.transport.server import BuiltServer, ServerConfig, build_server
from collabdnn.wire.proto import mobile_pb2_grpc, training_pb2_grpc
from collabdnn.wire.stubs import MOBILE_SERVICE
from mobile_agent.heartbeat import AgentFacts, Heartbeat, HeartbeatSettings
from mobile_agent.link_monitor import LinkMonitor, LinkSettings

log = logging.getLogger(__name__)

SERVICE_NAME = MOBILE_SERVICE
DEFAULT_PORT = 50053


@dataclass(frozen=True)
class MobileConfig:
    model: str = "alexnet"
    unit_costs: tuple[float, ...] | None = None  # merge by these (--unit-costs), not FLOPs
    weights: str = "seed:0"
    device: str = "cpu"
    threads: int = 0
    cloud: str = ""  # HOST:PORT; "" = no cloud, everything runs locally
    placement: str = "mobile"  # the initial plan
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    health_port: int | None = None  # plaintext grpc.health.v1 only (Kubernetes probes)
    max_message_mb: float = DEFAULT_MAX_MESSAGE_MB
    max_frame_mb: float = 512.0
    timeout_s: float = 30.0  # deadline of each cloud call
    call_budget_factor: float = 3.0  # each call's budget: max(floor, factor x expected)
    call_budget_floor_ms: float = 250.0
    health_watch_s: float = 5.0  # idle this long: check the cloud (0 = never)
    breaker_reset_s: float = 2.0  # after a cloud failure, run locally this long, then probe
    breaker_failures: int = 1  # consecutive cloud failures that open the breaker
    max_concurrent: int = 16  # Classify requests admitted at once; more: RESOURCE_EXHAUSTED
    max_image_mb: float = DEFAULT_MAX_IMAGE_BYTES / 2**20  # largest encoded image accepted
    max_pixels: int = DEFAULT_MAX_PIXELS  # largest decoded image accepted (width x height)
    max_side: int = DEFAULT_MAX_SIDE  # longest image side accepted
    max_aspect: float = DEFAULT_MAX_ASPECT  # largest longest/shortest side ratio accepted
    # images, bytes and batch of one request (collabdnn.bounds)
    limits: RequestLimits = field(default_factory=RequestLimits)
    zstd_level: int = 1
    shuffle: bool = False
    workers: int = 8
    grace_s: float = 5.0
    security: SecurityConfig = PLAINTEXT  # the CLI passes what --insecure/--tls-* say
    # Link estimation, emulation, energy and scheduler reports (mobile_agent.link_monitor).
    link: LinkSettings = field(default_factory=LinkSettings)
    # Heartbeats to a fleet scheduler (mobile_agent.heartbeat); None = none.
    heartbeat: HeartbeatSettings | None = None
    checkpoint_dir: str = ""  # where training runs write checkpoints; "" = none


def _build(config: MobileConfig) -> BuiltServer:
    from mobile_agent.cloud_client import CLOUD_CHANNEL_OPTIONS, CLOUD_IDEMPOTENT
    from mobile_agent.servicer import MobileServicer
    from mobile_agent.training import AgentTraining, TrainerServicer, TrainingSettings

    plan = AssignedPlan(Placement.parse(config.placement), source="command line")
    # Classify requests beyond max_concurrent are refused at once: a phone's agent that
    # queued them would only answer each later than its caller's deadline.
    admission = Admission(config.max_concurrent, name="Classify requests")
    halt = threading.Event()  # set when the grace period on SIGTERM is over
    servicer = MobileServicer(admission, halt)
    # The agent's own SecurityConfig serves for its calls to the cloud too: its CA to
    # check the cloud, its certificate as the client certificate (mutual TLS), its token.
    pool = ChannelPool(
        max_message_mb=config.max_message_mb,
        idempotent=CLOUD_IDEMPOTENT,
        security_config=config.security,
        options=CLOUD_CHANNEL_OPTIONS,
    )
    monitor = LinkMonitor(config.link, channel_for=pool.get, cloud=config.cloud)
    beats = Heartbeat(config.heartbeat, pool.get, monitor) if config.heartbeat else None
    bound = threading.Event()
    port: list[int] = []  # the port bound, once build_server returned

    def scheduler() -> tuple[str, str]:
        """Where training plans come from (``--scheduler``), and this agent's id once a
        fleet scheduler took its heartbeat ("" for a single-agent scheduler)."""
        if beats is not None and monitor.fleet:
            return beats.settings.scheduler, beats.agent_id
        return config.link.scheduler or (beats.settings.scheduler if beats else ""), ""

    training = AgentTraining(
        servicer.ready.get,
        pool.get,
        TrainingSettings(checkpoint_dir=config.checkpoint_dir),
        scheduler,
    )
    trainer = TrainerServicer(training, servicer.profile_admission)

    def register(server: grpc.Server) -> None:
        mobile_pb2_grpc.add_MobileAgentServicer_to_server(servicer, server)
        training_pb2_grpc.add_MobileTrainingServicer_to_server(trainer, server)

    def load() -> str:
        import torch

        from collabdnn.codec import CodecConfig
        from collabdnn.model.preprocess import ImageLimits, set_pillow_pixel_limit
        from collabdnn.model.split_model import load_model
        from mobile_agent.agent import AgentSettings, MobileAgent

        if config.threads:
            torch.set_num_threads(config.threads)
        set_pillow_pixel_limit(config.max_pixels)
        limits = ImageLimits(
            max_bytes=int(config.max_image_mb * 2**20),
            max_pixels=config.max_pixels,
            max_side=config.max_side,
            max_aspect=config.max_aspect,
        )
        model = load_model(
            config.model, config.weights, config.device, limits, unit_costs=config.unit_costs
        )
        settings = AgentSettings(
            cloud=config.cloud,
            timeout_s=config.timeout_s,
            breaker_reset_s=config.breaker_reset_s,
            breaker_failures=config.breaker_failures,
            codec=CodecConfig(level=config.zstd_level, shuffle=config.shuffle),
            max_frame_bytes=int(config.max_frame_mb * 1024 * 1024),
            call_budget_factor=config.call_budget_factor,
            call_budget_floor_ms=config.call_budget_floor_ms,
            health_watch_s=config.health_watch_s,
            limits=config.limits,
        )
        servicer.agent = MobileAgent(model, plan, pool, settings, monitor)
        return (
            f"{config.model} (weights {config.weights}, hash {model.weights_hash}) "
            f"with {torch.get_num_threads()} threads, plan {plan.placement}"
        )

    def _stop_watch() -> None:  # before the pool closes: the watch uses its channel
        if servicer.agent is not None:
            servicer.agent.stop_watch()

    def once_serving() -> None:
        # After SERVING: a missing cloud does not keep the agent from serving locally.
        agent = servicer.agent
        assert agent is not None  # load() set it
        if config.cloud:
            agent.cloud_usable()  # checks once, unless a request got there first
            agent.start_watch()
        else:
            log.info("no cloud configured: every unit runs locally")
        monitor.start(uses_cloud=agent.uses_cloud)
        if beats is not None:
            bound.wait(timeout=10.0)
            host = "127.0.0.1" if config.host in ("", "0.0.0.0", "::") else config.host
            facts = AgentFacts(
                agent.model.name, agent.model.weights_hash, agent.model.num_units,
                lambda: agent.plan.plan_id, lambda: servicer.in_flight.served,
            )  # fmt: skip
            beats.start(facts, f"{host}:{port[0] if port else config.port}")

    server_config = ServerConfig(
        host=config.host,
        port=config.port,
        health_port=config.health_port,
        max_message_mb=config.max_message_mb,
        workers=pool_threads(config.max_concurrent, config.workers),
        max_concurrent_rpcs=max_concurrent_rpcs(config.max_concurrent, config.workers),
        security=config.security,
        grace_s=config.grace_s,
    )
    built = build_server(
        "mobile",
        server_config,
        services=[SERVICE_NAME],
        register=register,
        load=load,
        once_serving=once_serving,
        starting=f"loading {config.model}",
        cleanup=(_stop_watch, *((beats.stop,) if beats else ()), monitor.stop, pool.close),
        halt=halt,
    )
    port.append(built.port)
    bound.set()
    return built


def create_server(config: MobileConfig) -> tuple[grpc.Server, int]:
    """A bound, unstarted agent whose model loads in the background; and its port."""
    return _build(config).embedded()


def serve(config: MobileConfig, on_bound: Callable[[str, int], None] | None = None) -> int:
    """Run until SIGTERM/SIGINT; ``on_bound(host, port)`` is called once the port is bound."""
    return _build(config).serve(on_bound)
