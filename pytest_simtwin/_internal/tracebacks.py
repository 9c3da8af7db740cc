"""Frames hidden from pytest's tracebacks, so a helper's failure points at the test's own line."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

_P = ParamSpec("_P")
_R = TypeVar("_R")


def hide_frames(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Make a helper's failures (AssertionError, e.g. WaitTimeout) point at the test's own line.

    The traceback is cut at the helper, so pytest shows the test's frame and the message, not the
    plugin's wait loop. Infrastructure errors (SimulatorError, ControlError) keep their traceback.
    """

    @functools.wraps(fn)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        __tracebackhide__ = True
        try:
            return fn(*args, **kwargs)
        except AssertionError as exc:
            raise exc.with_traceback(None) from None

    return wrapper
