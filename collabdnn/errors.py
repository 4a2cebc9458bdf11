"""Domain errors, one class per way a request can be wrong.

Services map each to one gRPC status code (see ``collabdnn.wire.status``), so that a caller
always learns precisely what was wrong and the server keeps serving.
"""

from __future__ import annotations


class CollabError(Exception):
    """Base class of every error this package raises on purpose."""


class CodecError(CollabError):
    """A tensor frame is truncated, corrupted, oversized or inconsistent."""


class ImageError(CollabError):
    """Image bytes cannot be decoded, or exceed the configured size limits."""


class UnknownModelError(CollabError):
    """The model name is not in the registry."""


class WeightsError(CollabError):
    """Weights cannot be loaded, or do not match what the caller expects."""


class UnitRangeError(CollabError):
    """A unit range ``[start, end)`` is empty, reversed or outside the model."""


class TensorMismatchError(CollabError):
    """An activation has the wrong shape or dtype for the unit that should consume it."""


class PlanRequestError(CollabError):
    """A request to the scheduler is invalid (unknown objective, missing deadline, bad link)."""


class UnknownAgentError(CollabError):
    """The fleet scheduler holds no agent by that id (never registered, or forgotten)."""


class WrongModeError(CollabError):
    """A call for the other scheduler mode: a heartbeat to a single-agent scheduler
    (``--mobile``), a single agent's report to a fleet scheduler."""


class NotReadyError(CollabError):
    """The service cannot answer yet (the scheduler has no profiles or plan yet)."""


class ConfigError(CollabError):
    """A process's own configuration cannot work (a busy port, unusable TLS files).

    Raised while a service starts or a client opens its channel, never for a request:
    the command line prints it as one line and exits 1.
    """


class LimitError(CollabError):
    """A request asks for more work than this service accepts in one request (too many
    images, too large a batch, too many bytes): retrying it unchanged cannot help."""


class BusyError(CollabError):
    """The service is at its admission limit for this kind of call: retry later."""


class WorkStopped(CollabError):
    """Work in progress was stopped at a unit boundary (see :mod:`collabdnn.bounds`)."""


class CancelledError(WorkStopped):
    """The caller cancelled the request or went away."""


class DeadlineError(WorkStopped):
    """The caller's deadline passed while the request was being worked on."""


class ShuttingDownError(WorkStopped):
    """The server is stopping and the grace given to in-flight requests is over."""


class TrainingConfigError(CollabError):
    """A training configuration that cannot work (unknown optimizer, a rate <= 0)."""


class TrainingStateError(CollabError):
    """A training call that does not fit the session's state: an unknown or expired
    session, a step out of order, a backward pass without its forward, a commit of a
    step that is not staged, or another model or weights hash than the session's."""
