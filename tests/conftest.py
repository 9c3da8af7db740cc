"""Shared set-up for the plugin's own tests: pytester for every module that runs pytest in a subprocess."""

from __future__ import annotations

# pytester's in-process runs (runpytest) unload, after each test, the modules that run imported; numpy's
# C core cannot be imported twice in one process. A test's inner run imports it when one of its tests
# uses record_metric (pytest_simtwin.helpers.assertions): import it here, before any snapshot is taken.
import numpy  # noqa: F401

pytest_plugins = ["pytester"]
