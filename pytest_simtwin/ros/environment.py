"""The ROS 2 / DDS environment every process of a simulation domain runs with.

Discovery is the main source of slowness and flakiness: with Fast DDS defaults about 40 % of
process starts need 1.5-3.5 s to exchange a first message (a new participant announces itself
before it listens; the reply is lost until the next 3 s lease announcement). The packaged profile
(UDP on 127.0.0.1 only, no shared memory, 100 ms announcements, fast heartbeats) removed every
case over 1 s in our measurements, but only when *every* process in the domain uses it, so this
module builds one environment that the simulator, the test process and nodes under test share.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping, MutableMapping
from importlib import resources
from pathlib import Path

from pytest_simtwin.errors import ConfigError

RMW_IMPLEMENTATION = "rmw_fastrtps_cpp"


def default_profile_path() -> Path:
    """The Fast DDS profile shipped with the package."""
    return Path(str(resources.files("pytest_simtwin") / "data" / "fastdds_profile.xml"))


def check_profile(path: Path) -> Path:
    """Fail early on a missing or invalid profile: Fast DDS would silently fall back to defaults."""
    if not path.is_file():
        raise ConfigError(f"Fast DDS profile {path} does not exist: expected an XML profile file")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise ConfigError(f"Fast DDS profile {path} is not valid XML ({exc}); fix it or remove the setting") from None
    if not root.tag.endswith("dds") and not root.tag.endswith("profiles"):
        raise ConfigError(f"Fast DDS profile {path}: expected a <dds> or <profiles> root, found <{root.tag}>")
    return path.resolve()


def ros_environment(
    domain_id: int,
    partition: str,
    *,
    profile: Path | None = None,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Environment for a process on ``domain_id``: ROS_DOMAIN_ID, GZ_PARTITION and fast discovery."""
    env = dict(os.environ if base is None else base)
    env["ROS_DOMAIN_ID"] = str(domain_id)
    env["GZ_PARTITION"] = partition
    env["RMW_IMPLEMENTATION"] = RMW_IMPLEMENTATION
    env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(check_profile(profile or default_profile_path()))
    # SYSTEM_DEFAULT keeps rmw from replacing the profile's transports; the profile itself binds
    # discovery and data to 127.0.0.1, so nothing leaves the host.
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "SYSTEM_DEFAULT"
    env.pop("ROS_LOCALHOST_ONLY", None)
    env.pop("ROS_STATIC_PEERS", None)
    # The profile disables shared memory; an inherited override would silently re-enable it.
    env.pop("FASTDDS_BUILTIN_TRANSPORTS", None)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


ROS_KEYS = (
    "ROS_DOMAIN_ID",
    "GZ_PARTITION",
    "RMW_IMPLEMENTATION",
    "FASTDDS_DEFAULT_PROFILES_FILE",
    "ROS_AUTOMATIC_DISCOVERY_RANGE",
    "ROS_LOCALHOST_ONLY",
    "ROS_STATIC_PEERS",
    "FASTDDS_BUILTIN_TRANSPORTS",
)


def apply_environment(env: Mapping[str, str], target: MutableMapping[str, str] | None = None) -> dict[str, str | None]:
    """Copy the ROS keys of ``env`` into ``target`` (default ``os.environ``); returns the old values.

    Must run before the process creates its first DDS participant: Fast DDS reads the profile then.
    """
    dest = os.environ if target is None else target
    previous: dict[str, str | None] = {}
    for key in ROS_KEYS:
        previous[key] = dest.get(key)
        if key in env:
            dest[key] = env[key]
        else:
            dest.pop(key, None)
    return previous


def restore_environment(previous: Mapping[str, str | None], target: MutableMapping[str, str] | None = None) -> None:
    """Undo :func:`apply_environment`."""
    dest = os.environ if target is None else target
    for key, value in previous.items():
        if value is None:
            dest.pop(key, None)
        else:
            dest[key] = value
