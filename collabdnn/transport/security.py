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
                                                  (visible to other users in ``ps``)
``--token-file``       ``COLLABDNN_TOKEN_FILE``   read the token from this file instead
``--insecure``         ``COLLABDNN_INSECURE=1``   allow plaintext
=====================  =========================  ==========================================

TLS files are checked when a server binds or a channel opens (:func:`check_tls_files`),
so a missing file, a key that does not match its certificate or a CA file without a
certificate is one :class:`SecurityError` naming the file, not a failed bind. When a
call fails in the handshake, :func:`handshake_hint` says which side of TLS is wrong
(a plaintext client against a TLS service, or the reverse; a certificate refused).
"""

from __future__ import annotations

import argparse
import hmac
import socket
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from collabdnn.errors import ConfigError

# Calls that need no token: health checks come from orchestrators (Compose, Kubernetes)
# that hold no application secret, and reveal nothing but SERVING / NOT_SERVING.
PUBLIC_METHODS = frozenset({"/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch"})


class SecurityError(ConfigError, ValueError):
    """The security configuration is incomplete or inconsistent, or a TLS file unusable."""


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
    group.add_argument(
        "--token",
        help="bearer token checked on / sent with every call (visible in ps: prefer "
        "--token-file or COLLABDNN_TOKEN)",
    )
    group.add_argument(
        "--token-file",
        type=Path,
        metavar="PATH",
        help="read the bearer token from this file (its first line), keeping it out of ps",
    )
    group.add_argument(
        "--insecure",
        action="store_true",
        help="allow plaintext connections (otherwise TLS is required)",
    )


def config_from_args(args: argparse.Namespace) -> SecurityConfig:
    token = args.token
    token_file = getattr(args, "token_file", None)
    if token_file is not None:
        if token:
            raise SecurityError("give --token or --token-file, not both")
        token = read_token(token_file)
    return SecurityConfig(
        cert=args.tls_cert,
        key=args.tls_key,
        ca=args.tls_ca,
        token=token,
        insecure=args.insecure,
    )


def read_token(path: Path) -> str:
    """The token in ``path``: its first line, without surrounding whitespace."""
    data = _read(path, "token file")
    assert data is not None
    try:
        lines = data.decode("utf-8").strip().splitlines()
    except UnicodeDecodeError as exc:
        raise SecurityError(f"token file {str(path)!r} is not UTF-8 text") from exc
    token = lines[0].strip() if lines else ""
    if not token:
        raise SecurityError(f"token file {str(path)!r} is empty")
    return token


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


def check_tls_files(config: SecurityConfig) -> None:
    """Refuse unusable TLS material with one :class:`SecurityError` naming the file.

    gRPC itself only fails later, and vaguely: a key that does not match its certificate
    makes the bind fail ("cannot bind"), a bad CA makes every handshake fail. Python's
    ``ssl`` module (OpenSSL) loads the same PEM files and says what is wrong.
    """
    if config.insecure:
        return
    if config.cert is not None and config.key is not None:
        cert, key = _read(config.cert, "TLS certificate"), _read(config.key, "TLS key")
        assert cert is not None and key is not None
        if b"-----BEGIN CERTIFICATE-----" not in cert:
            raise SecurityError(f"TLS certificate {str(config.cert)!r} holds no PEM certificate")
        if b"PRIVATE KEY-----" not in key:
            raise SecurityError(f"TLS key {str(config.key)!r} holds no PEM private key")
        if b"ENCRYPTED" in key:
            raise SecurityError(
                f"TLS key {str(config.key)!r} is encrypted; gRPC needs an unencrypted key"
            )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            context.load_cert_chain(config.cert, config.key, password=lambda: b"")
        except ssl.SSLError as exc:
            if "KEY_VALUES_MISMATCH" in str(exc):
                raise SecurityError(
                    f"TLS key {str(config.key)!r} does not match the certificate "
                    f"{str(config.cert)!r}"
                ) from exc
            raise SecurityError(
                f"cannot use TLS certificate {str(config.cert)!r} with key "
                f"{str(config.key)!r}: {exc.reason or exc}"
            ) from exc
    if config.ca is not None:
        ca = _read(config.ca, "TLS CA")
        assert ca is not None
        if b"-----BEGIN CERTIFICATE-----" not in ca:
            raise SecurityError(f"TLS CA {str(config.ca)!r} holds no PEM certificate")
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=config.ca)
        except ssl.SSLError as exc:
            raise SecurityError(
                f"TLS CA {str(config.ca)!r} holds no usable certificate: {exc.reason or exc}"
            ) from exc


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
        check_tls_files(config)
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
        check_tls_files(config)
        credentials = grpc.ssl_channel_credentials(
            root_certificates=_read(config.ca, "TLS CA"),
            private_key=_read(config.key, "TLS key"),
            certificate_chain=_read(config.cert, "TLS certificate"),
        )
        channel = grpc.secure_channel(target, credentials, options=list(options))
    if config.token:
        channel = grpc.intercept_channel(channel, _TokenClientInterceptor(config.token))
    return channel


# ----------------------------------------------------------------------------- diagnosis

# What a failed handshake looks like in a call's details, as gRPC (BoringSSL) words it.
_PLAINTEXT_PEER = ("WRONG_VERSION_NUMBER", "wrong version number", "record layer failure")
_UNTRUSTED_PEER = ("CERTIFICATE_VERIFY_FAILED", "certificate verify failed")
_NAME_MISMATCH = ("Peer name", "not in peer certificate", "hostname mismatch")

PLAINTEXT_SERVICE, TLS_SERVICE, TLS_REFUSED, TLS_ACCEPTED = "plaintext", "tls", "refused", "ok"


def handshake_hint(target: str, config: SecurityConfig, details: str) -> str | None:
    """Why a call to ``target`` failed in TLS, worded as what to do; ``None`` if it did not.

    Read from the call's ``details`` where gRPC says it (a TLS client against a
    plaintext service, an untrusted certificate). Where it only says "Socket closed" (a
    plaintext client against a TLS service; a client certificate the service refuses),
    one TLS handshake with this process's own files asks the service itself.
    """
    text = details or ""
    if "Connection refused" in text or "DNS resolution failed" in text:
        return None  # nothing listening: not a TLS matter
    if not config.insecure:
        if any(marker in text for marker in _PLAINTEXT_PEER):
            return (
                "the service is plaintext: pass --insecure if it is meant to be (and "
                "check the address)"
            )
        if any(marker in text for marker in _UNTRUSTED_PEER):
            return (
                f"the service's certificate is not signed by the CA "
                f"{str(config.ca) if config.ca else '(system roots)'!s}: pass the CA "
                "that signed it with --tls-ca"
            )
        if any(marker in text for marker in _NAME_MISMATCH):
            return "the service's certificate does not name the address used: check --tls-ca/host"
    if "Socket closed" not in text and "handshake" not in text.lower():
        return None
    verdict = probe_tls(target, config)
    if config.insecure and verdict in (TLS_SERVICE, TLS_REFUSED, TLS_ACCEPTED):
        return (
            "the service uses TLS: pass --tls-ca CA.pem (and --tls-cert/--tls-key if it "
            "requires client certificates) instead of --insecure"
        )
    if not config.insecure and verdict == PLAINTEXT_SERVICE:
        return "the service is plaintext: pass --insecure if it is meant to be"
    if not config.insecure and verdict == TLS_REFUSED:
        return _refused(config)
    return None


def tls_refusal(target: str, config: SecurityConfig, details: str = "") -> str | None:
    """Why the TLS service at ``target`` refuses this process's certificate; else ``None``.

    For a caller that saw a call fail as UNAVAILABLE (or miss its deadline while waiting
    for a connection): one TLS handshake tells a refusal (no client certificate, or one
    from a CA the service does not trust) from a service that is down.
    """
    if config.insecure or "Connection refused" in details:
        return None
    return _refused(config) if probe_tls(target, config) == TLS_REFUSED else None


def _refused(config: SecurityConfig) -> str:
    if config.cert is None:
        return (
            "the service requires a client certificate (mutual TLS): pass "
            "--tls-cert and --tls-key signed by its CA"
        )
    return (
        f"the service refused this client's certificate {str(config.cert)!r}: it must "
        "be signed by the CA the service trusts (its --tls-ca)"
    )


def describe_failure(target: str, config: SecurityConfig, code: str, details: str) -> str:
    """``CODE: details`` of a failed call, and on a second line a TLS hint when one applies."""
    text = f"{code}: {details}"
    hint = handshake_hint(target, config, details) if code == "UNAVAILABLE" else None
    return f"{text}\nhint: {hint}" if hint else text


def probe_tls(target: str, config: SecurityConfig, timeout: float = 2.0) -> str | None:
    """Ask ``target`` with one TLS handshake how it treats this process's TLS files.

    Returns :data:`PLAINTEXT_SERVICE` (it does not speak TLS), :data:`TLS_REFUSED` (it
    speaks TLS and rejected the handshake or this client's certificate),
    :data:`TLS_ACCEPTED`, :data:`TLS_SERVICE` (TLS, verdict unknown) or ``None`` when it
    cannot tell (unreachable, an address it cannot parse). The service's own certificate
    is not checked here: only what the service says about us.
    """
    address = _host_port(target)
    if address is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    if not config.insecure and config.cert is not None and config.key is not None:
        try:
            context.load_cert_chain(config.cert, config.key, password=lambda: b"")
        except (OSError, ssl.SSLError):
            return None
    try:
        raw = socket.create_connection(address, timeout=timeout)
    except OSError:
        return None
    with raw:
        try:
            tls = context.wrap_socket(raw, server_hostname=address[0])
        except ssl.SSLEOFError:
            return None  # closed mid-handshake: cannot tell
        except ssl.SSLError as exc:
            reason = f"{exc.reason or ''} {exc}".upper()
            if "WRONG_VERSION_NUMBER" in reason or "RECORD_LAYER_FAILURE" in reason:
                return PLAINTEXT_SERVICE
            return TLS_REFUSED if "ALERT" in reason else TLS_SERVICE
        except OSError:
            return None
        with tls:
            # TLS 1.3: the service judges our certificate after the handshake. An
            # accepting gRPC service then sends its HTTP/2 SETTINGS; a refusing one
            # closes the connection (gRPC) or sends an alert (others).
            try:
                data = tls.recv(1)
            except ssl.SSLError as exc:
                return (
                    TLS_REFUSED if "ALERT" in f"{exc.reason or ''} {exc}".upper() else TLS_SERVICE
                )
            except OSError:  # a timeout: TLS, but no verdict
                return TLS_SERVICE
    return TLS_ACCEPTED if data else TLS_REFUSED


def _host_port(target: str) -> tuple[str, int] | None:
    """``HOST:PORT`` or ``[V6]:PORT`` (a scheme such as ``dns:///`` or ``ipv4:`` dropped)."""
    for prefix in ("dns:///", "dns:", "ipv4:", "ipv6:"):
        if target.startswith(prefix):
            target = target[len(prefix) :].split(",")[0]
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]") or "127.0.0.1", int(port)
