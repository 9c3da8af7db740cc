"""Shared set-up for the plugin's own tests: pytester for every module that runs pytest in a subprocess."""

from __future__ import annotations

pytest_plugins = ["pytester"]
