"""The whole system as subprocesses: cloud, agent (reporting to a scheduler), scheduler.

Used by the demo, the integration tests, the benchmarks and the link-switch scenario
(:mod:`collabdnn.testbed.linkswitch`), so that each starts the three services the same way.
The scheduler's port is chosen before the agent starts (the agent must know where to
report, the scheduler where to push), so it is picked free here unless given.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from collabdnn.placement import AssignedPlan
from collabdnn.planning.profiles import slower_profile
from collabdnn.testbed.procs import Service
from collabdnn.transport.security import PLAINTEXT, SecurityConfig

log = logging.getLogger(__name__)

__all__ = ["SAMPLE_PHOTO", "SEEDED_ALEXNET", "Stack", "free_port", "slower_profile"]

# What the scenarios (link switch, idle drop, contention) run: AlexNet with seeded
# weights, one torch thread per service, and the cat photo.
SEEDED_ALEXNET = ("--model", "alexnet", "--weights", "seed:0", "--threads", "1")
SAMPLE_PHOTO = Path(__file__).resolve().parents[2] / "samples" / "chelsea.png"


def free_port(host: str = "127.0.0.1") -> int:
    """A port free right now on ``host`` (another process may take it; rare enough)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class Stack:
    """Cloud + agent + scheduler subprocesses on 127.0.0.1 (context manager)."""

    def __init__(
        self,
        common: Sequence[str],
        *,
        cloud_args: Sequence[str] = (),
        agent_args: Sequence[str] = (),
        scheduler_args: Sequence[str] = (),
        scheduler_port: int | None = None,
        cloud_port: int | None = None,
        log_dir: Path | None = None,
        security_config: SecurityConfig = PLAINTEXT,
        with_scheduler: bool = True,
        mobile_cpus: float | None = None,
    ) -> None:
        self.common = list(common)
        self.cloud_args, self.agent_args = list(cloud_args), list(agent_args)
        self.scheduler_args = list(scheduler_args)
        self.scheduler_port = scheduler_port or free_port()
        self.cloud_port = cloud_port
        self.log_dir = log_dir
        self.security = security_config
        self.with_scheduler = with_scheduler
        self.mobile_cpus = mobile_cpus
        self.mobile_throttle = "not throttled"  # what was done to make the agent weaker
        self._cgroups = contextlib.ExitStack()
        self.cloud: Service | None = None
        self.agent: Service | None = None
        self.scheduler: Service | None = None

    @property
    def scheduler_address(self) -> str:
        return f"127.0.0.1:{self.scheduler_port}"

    def start(self, timeout: float = 180.0) -> Stack:
        kw: dict[str, Any] = {"log_dir": self.log_dir, "security_config": self.security}
        try:
            port = ["--port", str(self.cloud_port)] if self.cloud_port else []
            self.cloud = Service("cloud", [*self.common, *self.cloud_args, *port], **kw)
            self.cloud.start(timeout).wait_healthy(timeout)
            report = ["--scheduler", self.scheduler_address] if self.with_scheduler else []
            self.agent = Service(
                "mobile", [*self.common, "--cloud", self.cloud.address, *report,
                           *self.agent_args], **kw)  # fmt: skip
            self.agent.start(timeout).wait_healthy(timeout)
            if self.mobile_cpus:
                self._throttle_agent(self.mobile_cpus)
            if self.with_scheduler:
                self.scheduler = Service(
                    "scheduler", ["--cloud", self.cloud.address, "--mobile", self.agent.address,
                                  "--port", str(self.scheduler_port), *self.scheduler_args],
                    **kw)  # fmt: skip
                self.scheduler.start(timeout).wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _throttle_agent(self, cpus: float) -> None:
        """Put the loaded agent under a cgroup CPU quota: a genuinely weaker device.

        A 10 ms CFS period, not Docker's 100 ms: with 100 ms a request that starts after
        an idle spell runs at full speed for its first 100 ms, and the phone is not slower.
        """
        from collabdnn.netem.throttle import ThrottleError, add_process, cpu_quota

        assert self.agent is not None and self.agent.pid is not None
        try:
            folder = self._cgroups.enter_context(cpu_quota(cpus, period_us=10_000))
            add_process(folder, self.agent.pid)
        except (ThrottleError, OSError) as exc:
            self.mobile_throttle = f"not throttled ({exc})"
            log.warning("mobile agent not throttled to %.2f CPU: %s", cpus, exc)
            return
        self.mobile_throttle = f"{cpus:g} CPU (cgroup quota)"
        log.info("mobile agent limited to %.2f CPU", cpus)

    def stop(self) -> dict[str, int | None]:
        codes = {}
        # The agent leaves its CPU quota first: a weak device still stops at full speed.
        self._cgroups.close()
        for service in (self.scheduler, self.agent, self.cloud):
            if service is not None:
                codes[service.name] = service.stop()
        return codes

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- asking the agent -------------------------------------------------------------

    def agent_plan(self, timeout: float = 5.0) -> AssignedPlan:
        from collabdnn.transport.channels import open_channel
        from collabdnn.wire.stubs import AgentStub

        assert self.agent is not None
        with open_channel(self.agent.address, security_config=self.security) as channel:
            return AgentStub(channel).get_plan(timeout=timeout)

    def wait_agent_plan(
        self,
        accept: Callable[[str, AssignedPlan], bool],
        timeout: float = 60.0,
        poll_s: float = 0.05,
    ) -> tuple[str, float]:
        """Poll the agent's plan until ``accept(spec, plan)``; returns (spec, seconds)."""
        begin = time.monotonic()
        spec = ""
        while time.monotonic() - begin < timeout:
            plan = self.agent_plan()
            spec = str(plan.placement)
            if accept(spec, plan):
                return spec, time.monotonic() - begin
            time.sleep(poll_s)
        logs = "\n".join(
            f"--- {service.name} ---\n{service.log_tail(20)}"
            for service in (self.scheduler, self.agent)
            if service is not None
        )
        raise TimeoutError(f"the agent's plan is still {spec!r} after {timeout:.0f} s\n{logs}")
