"""Private Linux network namespaces for shaping a real link without touching the host.

A namespace has its own loopback interface, so ``tc`` rules put on it shape only the
traffic between processes started inside it (the cloud server and the mobile agent of a
test or benchmark), and deleting the namespace removes every rule at once.  Everything
here needs root (``CAP_SYS_ADMIN`` and ``CAP_NET_ADMIN``) and the ``ip`` tool from
iproute2; :func:`netns_available` says, with the reason, whether that is the case, so
that tests can skip cleanly on a user's laptop.
"""

from __future__ import annotations

import functools
import logging
import os
import secrets
import shutil
import subprocess
from collections.abc import Sequence
from types import TracebackType
from typing import Any

__all__ = ["NetNamespace", "NetnsError", "netns_available"]

log = logging.getLogger(__name__)

# Every tool call is bounded so that a wedged kernel or tool cannot hang a test run.
_TOOL_TIMEOUT_S = 20.0


class NetnsError(RuntimeError):
    """A namespace could not be created, used or deleted; the message says why."""


def _run_tool(args: Sequence[str], timeout: float = _TOOL_TIMEOUT_S) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            list(args), capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError as exc:
        raise NetnsError(f"{args[0]!r} is not installed (iproute2)") from exc
    except subprocess.TimeoutExpired as exc:
        raise NetnsError(f"{' '.join(args)} did not finish within {timeout:.0f} s") from exc


class NetNamespace:
    """A uniquely named private network namespace with its loopback up.

    Use it as a context manager: the namespace is created on entry and, on exit, the
    processes started through :meth:`popen` are terminated and the namespace deleted,
    whatever happened inside.  Names carry the pid and a random token, so parallel test
    runs never collide and a leftover is easy to attribute.
    """

    def __init__(self, prefix: str = "collabdnn") -> None:
        self.name = f"{prefix}-{os.getpid()}-{secrets.token_hex(3)}"
        self._created = False
        self._procs: list[subprocess.Popen] = []

    # -- lifecycle -------------------------------------------------------------------

    def create(self) -> NetNamespace:
        """Create the namespace and bring its loopback up."""
        result = _run_tool(["ip", "netns", "add", self.name])
        if result.returncode != 0:
            raise NetnsError(f"cannot create network namespace: {result.stderr.strip()}")
        self._created = True
        try:
            self.check_call(["ip", "link", "set", "lo", "up"])
        except Exception:
            self.delete()
            raise
        log.debug("created network namespace %s", self.name)
        return self

    def delete(self) -> None:
        """Stop the processes we started inside, then delete the namespace (idempotent)."""
        for proc in self._procs:
            _stop(proc)
        self._procs.clear()
        if not self._created:
            return
        result = _run_tool(["ip", "netns", "delete", self.name])
        if result.returncode != 0:
            log.warning("could not delete namespace %s: %s", self.name, result.stderr.strip())
        else:
            self._created = False
            log.debug("deleted network namespace %s", self.name)

    def __enter__(self) -> NetNamespace:
        return self.create()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.delete()

    # -- running things inside -------------------------------------------------------

    def command(self, args: Sequence[str]) -> list[str]:
        """``args`` prefixed so that it runs inside this namespace."""
        return ["ip", "netns", "exec", self.name, *args]

    def run(
        self, args: Sequence[str], timeout: float = 60.0, **kwargs: Any
    ) -> subprocess.CompletedProcess:
        """Run ``args`` inside the namespace and wait for it (output captured as text)."""
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        return subprocess.run(self.command(args), timeout=timeout, check=False, **kwargs)

    def check_call(self, args: Sequence[str], timeout: float = _TOOL_TIMEOUT_S) -> str:
        """Run ``args`` inside the namespace; raise :class:`NetnsError` if it fails."""
        try:
            result = self.run(args, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise NetnsError(f"{' '.join(args)} timed out in {self.name}") from exc
        if result.returncode != 0:
            raise NetnsError(
                f"{' '.join(args)} failed in {self.name}: "
                f"{(result.stderr or result.stdout).strip()}"
            )
        return result.stdout

    def popen(self, args: Sequence[str], **kwargs: Any) -> subprocess.Popen:
        """Start ``args`` inside the namespace; it is stopped when the namespace is deleted."""
        proc = subprocess.Popen(self.command(args), **kwargs)
        self._procs.append(proc)
        return proc


def _stop(proc: subprocess.Popen, grace_s: float = 5.0) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=grace_s)


@functools.cache
def netns_available() -> tuple[bool, str]:
    """Whether namespaces plus ``tc`` htb shaping work here, and if not, why not.

    Tries the real thing (create a namespace, put an htb qdisc on its loopback, delete
    it) because capability checks alone miss seccomp profiles and kernels built
    without the qdisc.  Cached: the answer does not change within a process.
    """
    if os.name != "posix" or not hasattr(os, "geteuid"):
        return False, "network namespaces need Linux"
    if os.geteuid() != 0:
        return False, "network namespaces and tc need root (run the tests as root)"
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return False, f"{tool!r} (iproute2) is not installed"
    try:
        with NetNamespace(prefix="collabdnn-check") as ns:
            ns.check_call(["tc", "qdisc", "add", "dev", "lo", "root", "handle", "1:", "htb"])
    except NetnsError as exc:
        return False, str(exc)
    return True, ""
