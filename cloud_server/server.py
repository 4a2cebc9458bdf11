"""Start the cloud server: ``create_server(config)`` for embedding, ``serve(config)`` to run.

The port is bound before the model loads, so ``--port 0`` can be announced at once;
health says NOT_SERVING until the model is loaded, then SERVING.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc

from cloud_server.batching import BatchSettings
from collabdnn.bounds import RequestLimits
from collabdnn.limits import (
    DEFAULT_MAX_ASPECT,
    DEFAULT_MAX_IMAGE_BYTES,
    DEFAULT_MAX_PIXELS,
    DEFAULT_MAX_SIDE,
)
from collabdnn.transport.admission import Admission, max_concurrent_rpcs, pool_threads
from collabdnn.transport.channels import DEFAULT_MAX_MESSAGE_MB
from collabdnn.transport.security import PLAINTEXT, SecurityConfig
from collabdnn.transport.server import BuiltServer, ServerConfig, build_server
from collabdnn.wire.proto import cloud_pb2_grpc, training_pb2_grpc
from collabdnn.wire.stubs import CLOUD_SERVICE

SERVICE_NAME = CLOUD_SERVICE
DEFAULT_PORT = 50051


@dataclass(frozen=True)
class CloudConfig:
    model: str = "alexnet"
    unit_costs: tuple[float, ...] | None = None  # merge by these (--unit-costs), not FLOPs
    weights: str = "seed:0"
    device: str = "cpu"
    threads: int = 0  # torch intra-op threads; 0 = torch's default
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    health_port: int | None = None  # plaintext grpc.health.v1 only (Kubernetes probes)
    max_message_mb: float = DEFAULT_MAX_MESSAGE_MB
    max_frame_mb: float = 512.0  # largest decoded activation accepted
    workers: int = 8  # Execute calls computing at once
    max_queue: int = 64  # Execute calls admitted (computing + waiting); more: refused
    max_image_mb: float = DEFAULT_MAX_IMAGE_BYTES / 2**20  # largest encoded image accepted
    max_pixels: int = DEFAULT_MAX_PIXELS  # largest decoded image accepted (width x height)
    max_side: int = DEFAULT_MAX_SIDE  # longest image side accepted
    max_aspect: float = DEFAULT_MAX_ASPECT  # largest longest/shortest side ratio accepted
    # images, bytes and batch of one request (collabdnn.bounds)
    limits: RequestLimits = field(default_factory=RequestLimits)
    grace_s: float = 5.0
    max_connection_age_s: float = 20.0  # clients reconnect (and re-resolve) this often
    security: SecurityConfig = PLAINTEXT  # the CLI passes what --insecure/--tls-* say
    batching: BatchSettings = field(default_factory=BatchSettings)  # off by default
    checkpoint_dir: str = ""  # where training sessions write checkpoints; "" = none


def _build(config: CloudConfig) -> BuiltServer:
    from cloud_server.servicer import CloudServicer
    from cloud_server.training import TrainingServicer, TrainingSettings
    from collabdnn.transport.probe import add_probe_service

    # A bounded queue: at most max_queue Execute calls admitted, of which `workers`
    # compute at once; one more is refused RESOURCE_EXHAUSTED at once, and the agent
    # that sent it runs those units itself (collabdnn.transport.admission). Profile calls
    # have their own admission, of one.
    admission = Admission(config.max_queue, config.workers, name="Execute calls")
    halt = threading.Event()  # set when the grace period on SIGTERM is over
    servicer = CloudServicer(
        max_frame_bytes=int(config.max_frame_mb * 1024 * 1024),
        admission=admission,
        limits=config.limits,
        halt=halt,
        batching=config.batching,
    )

    training = TrainingServicer(
        servicer.cloud,
        admission,
        TrainingSettings(checkpoint_dir=config.checkpoint_dir),
        config.limits,
        servicer.max_frame_bytes,
        halt,
        servicer.profile_admission,
    )

    def register(server: grpc.Server) -> None:
        # the agent measures the link with it when traffic is idle (capped, admitted)
        add_probe_service(server)
        cloud_pb2_grpc.add_CloudServerServicer_to_server(servicer, server)
        training_pb2_grpc.add_CloudTrainingServicer_to_server(training, server)

    def load() -> str:
        import torch

        from collabdnn.model.preprocess import ImageLimits, set_pillow_pixel_limit
        from collabdnn.model.split_model import load_model

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
        servicer.model = model
        return (
            f"{config.model} (weights {config.weights}, hash {model.weights_hash}) "
            f"with {torch.get_num_threads()} threads"
        )

    server_config = ServerConfig(
        host=config.host,
        port=config.port,
        health_port=config.health_port,
        max_message_mb=config.max_message_mb,
        workers=pool_threads(config.max_queue, config.workers),
        max_concurrent_rpcs=max_concurrent_rpcs(config.max_queue, config.workers),
        security=config.security,
        grace_s=config.grace_s,
        max_connection_age_s=config.max_connection_age_s,
    )
    return build_server(
        "cloud",
        server_config,
        services=[SERVICE_NAME],
        register=register,
        load=load,
        starting=f"loading {config.model}",
        halt=halt,
        cleanup=(training.stop,),
    )


def create_server(config: CloudConfig) -> tuple[grpc.Server, int]:
    """A bound, unstarted server whose model loads in the background; and its port."""
    return _build(config).embedded()


def serve(config: CloudConfig, on_bound: Callable[[str, int], None] | None = None) -> int:
    """Run until SIGTERM/SIGINT; ``on_bound(host, port)`` is called once the port is bound."""
    return _build(config).serve(on_bound)
