"""pytest-simtwin: simulation-in-the-loop testing and digital-twin validation for ROS 2 robots."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
