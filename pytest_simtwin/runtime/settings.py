"""The plugin's options, ini keys and marker: one table, parsing and validation.

Every option lives in :data:`OPTIONS`. Each entry becomes ``--simtwin-<name>`` in the ``simtwin``
option group *and* a ``simtwin_<name>`` ini key; the command line wins over the ini file, which wins
over the default. To add an option (reports, shard, ...), append an :class:`Option` to
:data:`OPTIONS` here, or call :func:`add_option` from your own ``pytest_addoption`` hook, then read
it with :func:`get_option`::

    OPTIONS.append(Option("shard", "run only shard K of N (e.g. 2/4)", metavar="K/N"))
    ...
    value = get_option(pytest_config, "shard")      # str | None (typed per Option.kind)

Validation (:func:`load_settings`) raises :class:`pytest.UsageError` with a message that names the
option, what it expected and what it found.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

from pytest_simtwin.backends.base import BACKENDS, Backend, SimConfig, available_backends, backend_class
from pytest_simtwin.control.faults import Fault
from pytest_simtwin.errors import ConfigError
from pytest_simtwin.ros.domains import DEFAULT_DOMAIN_RANGE, parse_domain_range

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
    Option("backend", f"simulator backend: {', '.join(BACKENDS)} or an installed third-party one", default="embedded"),
    Option("world", "world file (SDF) for every test; default: the built-in arena", kind="path"),
    Option("robot", "robot file (SDF/URDF) added to the world; default: the built-in robot", kind="path"),
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
        "depth, rgbd, navsat) or 'all' (marker: sensors_off=[...])",
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
    "robot_name",
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


def load_settings(config: pytest.Config) -> Settings:
    """Read and validate every option; raises :class:`pytest.UsageError` on the first bad one."""
    backend = get_option(config, "backend")
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
        domain_ids = tuple(parse_domain_range(get_option(config, "domain-range")))
    except ConfigError as exc:
        raise pytest.UsageError(f"--simtwin-domain-range: {exc}") from None
    world = _check_file(get_option(config, "world"), "world", "--simtwin-world")
    robot = _check_file(get_option(config, "robot"), "robot", "--simtwin-robot")
    command = get_option(config, "command")
    attach_domain = get_option(config, "attach-domain")
    image = get_option(config, "image")
    memory = get_option(config, "docker-memory")
    try:
        backend_cls = backend_class(backend)
    except ConfigError as exc:
        choices = ", ".join(repr(name) for name in available_backends())
        reason = f"invalid choice: {backend!r} (choose from {choices})" if "unknown" in str(exc) else str(exc)
        raise pytest.UsageError(f"argument --simtwin-backend: {reason}") from None
    try:
        backend_cls.check_options({"command": command, "attach-domain": attach_domain, "docker-memory": memory})
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    cpus = get_option(config, "docker-cpus")
    if cpus is not None and cpus <= 0:
        raise pytest.UsageError(f"--simtwin-docker-cpus: expected a positive number of CPUs (e.g. 1.5), found {cpus}")
    artifacts = get_option(config, "artifacts") or (config.rootpath / "simtwin-artifacts")
    sim = SimConfig(
        world=world,
        robot=robot,
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


# -- marker ------------------------------------------------------------------------------------
MARKER_HELP = (
    "simtwin(world=None, robot=None, rtf=None, reset=None, lockstep=None, seed=None, cmd_vel_type=None, "
    "paused=None, timeout=None, faults=None, sensors_off=None, robot_name=None): simulator configuration for a "
    "test, class or module; the simulator restarts when it differs from the running one; faults: "
    "pytest_simtwin.faults.* injected at set-up; robot_name: the robot fixture's robot"
)


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
