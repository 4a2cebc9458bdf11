"""Transport security for every service: TLS (optionally mutual) and a bearer token.

Services refuse to start in plaintext unless asked to explicitly (``--insecure``), and
bind to 127.0.0.1 by default. A bearer token, when configured, is checked by a server
interceptor on every call (constant-time comparison) and added by a client interceptor,
so it works the same over TLS and, when explicitly allowed, plaintext.

Configuration comes from flags, with environment variables as defaults (for Compose;
the CLI maps every option to ``COLLABDNN_<OPTION>``):

=====================  =========================  ==========================================
flag                   environment                meaning
=====================  =========================  ==========================================
``--tls-cert``         ``COLLABDNN_TLS_CERT``     this service's certificate chain (PEM)
``--tls-key``          ``COLLABDNN_TLS_KEY``      its private key (PEM)
``--tls-ca``           ``COLLABDNN_TLS_CA``       CA that signed the peers (clients: the
                                                  server's CA; servers: require client
                                                  certificates signed by it, mutual TLS)
``--token``            ``COLLABDNN_TOKEN``        bearer token required / sent on every call
``--insecure``         ``COLLABDNN_INSECURE=1``   allow plaintext
=====================  =========================  ==========================================
"""

from __future__ import annotations

import argparse
import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

# Calls that need no token: health checks come from orchestrators (Compose, Kubernetes)
# that hold no application secret, and reveal nothing but SERVING / NOT_SERVING.
PUBLIC_METHODS = frozenset({"/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch"})


class SecurityError(ValueError):
    """The security configuration is incomplete or inconsistent."""


@dataclass(frozen=True)
class SecurityConfig:
    """TLS material and token for one process (server side, client side, or both)."""

    cert: Path | None = None
    key: Path | None = None
    ca: Path | None = None
    token: str | None = None
    insecure: bool = False

    def __post_init__(self) -> None:
        if (self.cert is None) != (self.key is None):
            raise SecurityError("--tls-cert and --tls-key go together")

    def describe(self) -> str:
        mode = "plaintext (--insecure)" if self.insecure else "TLS"
        if not self.insecure and self.ca and self.cert:
            mode = "mutual TLS"
        return f"{mode}, {'token required' if self.token else 'no token'}"


def add_security_arguments(parser: argparse.ArgumentParser) -> None:
    """The security flags shared by every service and client command."""
    group = parser.add_argument_group("security")
    group.add_argument("--tls-cert", type=Path, help="certificate chain, PEM")
    group.add_argument("--tls-key", type=Path, help="private key, PEM")
    group.add_argument(
        "--tls-ca",
        type=Path,
        help="CA of the peers; on a server this requires client certificates (mutual TLS)",
    )
    group.add_argument("--token", help="bearer token checked on / sent with every call")
    group.add_argument(
        "--insecure",
        action="store_true",
        help="allow plaintext connections (otherwise TLS is required)",
    )


def config_from_args(args: argparse.Namespace) -> SecurityConfig:
    return SecurityConfig(
        cert=args.tls_cert,
        key=args.tls_key,
        ca=args.tls_ca,
        token=args.token,
        insecure=args.insecure,
    )


def _read(path: Path | None, what: str) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SecurityError(f"cannot read {what} {str(path)!r}: {exc.strerror}") from exc


# Plaintext without a token: what library callers get unless they pass a config. The
# command-line tools never fall back to it silently: they require --insecure.
PLAINTEXT = SecurityConfig(insecure=True)


# ----------------------------------------------------------------------------- server


def bind(server: grpc.Server, address: str, config: SecurityConfig) -> int:
    """Add a listening port as ``config`` says; returns the bound port (0 picks one)."""
    if config.insecure:
        port = server.add_insecure_port(address)
    else:
        if config.cert is None:
            raise SecurityError(
                "no TLS certificate configured: pass --tls-cert and --tls-key "
                "(or COLLABDNN_TLS_CERT/KEY), or --insecure to serve plaintext"
            )
        key, cert = _read(config.key, "TLS key"), _read(config.cert, "TLS certificate")
        ca = _read(config.ca, "TLS CA")
        credentials = grpc.ssl_server_credentials(
            [(key, cert)], root_certificates=ca, require_client_auth=ca is not None
        )
        port = server.add_secure_port(address, credentials)
    if port == 0:
        raise SecurityError(f"cannot listen on {address}")
    return port


class TokenAuthInterceptor(grpc.ServerInterceptor):
    """Refuses any call without ``authorization: Bearer <token>`` as UNAUTHENTICATED."""

    def __init__(self, token: str, public_methods: frozenset[str] = PUBLIC_METHODS) -> None:
        self._expected = f"Bearer {token}".encode()
        self._public = public_methods

        def deny(request: Any, context: grpc.ServicerContext) -> None:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")

        self._deny = grpc.unary_unary_rpc_method_handler(deny)

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        if handler_call_details.method in self._public:
            return continuation(handler_call_details)
        for key, value in handler_call_details.invocation_metadata or ():
            if key == "authorization":
                given = value.encode() if isinstance(value, str) else value
                if hmac.compare_digest(given, self._expected):
                    return continuation(handler_call_details)
        return self._deny


def server_interceptors(config: SecurityConfig) -> Sequence[grpc.ServerInterceptor]:
    return [TokenAuthInterceptor(config.token)] if config.token else []


# ----------------------------------------------------------------------------- client


class _TokenClientInterceptor(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    def __init__(self, token: str) -> None:
        self._metadata = ("authorization", f"Bearer {token}")

    def _details(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        metadata = [*(details.metadata or ()), self._metadata]
        return details._replace(metadata=metadata)

    def intercept_unary_unary(self, continuation, client_call_details, request):
        return continuation(self._details(client_call_details), request)

    def intercept_unary_stream(self, continuation, client_call_details, request):
        return continuation(self._details(client_call_details), request)


def open_channel(
    target: str, config: SecurityConfig, options: Sequence[tuple[str, Any]] = ()
) -> grpc.Channel:
    """A channel to ``target`` secured as ``config`` says, sending the token if any."""
    if config.insecure:
        channel = grpc.insecure_channel(target, options=list(options))
    else:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=_read(config.ca, "TLS CA"),
            private_key=_read(config.key, "TLS key"),
            certificate_chain=_read(config.cert, "TLS certificate"),
        )
        channel = grpc.secure_channel(target, credentials, options=list(options))
    if config.token:
        channel = grpc.intercept_channel(channel, _TokenClientInterceptor(config.token))
    return channel
