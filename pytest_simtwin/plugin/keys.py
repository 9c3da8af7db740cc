"""Every pytest stash key of the plugin, in one place (hooks, fixtures and reporting share them)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pytest_simtwin.runtime.session import SimSession
    from pytest_simtwin.runtime.settings import Settings

SETTINGS_KEY: pytest.StashKey[Settings] = pytest.StashKey()
OVERRIDES_KEY: pytest.StashKey[dict[str, Any]] = pytest.StashKey()
SESSION_KEY: pytest.StashKey[SimSession] = pytest.StashKey()  # on an item whose test uses the simulator
MARKER_ERROR_KEY: pytest.StashKey[str] = pytest.StashKey()  # an invalid simtwin marker found by an xdist worker
PREWARMED_KEY: pytest.StashKey[bool] = pytest.StashKey()  # the fork server was asked to start
PHASES_KEY: pytest.StashKey[dict[str, str]] = pytest.StashKey()  # outcome per phase, for the record's outcome
RECORDING_KEY: pytest.StashKey[Any] = pytest.StashKey()  # the Recorder during the call, then its Take
CALL_START_KEY: pytest.StashKey[float] = pytest.StashKey()  # time.monotonic() when the test's call began
ACTIVE_KEY: pytest.StashKey[bool] = pytest.StashKey()  # the reporting plugin is registered (plugin/hooks.py)
#: The attribute of a test report that carries its record to the xdist controller (results.records.REPORT_ATTR,
#: repeated here so the plugin can spot one without importing the results package; a test checks they agree).
REPORT_ATTR = "simtwin_record"
