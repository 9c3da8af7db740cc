"""Message packages that PyPI does not ship, for the test process: built from the vendored ``.msg``
files at first use exactly as the simulator builds them (one cache, see sim/msgbuild.py)."""

from __future__ import annotations

from pytest_simtwin.errors import ConfigError
from pytest_simtwin.sim import msgbuild


def contacts_type() -> type:
    """ros_gz_interfaces/msg/Contacts (what ros_gz_bridge publishes for a Gazebo contact sensor)."""
    try:
        msgbuild.ensure("ros_gz_interfaces")
        from ros_gz_interfaces.msg import Contacts
    except Exception as exc:  # no compiler, a failed build
        raise ConfigError(
            f"contact sensors need the ros_gz_interfaces message package, which could not be had ({exc}); "
            "install a C/C++ compiler (apt-get install g++) so it can be built, or the ROS package"
        ) from None
    return Contacts  # type: ignore[no-any-return]
