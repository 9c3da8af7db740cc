"""The plugin's options, ini keys and marker keywords: one table, parsing and the cheap checks.

Every option lives in :data:`OPTIONS`. Each entry becomes ``--simtwin-<name>`` in the ``simtwin``
option group *and* a ``simtwin_<name>`` ini key; the command line wins over the ini file, which wins
over the default. To add an option (reports, shard, ...), append an :class:`Option` to
:data:`OPTIONS` here, or call :func:`add_option` from your own ``pytest_addoption`` hook, then read
it with :func:`get_option`::

    OPTIONS.append(Option("shard", "run only shard K of N (e.g. 2/4)", metavar="K/N"))
    ...
    value = get_option(pytest_config, "shard")      # str | None (typed per Option.kind)

Every pytest run imports this module (the plugin registers the options), so it imports nothing but
the standard library, pytest and two small tables. :func:`check` validates every value at
``pytest_configure`` (:class:`pytest.UsageError` naming the option, what it expected and what it
found); :func:`pytest_simtwin.runtime.settings.load_settings` builds the run's settings from them
when a test needs a simulator.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

from pytest_simtwin.backends.registry import BACKENDS, available_backends, backend_target
from pytest_simtwin.backends.registry import DEFAULT_BACKEND as DEFAULT_BACKEND  # re-exported for the plugin
from pytest_simtwin.errors import ConfigError
from pytest_simtwin.ros.domain_ids import DEFAULT_DOMAIN_RANGE, parse_domain_range
from pytest_simtwin.runtime.spawn import SpawnPose, check_name_has_robot, check_spawn_name, parse_spawn_pose

Kind = Literal["str", "int", "float", "bool", "path"]
GROUP = "simtwin"
RESET_MODES = ("test", "module", "never")
CMD_VEL_TYPES = ("twist", "twist_stamped")


@dataclass(frozen=True)
class Option:
    """One ``--simtwin-<name>`` option with its ``simtwin_<name>`` ini key."""

    name: str
    help: str
    kind: Kind = "str"
    default: Any = None
    choices: tuple[str, ...] | None = None
    metavar: str | None = None

    @property
    def flag(self) -> str:
        return f"--simtwin-{self.name}"

    @property
    def dest(self) -> str:
        return f"simtwin_{self.name.replace('-', '_')}"

    @property
    def ini(self) -> str:
        return self.dest


OPTIONS: list[Option] = [
    # not argparse choices: third-party backends (entry points) are looked up only when named
    Option("backend", f"simulator backend: {', '.join(BACKENDS)} or an installed third-party one", default=DEFAULT_BACKEND),
    Option("world", "world file (SDF) for every test; default: the built-in arena", kind="path"),
    Option("robot", "robot file (SDF/URDF) added to the world; default: the built-in robot", kind="path"),
    Option(
        "spawn-name",
        "model name of the --simtwin-robot as `ros_gz_sim create -name` gives it; frame ids (NAME/imu_link/imu) "
        "and default gz topics follow it (default: the file's name)",
        metavar="NAME",
    ),
    Option(
        "spawn-pose",
        "pose of the robot in the world as `ros_gz_sim create -x -y -z [-R -P] -Y` takes it: 'X Y Z', 'X Y Z YAW' "
        "or 'X Y Z ROLL PITCH YAW' (m, rad; spaces or commas; a negative X needs the = form, "
        "--simtwin-spawn-pose=-2,-0.5,0.01); ground truth starts there, odometry at zero",
        metavar="POSE",
    ),
    Option("rtf", "real-time factor (0 = as fast as possible)", kind="float", default=1.0),
    Option("seed", "random seed of the simulator (sensor noise)", kind="int", default=0),
    Option("domain-range", "ROS_DOMAIN_IDs the workers may lease", default=DEFAULT_DOMAIN_RANGE, metavar="RANGES"),
    Option("timeout", "seconds to wait for the simulator to start and become ready", kind="float", default=30.0),
    Option(
        "cmd-vel-type",
        "message type of the velocity command; unset, the simulator takes Twist and TwistStamped and the robot "
        "fixture sends the type the robot's controller expects",
        choices=CMD_VEL_TYPES,
    ),
    Option("robot-name", "the world's robot that the robot fixture drives, when the world has several", metavar="NAME"),
    Option(
        "reset",
        "when to reset the simulator: before each test, each module, or never",
        default="test",
        choices=RESET_MODES,
    ),
    Option(
        "command",
        "process backend: command template with {world} {robot} {domain_id} {partition} {seed} "
        "{rtf} (run through 'sh -c' when it contains shell syntax)",
        metavar="TEMPLATE",
    ),
    Option(
        "fork-server",
        "embedded backend: fork simulators from a warm server that has imported MuJoCo and rclpy "
        "(~0.2 s per start instead of ~0.7 s); 'off' starts a fresh process each time",
        default="on",
        choices=("on", "off"),
    ),
    Option(
        "idle-pause",
        "pause a worker's simulator between its tests, so idle workers cost no CPU (resumed when the next "
        "test starts); 'off' lets it run on",
        default="on",
        choices=("on", "off"),
    ),
    Option(
        "sensors-off",
        "embedded backend: sensors to turn off for every test, comma-separated names or kinds (imu, camera, "
        "depth, rgbd, navsat, contact, magnetometer, air_pressure) or 'all' (marker: sensors_off=[...])",
        metavar="NAMES",
    ),
    Option("attach-domain", "attach backend: ROS_DOMAIN_ID of the already running simulator", kind="int"),
    Option("image", "docker backend: simulator image"),
    Option("docker-cpus", "docker backend: CPU limit of each simulator container (e.g. 1.5)", kind="float"),
    Option("docker-memory", "docker backend: memory limit of each simulator container (e.g. 2g, 512m)"),
    Option(
        "artifacts", "directory for logs and per-test artifacts (default: <rootdir>/simtwin-artifacts)", kind="path"
    ),
    # plugin/sharding.py: run one deterministic slice of the suite (N CI jobs / Kubernetes pods)
    Option("shard", "run only shard K of N (1-based), a deterministic split of the selected tests", metavar="K/N"),
    Option(
        "shard-durations",
        "metrics JSON of a previous run (or {nodeid: seconds}) to balance shards by "
        "duration (every shard must use the same file); under -n, tests are also handed out longest first",
        kind="path",
    ),
    Option(
        "store-durations",
        "after the run, write its per-test durations into the --simtwin-shard-durations file "
        "(a {nodeid: seconds} map, created if missing; other tests' entries are kept)",
        kind="bool",
    ),
    # plugin/reporting.py, results/: results, baselines, recordings
    Option(
        "metrics-json",
        "write every test's outcome, durations, metrics and baseline verdicts to this JSON file",
        kind="path",
    ),
    Option("baseline-dir", "folder of metric baselines (default: <rootdir>/simtwin_baselines)", kind="path"),
    Option("update-baseline", "write the baselines of passing tests with metrics (atomic, diff-friendly)", kind="bool"),
    Option("fail-on-regression", "fail a test whose metrics regressed against its baseline", kind="bool"),
    Option("baseline-rtol", "relative band within which a metric counts as unchanged", kind="float", default=0.05),
    Option(
        "record",
        "record the robot's topics to rosbag2 MCAP: off, failed tests only, all",
        default="off",
        choices=("off", "failed", "all"),
    ),
    Option("record-topics", "extra topics to record, one '/topic package/msg/Type' per line (ini)", metavar="LINES"),
]

#: Keywords of ``@pytest.mark.simtwin(...)`` -> the SimConfig field (or "reset") they set.
MARKER_KEYS = (
    "world", "robot", "rtf", "reset", "lockstep", "seed", "cmd_vel_type", "paused", "timeout", "faults", "sensors_off",
    "robot_name", "spawn_name", "spawn_pose",
)  # fmt: skip


def add_option(parser: pytest.Parser, option: Option) -> None:
    """Register one option and its ini key in the ``simtwin`` group."""
    group = parser.getgroup(GROUP, "simulation-in-the-loop testing (pytest-simtwin)")
    default_text = "" if option.default is None else f" (default: {option.default})"
    kwargs: dict[str, Any] = {"dest": option.dest, "default": None, "help": option.help + default_text}
    if option.kind == "bool":
        kwargs["action"] = "store_true"
    else:
        kwargs["action"] = "store"
        kwargs["metavar"] = option.metavar or option.name.split("-")[-1].upper()
        if option.choices:
            kwargs["choices"] = list(option.choices)
            kwargs.pop("metavar")
    group.addoption(option.flag, **kwargs)
    ini_type = "bool" if option.kind == "bool" else "string"
    parser.addini(option.ini, option.help, type=ini_type, default=None)  # type: ignore[arg-type]


def add_options(parser: pytest.Parser) -> None:
    for option in OPTIONS:
        add_option(parser, option)


def _find(name: str) -> Option:
    for option in OPTIONS:
        if option.name == name:
            return option
    raise KeyError(f"unknown simtwin option {name!r}")


def _convert(option: Option, raw: Any, source: str, base: Path) -> Any:
    if raw is None or (isinstance(raw, str) and raw.strip() == "" and option.kind != "str"):
        return None
    try:
        if option.kind == "bool":
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"expected true/false, found {raw!r}")
        if option.kind == "int":
            try:
                return int(str(raw).strip())
            except ValueError:
                raise ValueError(f"expected a whole number, found {raw!r}") from None
        if option.kind == "float":
            try:
                value = float(str(raw).strip())
            except ValueError:
                raise ValueError(f"expected a number, found {raw!r}") from None
            if not math.isfinite(value):
                raise ValueError(f"expected a finite number, found {raw!r}")
            return value
        if option.kind == "path":
            path = Path(os.path.expanduser(str(raw).strip()))
            return path if path.is_absolute() else (base / path)
    except ValueError as exc:
        raise pytest.UsageError(f"{source}: {exc}") from None
    text = str(raw)
    if option.choices and text not in option.choices:
        raise pytest.UsageError(f"{source}: expected one of {', '.join(option.choices)}, found {text!r}")
    return text


def get_option(config: pytest.Config, name: str) -> Any:
    """The value of ``--simtwin-<name>``, else ini ``simtwin_<name>``, else the default (typed)."""
    option = _find(name)
    raw = config.getoption(option.dest, default=None)
    if raw is not None:
        return _convert(option, raw, f"{option.flag}", Path(config.invocation_params.dir))
    ini_raw = config.getini(option.ini)
    if ini_raw not in (None, "", []) and not (option.kind == "bool" and ini_raw is False):
        base = config.inipath.parent if config.inipath else config.rootpath
        return _convert(option, ini_raw, f"ini option {option.ini} ({config.inipath})", base)
    return option.default


def _check_file(path: Path | None, what: str, source: str) -> Path | None:
    if path is None:
        return None
    if not path.is_file():
        hint = "it is a directory" if path.is_dir() else "no such file"
        raise pytest.UsageError(
            f"{source}: the {what} file {path} does not exist ({hint}). Expected an SDF/URDF/MJCF file; "
            f"give an absolute path or one relative to the current directory / ini file."
        )
    return path.resolve()


def source_of(config: pytest.Config, name: str) -> str:
    """Where the value of option ``name`` came from, for an error message: the flag or the ini key."""
    option = _find(name)
    if config.getoption(option.dest, default=None) is not None:
        return option.flag
    return f"ini option {option.ini} ({config.inipath})"


def spawn_options(config: pytest.Config) -> tuple[str | None, SpawnPose | None]:
    """``--simtwin-spawn-name`` / ``--simtwin-spawn-pose``, parsed; raises :class:`pytest.UsageError` naming the source."""
    name = get_option(config, "spawn-name")
    if name is not None:
        name = check_spawn_name(name, source_of(config, "spawn-name"))
    pose = get_option(config, "spawn-pose")
    if pose is not None:
        pose = parse_spawn_pose(pose, source_of(config, "spawn-pose"))
    return name, pose


def check(config: pytest.Config) -> None:
    """Validate every option without importing a backend or ROS; raises :class:`pytest.UsageError` on the first bad one.

    Checks types and choices, ranges, the world and robot files and the backend's name; a non-default
    backend's own options are checked by its class (:func:`~pytest_simtwin.runtime.settings.load_settings`).
    """
    for option in OPTIONS:
        get_option(config, option.name)  # types, choices, finite numbers
    rtf = get_option(config, "rtf")
    if rtf < 0:
        raise pytest.UsageError(
            f"--simtwin-rtf: expected a real-time factor >= 0 (0 = as fast as possible), found {rtf}"
        )
    timeout = get_option(config, "timeout")
    if timeout <= 0:
        raise pytest.UsageError(f"--simtwin-timeout: expected a positive number of seconds, found {timeout}")
    seed = get_option(config, "seed")
    if seed < 0:
        raise pytest.UsageError(f"--simtwin-seed: expected an integer >= 0, found {seed}")
    try:
        parse_domain_range(get_option(config, "domain-range"))
    except ConfigError as exc:
        raise pytest.UsageError(f"--simtwin-domain-range: {exc}") from None
    _check_file(get_option(config, "world"), "world", "--simtwin-world")
    _check_file(get_option(config, "robot"), "robot", "--simtwin-robot")
    spawn_name, _ = spawn_options(config)  # can the backend place it: settings.check_spawn, at activation
    check_name_has_robot(spawn_name, get_option(config, "robot"), source_of(config, "spawn-name"))
    backend = get_option(config, "backend")
    if backend_target(backend) is None:
        choices = ", ".join(repr(name) for name in available_backends())
        raise pytest.UsageError(f"argument --simtwin-backend: invalid choice: {backend!r} (choose from {choices})")
    cpus = get_option(config, "docker-cpus")
    if cpus is not None and cpus <= 0:
        raise pytest.UsageError(f"--simtwin-docker-cpus: expected a positive number of CPUs (e.g. 1.5), found {cpus}")
    topics = get_option(config, "record-topics")
    if topics:
        from pytest_simtwin.results.recording import parse_topic_lines  # only when given: see the docstring

        try:
            parse_topic_lines(str(topics).splitlines())
        except ConfigError as exc:
            raise pytest.UsageError(str(exc)) from None


MARKER_HELP = (
    "simtwin(world=None, robot=None, rtf=None, reset=None, lockstep=None, seed=None, cmd_vel_type=None, "
    "paused=None, timeout=None, faults=None, sensors_off=None, robot_name=None, spawn_name=None, spawn_pose=None): "
    "simulator configuration for a test, class or module; the simulator restarts when it differs from the running "
    "one; faults: pytest_simtwin.faults.* injected at set-up; robot_name: the robot fixture's robot; spawn_name, "
    "spawn_pose: the added robot's model name and (x, y, z[, yaw]) or (x, y, z, roll, pitch, yaw) as ros_gz_sim "
    "create takes them"
)
