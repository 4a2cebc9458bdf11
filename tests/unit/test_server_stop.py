"""Stopping a server made by ``create_server`` stops what the service started beside it.

``serve()`` runs a service's cleanup (the agent's cloud watch, link monitor and channel
pool; the cloud's training janitor; the scheduler's loops) after SIGTERM; a server made
in-process and stopped with ``server.stop(grace)`` must do the same, or its threads go
on logging ("cloud unreachable") after the tests that made it are over.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable

import pytest

from cloud_server.server import CloudConfig
from cloud_server.server import create_server as cloud_server
from collabdnn.measure.profile_service import ProfileSettings
from collabdnn.transport.server import BuiltServer, ServerConfig, build_server
from mobile_agent.server import MobileConfig
from mobile_agent.server import create_server as agent_server
from scheduler.core import SchedulerSettings
from scheduler.server import SchedulerConfig
from scheduler.server import create_server as scheduler_server
from tests.common import SAMPLES
from tests.unit.test_training import TINY
from tests.unit.test_training_grpc import _wait_ready

AGENT_THREADS = {"cloud-watch", "link-monitor"}
CLOUD_THREADS = {"training-janitor"}
SCHEDULER_THREADS = {"scheduler-pusher", "scheduler-load"}


def _new_threads(before: set[threading.Thread], names: set[str]) -> set[str]:
    """Names of the threads alive now, started since ``before``, among ``names``."""
    return {t.name for t in threading.enumerate() if t not in before and t.name in names}


def _gone_within(seconds: float, before: set[threading.Thread], names: set[str]) -> set[str]:
    deadline = time.monotonic() + seconds
    while (left := _new_threads(before, names)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def test_stopping_in_process_services_stops_their_background_threads() -> None:
    before = set(threading.enumerate())
    cloud, cloud_port = cloud_server(CloudConfig(model=TINY, threads=1, port=0))
    cloud.start()
    stopped = []
    try:
        _wait_ready(f"127.0.0.1:{cloud_port}")  # seeded weights: one model load at a time
        agent, agent_port = agent_server(
            MobileConfig(model=TINY, threads=1, port=0, cloud=f"127.0.0.1:{cloud_port}")
        )
        agent.start()
        stopped.append(agent)
        _wait_ready(f"127.0.0.1:{agent_port}")
        settings = SchedulerSettings(
            cloud=f"127.0.0.1:{cloud_port}",
            mobile=f"127.0.0.1:{agent_port}",
            images=(str(SAMPLES / "chelsea.png"),),
            profile=ProfileSettings(repeats=1, warmup=0),
        )
        scheduler, scheduler_port = scheduler_server(SchedulerConfig(settings=settings, port=0))
        scheduler.start()
        stopped.append(scheduler)
        _wait_ready(f"127.0.0.1:{scheduler_port}")
        # the watch and the monitor start just after SERVING, in the loader thread
        deadline = time.monotonic() + 10
        everything = AGENT_THREADS | CLOUD_THREADS | SCHEDULER_THREADS
        while _new_threads(before, everything) != everything and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _new_threads(before, everything) == everything

        # stop(grace) returns at once, as gRPC's does; the cleanup follows by itself
        agent.stop(0)
        assert not _gone_within(10, before, AGENT_THREADS)
        # ... and the event it returns is set once the cleanup is done
        assert scheduler.stop(0).wait(10)
        assert not _new_threads(before, SCHEDULER_THREADS)
    finally:
        for server in stopped:
            server.stop(0)
        assert cloud.stop(0).wait(10)
    assert not _new_threads(before, CLOUD_THREADS)
    assert agent.stop(0).wait(1)  # again: nothing more to do, at once


def test_cleanup_runs_once_after_the_server_stopped_and_a_failing_step_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ran: list[str] = []
    halt = threading.Event()

    boom, after = _failing_then_recording(ran, halt)

    config = ServerConfig(host="127.0.0.1", port=0)
    built = build_server(
        "test",
        config,
        services=[],
        register=lambda server: None,
        load=lambda: "nothing",
        cleanup=(boom, after),
        halt=halt,
    )
    server, port = built.embedded()
    assert port == built.port
    server.start()
    with caplog.at_level(logging.ERROR, logger="collabdnn.transport.server"):
        done = server.stop(0.5)  # with a grace: returns at once, the event comes later
        assert done.wait(10)
        assert server.stop(0).wait(1) and server.stop(None).is_set()
    assert ran == ["boom", "after (halt True)"]  # once, in order, the second despite the first
    assert "cleanup failed" in caplog.text


def _blocked_loader(
    ran: list[str], load_may_finish: threading.Event, halt: threading.Event | None = None
) -> tuple[BuiltServer, threading.Thread]:
    """A server whose ``load`` waits for ``load_may_finish``; what runs goes to ``ran``.

    Returns the built server, once ``load`` began, and its loader thread (to join).
    """
    loader: list[threading.Thread] = []
    loading = threading.Event()

    def load() -> str:
        loader.append(threading.current_thread())
        loading.set()
        assert load_may_finish.wait(10)
        return "nothing"

    def cleanup() -> None:
        ran.append("cleanup")

    built = build_server(
        "test",
        ServerConfig(host="127.0.0.1", port=0, grace_s=0.2),
        services=[],
        register=lambda server: None,
        load=load,
        once_serving=lambda: ran.append("once_serving"),
        cleanup=(cleanup,),
        halt=halt,
    )
    assert loading.wait(10)
    return built, loader[0]


def test_a_server_stopped_while_loading_never_starts_serving(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # once_serving starts what cleanup stops (the agent's watch, monitor, heartbeats):
    # run after the cleanup, it would leave those threads running for good
    ran: list[str] = []
    load_may_finish = threading.Event()
    built, loader = _blocked_loader(ran, load_may_finish)
    server, _port = built.embedded()
    server.start()
    with caplog.at_level(logging.INFO, logger="collabdnn.transport.server"):
        assert server.stop(0).wait(10)
        assert ran == ["cleanup"]
        load_may_finish.set()  # the model is loaded only now, after the cleanup
        loader.join(10)
        assert not loader.is_alive()
    assert ran == ["cleanup"]  # no once_serving, and the cleanup once
    assert "not serving it" in caplog.text and "serving on" not in caplog.text
    assert not built.failed.is_set()


def test_a_stop_during_once_serving_cleans_up_after_it() -> None:
    ran: list[str] = []
    in_once_serving, once_serving_may_finish = threading.Event(), threading.Event()

    def once_serving() -> None:
        in_once_serving.set()
        assert once_serving_may_finish.wait(10)
        ran.append("once_serving")

    def cleanup() -> None:
        ran.append("cleanup")

    built = build_server(
        "test",
        ServerConfig(host="127.0.0.1", port=0),
        services=[],
        register=lambda server: None,
        load=lambda: "nothing",
        once_serving=once_serving,
        cleanup=(cleanup,),
    )
    server, _port = built.embedded()
    server.start()
    assert in_once_serving.wait(10)
    done = server.stop(0)
    assert not done.wait(0.3) and ran == []  # the cleanup waits for once_serving
    once_serving_may_finish.set()
    assert done.wait(10)
    assert ran == ["once_serving", "cleanup"]


def _sigterm_once_serve_listens(stop_signal: signal.Signals) -> threading.Thread:
    """Send ``stop_signal`` to this process once ``serve()`` has its handler installed."""
    default = signal.getsignal(stop_signal)

    def send() -> None:
        deadline = time.monotonic() + 10
        while signal.getsignal(stop_signal) is default and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(os.getpid(), stop_signal)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


def test_serve_stopped_by_sigterm_while_loading_runs_every_cleanup_step_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # serve() shares the embedded stop: a failing cleanup step does not skip the next
    # ones, and a model loaded after SIGTERM is not served
    ran: list[str] = []
    halt = threading.Event()
    load_may_finish = threading.Event()

    boom, after = _failing_then_recording(ran, halt)

    built, loader = _blocked_loader(ran, load_may_finish, halt=halt)
    built.cleanup = (boom, *built.cleanup, after)
    sender = _sigterm_once_serve_listens(signal.SIGTERM)
    with caplog.at_level(logging.INFO, logger="collabdnn.transport.server"):
        assert built.serve() == 0
        sender.join(10)
        assert ran == ["boom", "cleanup", "after (halt True)"]
        load_may_finish.set()
        loader.join(10)
        assert not loader.is_alive()
    assert ran == ["boom", "cleanup", "after (halt True)"]  # no once_serving after it
    assert "stopping on SIGTERM (grace 0.2 s)" in caplog.text
    assert "cleanup failed" in caplog.text and "stopped in" in caplog.text
    assert "not serving it" in caplog.text


def _failing_then_recording(
    ran: list[str], halt: threading.Event
) -> tuple[Callable[[], None], Callable[[], None]]:
    """Two cleanup steps: one that raises, one that records whether ``halt`` was set."""

    def boom() -> None:
        ran.append("boom")
        raise RuntimeError("cleanup failed")

    def after() -> None:
        ran.append(f"after (halt {halt.is_set()})")

    return boom, after
