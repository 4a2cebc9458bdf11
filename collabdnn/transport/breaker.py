"""A circuit breaker for the cloud: stop offloading to a failing cloud for a while.

States, as in the usual pattern:

- *closed*: calls go to the cloud; ``failure_threshold`` consecutive failures open it;
- *open*: calls are not attempted (the agent runs the units locally) until
  ``reset_s`` has passed since it opened;
- *half-open*: one probe is let through (a health check or a real call); success
  closes the breaker, failure opens it again for another ``reset_s``.

No classification waits for a dead cloud: while open, ``allow()`` answers at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"


class CircuitBreaker:
    def __init__(
        self,
        failure_threshold: int = 1,
        reset_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        name: str = "cloud",
    ) -> None:
        if failure_threshold < 1 or reset_s <= 0:
            raise ValueError("failure_threshold must be >= 1 and reset_s > 0")
        self.failure_threshold = failure_threshold
        self.reset_s = reset_s
        self.name = name
        self._clock = clock
        self._lock = threading.Lock()
        self._state = CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False

    @property
    def state(self) -> str:
        with self._lock:
            return self._current_state()

    def _current_state(self) -> str:
        if self._state == OPEN and self._clock() - self._opened_at >= self.reset_s:
            return HALF_OPEN
        return self._state

    def allow(self) -> bool:
        """Whether to try the cloud now; in half-open state only one caller probes."""
        with self._lock:
            state = self._current_state()
            if state == CLOSED:
                return True
            if state == HALF_OPEN and not self._probing:
                self._probing = True
                return True
            return False

    def record_success(self) -> None:
        with self._lock:
            if self._state != CLOSED:
                log.info("%s is back: resuming offloading", self.name)
            self._state, self._failures, self._probing = CLOSED, 0, False

    def record_failure(self, reason: str = "") -> None:
        with self._lock:
            self._failures += 1
            self._probing = False
            was = self._current_state()
            if was == CLOSED and self._failures < self.failure_threshold:
                return
            if was != OPEN:
                log.warning(
                    "%s failed (%s): running locally for %.1f s before trying again",
                    self.name,
                    reason or "error",
                    self.reset_s,
                )
            self._state, self._opened_at = OPEN, self._clock()

    def seconds_until_probe(self) -> float:
        with self._lock:
            if self._current_state() != OPEN:
                return 0.0
            return max(0.0, self.reset_s - (self._clock() - self._opened_at))
