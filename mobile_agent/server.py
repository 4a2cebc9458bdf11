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

from collabdnn.limits import DEFAULT_MAX_IMAGE_BYTES, DEFAULT_MAX_PIXELS
from collabdnn.placement import Placement, Plan
from collabdnn.transport.admission import Admission, max_concurrent_rpcs, pool_threads
from collabdnn.transport.channels import DEFAULT_MAX_MESSAGE_MB, ChannelPool
from collabdnn.transport.security import PLAINTEXT, SecurityConfig
from collabdnn.transport.server import Health, bind, load_in_background, new_server, start_and_run
from collabdnn.wire.proto import mobile_pb2, mobile_pb2_grpc
from mobile_agent.link_monitor import LinkMonitor, LinkSettings

log = logging.getLogger(__name__)

SERVICE_NAME = mobile_pb2.DESCRIPTOR.services_by_name["MobileAgent"].full_name
DEFAULT_PORT = 50053


@dataclass(frozen=True)
class MobileConfig:
    model: str = "alexnet"
    weights: str = "seed:0"
    device: str = "cpu"
    threads: int = 0
    cloud: str = ""  # HOST:PORT; "" = no cloud, everything runs locally
    placement: str = "mobile"  # the initial plan
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
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
    zstd_level: int = 1
    shuffle: bool = False
    workers: int = 8
    grace_s: float = 5.0
    security: SecurityConfig = PLAINTEXT  # the CLI passes what --insecure/--tls-* say
    # Link estimation, emulation, energy and scheduler reports (mobile_agent.link_monitor).
    link: LinkSettings = field(default_factory=LinkSettings)


@dataclass
class MobileServer:
    server: grpc.Server
    port: int
    health: Health
    failed: threading.Event
    pool: ChannelPool
    monitor: LinkMonitor
    stops: list[Callable[[], None]] = field(default_factory=list)  # before the pool closes


def _build(config: MobileConfig) -> MobileServer:
    from mobile_agent.cloud_client import CLOUD_CHANNEL_OPTIONS, CLOUD_IDEMPOTENT
    from mobile_agent.servicer import MobileServicer

    plan = Plan(Placement.parse(config.placement), source="command line")
    # Classify requests beyond max_concurrent are refused at once: a phone's agent that
    # queued them would only answer each later than its caller's deadline.
    admission = Admission(config.max_concurrent, name="Classify requests")
    server = new_server(
        config.max_message_mb,
        pool_threads(config.max_concurrent, config.workers),
        config.security,
        max_concurrent_rpcs(config.max_concurrent, config.workers),
    )
    servicer = MobileServicer(admission)
    mobile_pb2_grpc.add_MobileAgentServicer_to_server(servicer, server)
    health = Health(server, [SERVICE_NAME])
    port = bind(server, config.host, config.port, config.security)
    failed = threading.Event()
    # The agent's own SecurityConfig serves for its calls to the cloud too: its CA to
    # check the cloud, its certificate as the client certificate (mutual TLS), its token.
    pool = ChannelPool(
        max_message_mb=config.max_message_mb,
        idempotent=CLOUD_IDEMPOTENT,
        security_config=config.security,
        options=CLOUD_CHANNEL_OPTIONS,
    )
    monitor = LinkMonitor(config.link, channel_for=pool.get, cloud=config.cloud)
    stops: list[Callable[[], None]] = []

    def load() -> None:
        import torch

        from collabdnn.codec import CodecConfig
        from collabdnn.model.preprocess import ImageLimits, set_pillow_pixel_limit
        from collabdnn.model.split_model import load_model
        from mobile_agent.agent import AgentSettings, MobileAgent

        if config.threads:
            torch.set_num_threads(config.threads)
        set_pillow_pixel_limit(config.max_pixels)
        limits = ImageLimits(
            max_bytes=int(config.max_image_mb * 2**20), max_pixels=config.max_pixels
        )
        model = load_model(config.model, config.weights, config.device, limits)
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
        )
        agent = MobileAgent(model, plan, pool, settings, monitor)
        servicer.agent = agent
        health.set(True)
        log.info(
            "serving %s (weights %s, hash %s) on %s:%d with %d threads, plan %s",
            config.model,
            config.weights,
            model.weights_hash,
            config.host,
            port,
            torch.get_num_threads(),
            plan.placement,
        )
        if config.cloud:
            agent.cloud_usable()  # checks once, unless a request got there first
            agent.start_watch()
            stops.append(agent.stop_watch)
        else:
            log.info("no cloud configured: every unit runs locally")
        n = model.num_units
        monitor.start(uses_cloud=lambda: "C" in agent.plan.placement.resolve(n))

    load_in_background("mobile", load, failed)
    return MobileServer(server, port, health, failed, pool, monitor, stops)


def create_server(config: MobileConfig) -> tuple[grpc.Server, int]:
    """A bound, unstarted agent whose model loads in the background; and its port."""
    built = _build(config)
    return built.server, built.port


def serve(config: MobileConfig, on_bound: Callable[[str, int], None] | None = None) -> int:
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
        describe=f"{config.security.describe()} (loading {config.model})",
        cleanup=(*built.stops, built.monitor.stop, built.pool.close),
    )
