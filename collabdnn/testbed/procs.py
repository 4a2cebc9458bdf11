"""Start CollabDNN services as subprocesses, learn their ports, wait for health, stop them.

Used by the demo, the integration tests and (later) the scheduler demo. A service is
started as ``python -m collabdnn COMMAND --port 0 ...``; it prints ``listening on
HOST:PORT`` once bound, which is read from its stdout. Its stderr (the logs) goes to a
file, so a failure can show what the service said. Stopping sends SIGTERM, waits, and
kills only after a timeout.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from collabdnn.transport.channels import check_health
from collabdnn.transport.security import PLAINTEXT, SecurityConfig

log = logging.getLogger(__name__)

_LISTENING = re.compile(r"^listening on (\S+):(\d+)\s*$")
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]


def security_argv(config: SecurityConfig) -> list[str]:
    """The command-line flags that give a child process ``config``."""
    argv = ["--insecure"] if config.insecure else []
    for flag, value in (
        ("--tls-cert", config.cert),
        ("--tls-key", config.key),
        ("--tls-ca", config.ca),
        ("--token", config.token),
    ):
        if value is not None:
            argv += [flag, str(value)]
    return argv


class ServiceError(RuntimeError):
    """A service did not start, did not become healthy, or exited early."""


def _env(root: Path = _PACKAGE_ROOT) -> dict[str, str]:
    """The children's environment: this checkout (or the source tree ``root``)
    importable even when not installed."""
    env = dict(os.environ)
    if (root / "cloud_server").is_dir():
        parts = [str(root), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(parts))
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


class Service:
    """One service subprocess. Use as a context manager, or call start() and stop()."""

    def __init__(
        self,
        command: str,
        args: Sequence[str] = (),
        *,
        name: str | None = None,
        host: str = "127.0.0.1",
        log_dir: Path | None = None,
        security_config: SecurityConfig = PLAINTEXT,
        root: Path | None = None,
    ) -> None:
        self.command = command
        self.root = root  # another source tree to run (a benchmark's baseline); None: this one
        self.args = list(args)
        self.security = security_config
        self.name = name or command
        self.host = host
        self.port: int | None = None
        self.log_dir = log_dir
        self.log_path: Path | None = None
        self._proc: subprocess.Popen[str] | None = None
        self._port_found = threading.Event()

    @property
    def address(self) -> str:
        if self.port is None:
            raise ServiceError(f"{self.name} has no port yet")
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self, timeout: float = 60.0) -> Service:
        """Start the process and wait until it has announced its port."""
        folder = self.log_dir or Path(tempfile.mkdtemp(prefix="collabdnn-"))
        self.log_path = folder / f"{self.name}.log"
        argv = [
            sys.executable,
            "-m",
            "collabdnn",
            self.command,
            "--host",
            self.host,
            "--port",
            "0",
            *security_argv(self.security),
            *self.args,
        ]
        log.info("starting %s: %s", self.name, " ".join(argv[1:]))
        with open(self.log_path, "w") as stderr:
            self._proc = subprocess.Popen(
                argv,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                env=_env(self.root or _PACKAGE_ROOT),
                cwd=self.root,
                start_new_session=True,
            )
        threading.Thread(target=self._read_stdout, name=f"{self.name}-stdout", daemon=True).start()
        deadline = time.monotonic() + timeout
        while not self._port_found.wait(0.1):
            if self._proc.poll() is not None:
                raise ServiceError(
                    f"{self.name} exited with {self._proc.returncode} before "
                    f"binding a port:\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise ServiceError(f"{self.name} announced no port within {timeout:.0f} s")
        return self

    def _read_stdout(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:  # keeps draining, so the child never blocks on it
            match = _LISTENING.match(line)
            if match and not self._port_found.is_set():
                self.port = int(match.group(2))
                self._port_found.set()
            else:
                log.debug("%s: %s", self.name, line.rstrip())

    def wait_healthy(self, timeout: float = 120.0, service: str = "") -> Service:
        """Poll ``grpc.health.v1`` until SERVING; raise if the process exits or time runs out."""
        deadline = time.monotonic() + timeout
        status = "UNKNOWN"
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                code = None if self._proc is None else self._proc.returncode
                raise ServiceError(f"{self.name} exited with {code}:\n{self.log_tail()}")
            status = check_health(self.address, service, 2.0, self.security)
            if status == "SERVING":
                log.info("%s is serving at %s", self.name, self.address)
                return self
            time.sleep(0.2)
        raise ServiceError(
            f"{self.name} not SERVING after {timeout:.0f} s (last: {status}):\n{self.log_tail()}"
        )

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL; returns the exit code."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in %.0f s; killing it", self.name, timeout)
                proc.kill()
                proc.wait()
        if proc.stdout:
            proc.stdout.close()
        log.info("%s stopped (exit %s)", self.name, proc.returncode)
        return proc.returncode

    def log_tail(self, lines: int = 30) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> Service:
        if self._proc is None:
            self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start_healthy(
    command: str,
    args: Sequence[str] = (),
    *,
    name: str | None = None,
    log_dir: Path | None = None,
    timeout: float = 120.0,
    security_config: SecurityConfig = PLAINTEXT,
    host: str = "127.0.0.1",
) -> Service:
    """Start a service and wait until it is SERVING; stops it again if that fails."""
    service = Service(
        command, args, name=name, log_dir=log_dir, security_config=security_config, host=host
    )
    try:
        return service.start(timeout).wait_healthy(timeout)
    except BaseException:
        service.stop()
        raise


def start_all_healthy(services: Sequence[Service], timeout: float = 120.0) -> list[Service]:
    """Start services that do not depend on one another at once, and wait until each is
    SERVING; stops them all again if one fails.

    Starting a service is seconds of CPU (importing torch, loading a model); on a
    machine with several cores, starting independent ones together saves that wait.
    """
    from concurrent.futures import ThreadPoolExecutor

    def up(service: Service) -> Service:
        return service.start(timeout).wait_healthy(timeout)

    with ThreadPoolExecutor(max_workers=max(1, len(services))) as pool:
        futures = [pool.submit(up, service) for service in services]
        try:
            return [future.result() for future in futures]
        except BaseException:
            for future in futures:
                future.exception()  # every start has ended (or failed) before stopping
            for service in services:
                service.stop()
            raise
