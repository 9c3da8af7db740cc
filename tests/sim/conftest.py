"""Fixtures for the embedded simulator's process tests (helpers live in simproc.py)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from simproc import SimProcess, start_sim

# The tutorial file is a plain unittest that test_sim_tutorial.py runs in a subprocess, not pytest.
collect_ignore = ["tutorial"]


@pytest.fixture
def sim_factory(tmp_path: Path) -> Iterator[Callable[..., SimProcess]]:
    """``sim_factory(*args, name=..., wait_topic=...)`` -> a started SimProcess, stopped at teardown."""
    with contextlib.ExitStack() as stack:
        count = [0]

        def factory(*args: str, **kwargs: Any) -> SimProcess:
            count[0] += 1
            kwargs.setdefault("name", f"sim{count[0]}")
            return stack.enter_context(start_sim(tmp_path, *args, **kwargs))

        yield factory
