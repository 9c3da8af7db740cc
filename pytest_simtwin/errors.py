"""One error hierarchy for everything pytest-simtwin raises.

Every message says what was expected, what was found and what to do; where a simulator or node is
involved, the tail of its log is attached so a CI failure can be read without re-running.
"""

from __future__ import annotations

from collections.abc import Iterable

LOG_TAIL_LINES = 30


def format_log_tail(lines: Iterable[str], title: str = "simulator log", limit: int = LOG_TAIL_LINES) -> str:
    """Render the last ``limit`` lines of a log as an indented block for an error message."""
    tail = [line.rstrip("\n") for line in lines][-limit:]
    if not tail:
        return f"--- {title}: (empty) ---"
    body = "\n".join(f"    {line}" for line in tail)
    return f"--- last {len(tail)} lines of {title} ---\n{body}"


class SimTwinError(Exception):
    """Base class of every error raised by pytest-simtwin.

    ``log_tail`` holds the last lines of the relevant log; ``str()`` appends them to the message.
    """

    def __init__(self, message: str, *, log_tail: Iterable[str] | None = None, log_title: str = "simulator log"):
        self.message = message
        self.log_tail = list(log_tail) if log_tail is not None else None
        self.log_title = log_title
        super().__init__(message)

    def __str__(self) -> str:
        if self.log_tail is None:
            return self.message
        return f"{self.message}\n{format_log_tail(self.log_tail, self.log_title)}"


class ConfigError(SimTwinError):
    """A bad option, ini value, marker argument or configuration file."""


class ModelError(SimTwinError):
    """A world or robot description that cannot be loaded (names the file and line)."""


class DomainError(SimTwinError):
    """No free ROS_DOMAIN_ID in the configured range, or a bad range."""


class SimulatorError(SimTwinError):
    """The simulator failed: did not start, died, stopped advancing time or stopped publishing.

    These are infrastructure failures: the plugin reports the test as an *error*, not a failure.
    """


class SimulatorStartError(SimulatorError):
    """The simulator did not become ready (first message) within the start timeout."""


class SimulatorDiedError(SimulatorError):
    """The simulator process or container exited while it was in use."""


class ControlError(SimTwinError):
    """A control request (step, reset, spawn, ...) was refused or timed out."""


class WaitTimeout(SimTwinError, AssertionError):
    """A wait_for_* helper ran out of time; also an AssertionError so it reads as a test failure."""


class BackendError(SimTwinError):
    """A backend cannot work here: no docker daemon, missing image, bad command template, ..."""


class BaselineError(SimTwinError):
    """A baseline file is corrupt or cannot be written."""


class DataError(SimTwinError):
    """Recorded data (bag, JSON) cannot be read or is unusable for validation."""
