"""Whether a Docker engine answers here, asked in well under a second.

The tests in this folder build the image and run the Compose stack for real; where no
engine answers (CI, most development machines) they are skipped with the reason, so
that ``make test`` stays fast. The engine is asked directly (``GET /_ping`` on its
socket, one second at most) rather than through ``docker info``, which can hang for
its own timeout on a dead socket.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from urllib.parse import urlparse

PING_TIMEOUT_S = 1.0
DEFAULT_SOCKET = "/var/run/docker.sock"


def _ping(host: str) -> str | None:
    """None when the engine at ``host`` (a DOCKER_HOST value) answers its ping, else why."""
    url = urlparse(host)
    try:
        if url.scheme == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(PING_TIMEOUT_S)
            sock.connect(url.path)
        elif url.scheme == "tcp":
            sock = socket.create_connection(
                (url.hostname or "127.0.0.1", url.port or 2375), PING_TIMEOUT_S
            )
        else:
            return f"DOCKER_HOST={host!r}: only unix:// and tcp:// are checked here"
        with sock:
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            reply = sock.recv(4096)
    except OSError as exc:
        return f"no Docker engine answers at {host} ({exc.strerror or exc})"
    if not reply.startswith(b"HTTP/1.") or b" 200 " not in reply.split(b"\r\n", 1)[0]:
        return f"the Docker engine at {host} did not answer its ping with 200"
    return None


def why_no_engine() -> str | None:
    """None when the tests can run (engine and Compose v2 plugin), else the reason."""
    if shutil.which("docker") is None:
        return "no docker CLI on PATH; make compose-test needs a Docker engine"
    why = _ping(os.environ.get("DOCKER_HOST") or f"unix://{DEFAULT_SOCKET}")
    if why:
        return why
    try:
        done = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=10)
    except subprocess.TimeoutExpired:
        return "docker compose version did not answer in 10 s"
    if done.returncode != 0:
        return "the docker CLI has no Compose v2 plugin (docker compose)"
    return None
