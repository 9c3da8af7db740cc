"""The run's validated settings (:class:`Settings`) and the ``simtwin`` marker's keywords.

The option table and its parsing live in :mod:`pytest_simtwin.runtime.options` (imported by every
pytest run); they are re-exported here. :func:`load_settings` builds a run's :class:`Settings` when
a test needs a simulator, raising :class:`pytest.UsageError` with a message that names the option,
what it expected and what it found.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_simtwin.backends.base import Backend, SimConfig, backend_class
from pytest_simtwin.control.faults import Fault
from pytest_simtwin.errors import ConfigError
from pytest_simtwin.ros.domain_ids import parse_domain_range
from pytest_simtwin.runtime.options import CMD_VEL_TYPES as CMD_VEL_TYPES  # re-exported: the one table
from pytest_simtwin.runtime.options import GROUP as GROUP
from pytest_simtwin.runtime.options import MARKER_HELP as MARKER_HELP
from pytest_simtwin.runtime.options import MARKER_KEYS as MARKER_KEYS
from pytest_simtwin.runtime.options import OPTIONS as OPTIONS
from pytest_simtwin.runtime.options import RESET_MODES as RESET_MODES
from pytest_simtwin.runtime.options import Option as Option
from pytest_simtwin.runtime.options import add_option as add_option
from pytest_simtwin.runtime.options import add_options as add_options
from pytest_simtwin.runtime.options import check as check_options
from pytest_simtwin.runtime.options import get_option as get_option
from pytest_simtwin.runtime.options import spawn_options
from pytest_simtwin.runtime.spawn import ROBOT_FROM, check_name_has_robot, check_spawn_name, parse_spawn_pose
from pytest_simtwin.runtime.spawn import SPAWN_KEYS as SPAWN_KEYS  # re-exported for the plugin


@dataclass(frozen=True)
class Settings:
    """The validated plugin configuration of one pytest run (what the SimSession needs)."""

    backend: str
    sim: SimConfig
    domain_ids: tuple[int, ...]
    reset: str
    timeout: float
    artifacts: Path
    attach_domain: int | None = None
    idle_pause: bool = True

    @property
    def backend_class(self) -> type[Backend]:
        """The backend's class: ask it (capabilities, hooks) instead of comparing :attr:`backend` to names."""
        return backend_class(self.backend)


def load_settings(config: pytest.Config) -> Settings:
    """Read and validate every option; raises :class:`pytest.UsageError` on the first bad one."""
    check_options(config)  # types, ranges, files, the backend's name
    backend = get_option(config, "backend")
    rtf = get_option(config, "rtf")
    timeout = get_option(config, "timeout")
    seed = get_option(config, "seed")
    domain_ids = tuple(parse_domain_range(get_option(config, "domain-range")))
    world = _resolved(get_option(config, "world"))
    robot = _resolved(get_option(config, "robot"))
    spawn_name, spawn_pose = spawn_options(config)
    command = get_option(config, "command")
    attach_domain = get_option(config, "attach-domain")
    image = get_option(config, "image")
    memory = get_option(config, "docker-memory")
    try:
        backend_cls = backend_class(backend)  # the name is known (checked above): can it be loaded?
    except ConfigError as exc:
        raise pytest.UsageError(f"argument --simtwin-backend: {exc}") from None
    try:
        backend_cls.check_options({"command": command, "attach-domain": attach_domain, "docker-memory": memory})
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    cpus = get_option(config, "docker-cpus")
    artifacts = get_option(config, "artifacts") or (config.rootpath / "simtwin-artifacts")
    sim = SimConfig(
        world=world,
        robot=robot,
        spawn_name=spawn_name,
        spawn_pose=spawn_pose,
        rtf=rtf,
        seed=seed,
        cmd_vel_type=get_option(config, "cmd-vel-type"),
        start_timeout=timeout,
        command=command,
        image=image,
        cpus=cpus,
        memory=memory or None,
        attach_domain=attach_domain,
        options={"fork_server": get_option(config, "fork-server") == "on"},
        sensors_off=tuple(n.strip() for n in (get_option(config, "sensors-off") or "").split(",") if n.strip()),
    )
    check_spawn(backend, sim, "--simtwin-spawn-name / --simtwin-spawn-pose")
    return Settings(
        backend=backend,
        sim=sim,
        domain_ids=domain_ids,
        reset=get_option(config, "reset"),
        timeout=timeout,
        artifacts=Path(artifacts).resolve(),
        attach_domain=attach_domain,
        idle_pause=get_option(config, "idle-pause") == "on",
    )


def _resolved(path: Path | None) -> Path | None:
    return path.resolve() if path is not None else None


# -- marker ------------------------------------------------------------------------------------
def _marker_value(key: str, value: Any, where: str, base_dirs: tuple[Path, ...]) -> Any:
    def bad(expected: str) -> pytest.UsageError:
        return pytest.UsageError(f"{where}: @pytest.mark.simtwin({key}=...): expected {expected}, found {value!r}")

    if key in ("world", "robot"):
        if value is None:
            return None
        if not isinstance(value, (str, os.PathLike)):
            raise bad("a file path")
        path = Path(os.path.expanduser(os.fspath(value)))
        candidates = [path] if path.is_absolute() else [d / path for d in base_dirs]
        for candidate in candidates:
            if candidate.is_file():
                return candidate.resolve()
        raise pytest.UsageError(
            f"{where}: @pytest.mark.simtwin({key}={os.fspath(value)!r}): the {key} file does not exist; looked at "
            f"{', '.join(str(c) for c in candidates)}. Give a path relative to the test file or the rootdir."
        )
    if key in ("rtf", "timeout"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise bad("a number")
        if value < 0 or (key == "timeout" and value == 0):
            raise bad("a number >= 0" if key == "rtf" else "a positive number of seconds")
        return float(value)
    if key == "seed":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise bad("an integer >= 0")
        return value
    if key in ("lockstep", "paused"):
        if not isinstance(value, bool):
            raise bad("True or False")
        return value
    if key == "reset":
        if value not in RESET_MODES:
            raise bad(f"one of {', '.join(RESET_MODES)}")
        return value
    if key == "sensors_off":  # a name or a list of names; the simulator rejects unknown ones
        names = [value] if isinstance(value, str) else value
        if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) and n for n in names):
            raise bad("a sensor name or kind, or a list of them (e.g. ['camera'])")
        return tuple(names)
    if key == "robot_name":
        if not isinstance(value, str) or not value:
            raise bad("a model name")
        return value
    if key in SPAWN_KEYS and value is None:  # this test: the robot file's name / pose
        return None
    if key == "spawn_name":
        return check_spawn_name(value, f"{where}: @pytest.mark.simtwin(spawn_name=...)")
    if key == "spawn_pose":
        return parse_spawn_pose(value, f"{where}: @pytest.mark.simtwin(spawn_pose=...)")
    if key == "cmd_vel_type":
        if value not in CMD_VEL_TYPES:
            raise bad(f"one of {', '.join(CMD_VEL_TYPES)}")
        return value
    if key == "faults":
        faults = [value] if isinstance(value, Fault) else value
        if not isinstance(faults, list | tuple) or not all(isinstance(f, Fault) for f in faults):
            raise bad("a list of faults made by pytest_simtwin.faults (e.g. [faults.sensor_blackout('/scan')])")
        return tuple(faults)
    raise AssertionError(key)


def marker_overrides(item: pytest.Item, rootdir: Path) -> dict[str, Any]:
    """The merged ``simtwin`` marker keywords of ``item`` (closest wins), validated.

    Raises :class:`pytest.UsageError` naming the test on an unknown keyword or a bad value.
    """
    merged: dict[str, Any] = {}
    base_dirs = (item.path.parent, rootdir)
    # iter_markers yields the closest (function) first; keep the first value of each key.
    for mark in item.iter_markers(name="simtwin"):
        if mark.args:
            raise pytest.UsageError(
                f"{item.nodeid}: @pytest.mark.simtwin takes keyword arguments only ({', '.join(MARKER_KEYS)}), "
                f"found positional {mark.args!r}"
            )
        for key, value in mark.kwargs.items():
            if key not in MARKER_KEYS:
                raise pytest.UsageError(
                    f"{item.nodeid}: @pytest.mark.simtwin got an unknown keyword {key!r}; expected one of "
                    f"{', '.join(MARKER_KEYS)}"
                )
            if key not in merged:
                merged[key] = _marker_value(key, value, item.nodeid, base_dirs)
    return merged


def effective_config(settings: Settings, overrides: Mapping[str, Any]) -> tuple[SimConfig, str]:
    """The SimConfig and reset mode of one test: the run's settings with the marker's overrides."""
    # faults are injected by the sim fixture, robot_name picks the robot fixture's robot: not the simulator
    changes = {k: v for k, v in overrides.items() if k not in ("reset", "timeout", "faults", "robot_name")}
    if "timeout" in overrides:
        changes["start_timeout"] = overrides["timeout"]
    sim = settings.sim.with_(**changes) if changes else settings.sim
    return sim, str(overrides.get("reset", settings.reset))


def check_spawn(backend: str, sim: SimConfig, source: str, robot_from: str = ROBOT_FROM) -> None:
    """The spawn name / pose of ``sim`` can be applied by ``backend``; raises :class:`pytest.UsageError`."""
    if sim.spawn_name is None and sim.spawn_pose is None:
        return
    given = " / ".join(f for f, v in (("spawn-name", sim.spawn_name), ("spawn-pose", sim.spawn_pose)) if v is not None)
    check_name_has_robot(sim.spawn_name, sim.robot, source, robot_from)
    cls = backend_class(backend)
    if not cls.spawns_robot:
        why = " (it talks to a simulator that already runs, its robot already spawned)" if not cls.owns_simulator else ""
        raise pytest.UsageError(
            f"{source}: {given} given, but the {backend} backend cannot place the robot{why}; expected the "
            "embedded, docker or process backend (a command template with {spawn_name} {x} {y} {z} {yaw}), or "
            "spawn it in that simulator yourself (ros_gz_sim create -name NAME -x X -y Y -z Z -Y YAW)"
        )
    options = {"command": sim.command, "attach-domain": sim.attach_domain, "docker-memory": sim.memory,
               "spawn-name": sim.spawn_name, "spawn-pose": sim.spawn_pose}  # fmt: skip
    try:
        cls.check_options(options)
    except ConfigError as exc:
        raise pytest.UsageError(f"{source}: {exc}") from None
