"""Where the built-in world and robot are (no imports: the plugin names them in every run's provenance)."""

from __future__ import annotations

from pathlib import Path

DEFAULTS_DIR = Path(__file__).resolve().parents[1] / "defaults"
DEFAULT_WORLD = DEFAULTS_DIR / "arena.sdf"
DEFAULT_ROBOT = DEFAULTS_DIR / "models" / "simtwin_bot" / "model.sdf"
