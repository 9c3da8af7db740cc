"""ROS message and service classes by their ``package/msg/Type`` names (imported when first asked for)."""

from __future__ import annotations

import importlib

from pytest_simtwin.errors import ConfigError


def resolve_msg_type(name: str) -> type:
    """``"nav_msgs/msg/Odometry"`` -> the rclpy message class (imports lazily)."""
    try:
        pkg, kind, cls = name.split("/")
    except ValueError:
        raise ConfigError(f"message type {name!r}: expected 'package/msg/Type'") from None
    try:
        module = importlib.import_module(f"{pkg}.{kind}")
        return getattr(module, cls)  # type: ignore[no-any-return]
    except (ImportError, AttributeError):
        raise ConfigError(
            f"message type {name!r} is not installed in this Python environment: install its ROS 2 message "
            f"package (pip install ros-kilted-{pkg.replace('_', '-')}) or stop asking for the type"
        ) from None
