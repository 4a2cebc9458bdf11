"""Make a process a weaker device: a CPU quota through a cgroup, as Compose's ``cpus:``.

``cpus=0.5`` lets the process group use half of one core per scheduling period, the
same limit ``docker run --cpus 0.5`` sets. Works with cgroup v2 (``cpu.max``) and v1
(``cpu.cfs_quota_us``); needs root. Where neither is writable, ``cpu_quota`` raises
:class:`ThrottleError` with the reason, and callers fall back to threads alone.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

PERIOD_US = 100_000
_V2 = Path("/sys/fs/cgroup")
_V1 = Path("/sys/fs/cgroup/cpu")


class ThrottleError(RuntimeError):
    """No writable cgroup CPU controller here (not root, or no cgroup mounted)."""


def quota_available() -> tuple[bool, str]:
    """Whether :func:`cpu_quota` can work here, and why not (checked, not tried)."""
    if os.geteuid() != 0:
        return False, "a CPU quota needs root (cgroups)"
    if _v2_available() or (_V1 / "cpu.cfs_quota_us").is_file():
        return True, ""
    return False, "no cgroup CPU controller is mounted"


def _v2_available() -> bool:
    controllers = _V2 / "cgroup.controllers"
    return controllers.is_file() and "cpu" in controllers.read_text().split()


def _create() -> tuple[Path, str]:
    name = f"collabdnn-{uuid.uuid4().hex[:8]}"
    if _v2_available():
        folder = _V2 / name
        folder.mkdir()
        return folder, "v2"
    if (_V1 / "cpu.cfs_quota_us").is_file():
        folder = _V1 / name
        folder.mkdir()
        return folder, "v1"
    raise ThrottleError("no cgroup CPU controller is mounted")


@contextlib.contextmanager
def cpu_quota(cpus: float, period_us: int = PERIOD_US) -> Iterator[Path]:
    """A cgroup limited to ``cpus`` cores; add processes with :func:`add_process`.

    ``period_us`` is the CFS bandwidth period. Docker's 100 ms lets a process burst at
    full speed until the period's budget is spent, so a 20 ms task that starts rested
    is not slowed at all; a short period (e.g. 10 ms) slows every task evenly, which is
    what a genuinely weaker CPU looks like to a benchmark.
    """
    if cpus <= 0:
        raise ValueError("cpus must be > 0")
    if not 1_000 <= period_us <= 1_000_000:
        raise ValueError("period_us must be in 1000..1000000 (the kernel's limits)")
    if os.geteuid() != 0:
        raise ThrottleError("a CPU quota needs root (cgroups)")
    try:
        folder, version = _create()
    except OSError as exc:
        raise ThrottleError(f"cannot create a cgroup: {exc.strerror}") from exc
    quota = int(cpus * period_us)
    if version == "v2":
        (folder / "cpu.max").write_text(f"{quota} {period_us}")
    else:
        (folder / "cpu.cfs_period_us").write_text(str(period_us))
        (folder / "cpu.cfs_quota_us").write_text(str(quota))
    log.info("cgroup %s: %.2f CPUs (%s)", folder, cpus, version)
    try:
        yield folder
    finally:
        _remove(folder)


def current_quota(pid: int | str = "self") -> float | None:
    """The CPU quota (cores) of the cgroup process ``pid`` is in, or None when it has
    none (or it cannot be read). Only the process's own cgroup is read, not its parents."""
    limit = current_cpu_limit(pid)
    return None if limit is None else limit[0]


def current_cpu_limit(pid: int | str = "self") -> tuple[float, float] | None:
    """(cores, CFS period in ms) of the cgroup CPU quota process ``pid`` runs under, or
    None (none, or unreadable). The period matters as much as the cores: see
    :mod:`collabdnn.planning.cfs`."""
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        relative = path.lstrip("/")
        try:
            if controllers == "":  # v2: the unified hierarchy
                quota, period = (_V2 / relative / "cpu.max").read_text().split()[:2]
                if quota == "max":
                    return None
            elif "cpu" in controllers.split(","):
                quota = (_V1 / relative / "cpu.cfs_quota_us").read_text().strip()
                period = (_V1 / relative / "cpu.cfs_period_us").read_text().strip()
                if int(quota) < 0:
                    return None
            else:
                continue
        except (OSError, ValueError):
            continue
        return int(quota) / int(period), int(period) / 1000.0
    return None


def add_process(folder: Path, pid: int) -> None:
    (folder / "cgroup.procs").write_text(str(pid))


def _remove(folder: Path) -> None:
    parent_procs = folder.parent / "cgroup.procs"
    with contextlib.suppress(OSError):
        for pid in (folder / "cgroup.procs").read_text().split():
            with contextlib.suppress(OSError):
                parent_procs.write_text(pid)
    with contextlib.suppress(OSError):
        folder.rmdir()
