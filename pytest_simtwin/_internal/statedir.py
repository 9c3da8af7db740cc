"""The per-host state directory (domain leases, fork server sockets' locks, warm-up markers)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def default_state_dir() -> Path:
    """Where per-host state lives unless ``SIMTWIN_STATE_DIR`` says otherwise."""
    return Path(tempfile.gettempdir()) / f"simtwin-{os.getuid()}"


def state_dir() -> Path:
    """Directory holding domain leases and other per-host state (``SIMTWIN_STATE_DIR`` overrides)."""
    override = os.environ.get("SIMTWIN_STATE_DIR")
    path = Path(override) if override else default_state_dir()
    path.mkdir(parents=True, exist_ok=True)
    return path
