"""Gazebo (gz-sim) recipe: bridge YAML from a robot's topics, command lines, and the container entrypoint.

Used by ``docker/gazebo/`` (an image on ``osrf/ros:<distro>-simulation-<os>``): the entrypoint runs
``python3 -m pytest_simtwin.backends.gazebo run WORLD`` which

1. checks the world file, ``gz`` and ``ros2`` (clear error and exit code 127/2 when missing);
2. reads the world's name and the robot's DiffDrive / lidar / joint-state topics from the SDF;
3. writes a ros_gz_bridge YAML for cmd_vel, odom, scan, joint_states and clock;
4. starts ``gz sim -s -r --headless-rendering WORLD`` and ``ros2 run ros_gz_bridge parameter_bridge``
   with GZ_PARTITION set, forwards SIGTERM, and exits when either stops (or stdin closes, with
   ``SIMTWIN_STDIN_GUARD=1``: the docker backend's liveness link).

``run --dry-run`` prints the plan (bridge YAML and both argv) as JSON without starting anything.
This module imports only the standard library so it works in the Gazebo image with ``--no-deps``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pytest_simtwin.errors import ModelError
from pytest_simtwin.sim.topics import BridgeEntry
from pytest_simtwin.sim.world.resources import Resolver
from pytest_simtwin.sim.world.xmltree import Element

EXIT_USAGE = 2
EXIT_MISSING_TOOL = 127

#: ROS type -> gz type of each bridged topic kind (ros_gz_bridge's documented pairs).
GZ_TYPES = {
    "geometry_msgs/msg/Twist": "gz.msgs.Twist",
    "geometry_msgs/msg/TwistStamped": "gz.msgs.Twist",
    "nav_msgs/msg/Odometry": "gz.msgs.Odometry",
    "sensor_msgs/msg/LaserScan": "gz.msgs.LaserScan",
    "sensor_msgs/msg/JointState": "gz.msgs.Model",
    "rosgraph_msgs/msg/Clock": "gz.msgs.Clock",
}
TOPIC_KINDS = ("cmd_vel", "odom", "scan", "joint_states", "clock")


@dataclass
class RobotTopics:
    """Where a robot's topics live on the Gazebo side, and their ROS names."""

    world: str
    model: str
    cmd_vel_gz: str
    odom_gz: str
    scan_gz: str | None
    joint_states_gz: str
    clock_gz: str = "/clock"
    cmd_vel_type: str = "twist"
    ros_names: dict[str, str] = field(
        default_factory=lambda: {k: f"/{k}" for k in ("cmd_vel", "odom", "scan", "joint_states", "clock")}
    )
    only: tuple[str, ...] = TOPIC_KINDS

    @classmethod
    def for_model(
        cls,
        world: str,
        model: str,
        *,
        cmd_vel_type: str = "twist",
        only: Sequence[str] = TOPIC_KINDS,
        scan_gz: str | None = "/scan",
    ) -> RobotTopics:
        """Gazebo's default topic names for a DiffDrive model (plugin parameters not overridden)."""
        unknown = [t for t in only if t not in TOPIC_KINDS]
        if unknown:
            raise ValueError(f"unknown topic kind(s) {', '.join(unknown)}: expected some of {', '.join(TOPIC_KINDS)}")
        return cls(
            world=world,
            model=model,
            cmd_vel_gz=f"/model/{model}/cmd_vel",
            odom_gz=f"/model/{model}/odometry",
            scan_gz=scan_gz,
            joint_states_gz=f"/world/{world}/model/{model}/joint_state",
            cmd_vel_type=cmd_vel_type,
            only=tuple(only),
        )


def _gz_topic(text: str) -> str:
    """gz-transport topic names are absolute; a relative ``<topic>`` gets a leading slash."""
    text = text.strip()
    return text if text.startswith("/") else f"/{text}"


def _is_diff_drive(plugin: ET.Element) -> bool:
    ident = f"{plugin.get('filename', '')} {plugin.get('name', '')}".lower()
    return "diff-drive" in ident or "diffdrive" in ident or "diff_drive" in ident


def _included_models(world_el: ET.Element, path: Path) -> list[ET.Element]:
    """The ``<model>`` of each ``<include>`` of the world, named as the include names it.

    URIs resolve as Gazebo resolves them (``model://`` through GZ_SIM_RESOURCE_PATH and friends,
    ``package://``, paths relative to the world file); a URDF include has no Gazebo plugins to read.
    """

    resolver = Resolver()
    found: list[ET.Element] = []
    for include in world_el.findall("include"):
        uri = (include.findtext("uri") or "").strip()
        if not uri:
            raise ValueError(f"world file {path}: an <include> without <uri>; expected e.g. <uri>model://NAME</uri>")
        where = Element("include", {}, path, 0)
        try:
            model_file = resolver.model_file(resolver.resolve(uri, path.parent, where), where)
            root = ET.parse(model_file).getroot()
        except ModelError as exc:
            raise ValueError(f"world file {path}: {exc}") from None
        except (OSError, ET.ParseError) as exc:
            raise ValueError(f"world file {path}: included {uri} cannot be read as SDF ({exc})") from None
        model_el = root.find("model") if root.tag == "sdf" else None
        if model_el is None:
            continue
        name = (include.findtext("name") or "").strip()
        if name:
            model_el.set("name", name)
        model_el.extend(include.findall("plugin"))  # SDF 1.9: plugins added by the include
        found.append(model_el)
    return found


def topics_from_sdf(path: Path, *, model: str | None = None, cmd_vel_type: str = "twist") -> RobotTopics:
    """Read the world name and the robot's topics from an SDF world (DiffDrive, lidar, joint states).

    Raises ``ValueError`` naming the file when it is not SDF or has no world / diff-drive model.
    """
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise ValueError(f"world file {path}: cannot read it as SDF ({exc}); expected an <sdf><world> file") from None
    world_el = root.find("world") if root.tag == "sdf" else None
    if world_el is None:
        raise ValueError(f"world file {path}: expected <sdf><world name=...>, found <{root.tag}> without a <world>")
    world_name = world_el.get("name") or "default"
    models = [*world_el.iter("model"), *_included_models(world_el, path)]
    candidates = [m for m in models if any(_is_diff_drive(p) for p in m.iter("plugin"))]
    if model is not None:
        candidates = [m for m in models if m.get("name") == model]
    if not candidates:
        wanted = f"a model named {model!r}" if model else "a model with a DiffDrive plugin (gz-sim-diff-drive-system)"
        raise ValueError(f"world file {path}: expected {wanted} in world {world_name!r}, found none")
    model_el = candidates[0]
    name = model_el.get("name") or "robot"
    topics = RobotTopics.for_model(world_name, name, cmd_vel_type=cmd_vel_type, scan_gz=None)
    for plugin in model_el.iter("plugin"):
        if _is_diff_drive(plugin):
            if (t := plugin.findtext("topic")) and t.strip():
                topics.cmd_vel_gz = _gz_topic(t)
            if (t := plugin.findtext("odom_topic")) and t.strip():
                topics.odom_gz = _gz_topic(t)
        elif "joint-state-publisher" in plugin.get("filename", "").lower() and (t := plugin.findtext("topic")):
            topics.joint_states_gz = _gz_topic(t)
    for link in model_el.iter("link"):
        for sensor in link.iter("sensor"):
            if sensor.get("type") in ("gpu_lidar", "lidar", "gpu_ray", "ray"):
                t = sensor.findtext("topic")
                topics.scan_gz = (
                    _gz_topic(t)
                    if t and t.strip()
                    else (f"/world/{world_name}/model/{name}/link/{link.get('name')}/sensor/{sensor.get('name')}/scan")
                )
                break
        if topics.scan_gz:
            break
    return topics


def bridge_entries(topics: RobotTopics) -> list[BridgeEntry]:
    """The bridge entries for the selected topic kinds (a robot without a lidar gets no scan entry)."""
    cmd_type = "geometry_msgs/msg/TwistStamped" if topics.cmd_vel_type == "twist_stamped" else "geometry_msgs/msg/Twist"
    table: list[tuple[str, str | None, str, str]] = [
        ("cmd_vel", topics.cmd_vel_gz, cmd_type, "ROS_TO_GZ"),
        ("odom", topics.odom_gz, "nav_msgs/msg/Odometry", "GZ_TO_ROS"),
        ("scan", topics.scan_gz, "sensor_msgs/msg/LaserScan", "GZ_TO_ROS"),
        ("joint_states", topics.joint_states_gz, "sensor_msgs/msg/JointState", "GZ_TO_ROS"),
        ("clock", topics.clock_gz, "rosgraph_msgs/msg/Clock", "GZ_TO_ROS"),
    ]
    return [
        BridgeEntry(topics.ros_names.get(kind, f"/{kind}"), gz, ros_type, GZ_TYPES[ros_type], direction)
        for kind, gz, ros_type, direction in table
        if kind in topics.only and gz
    ]


def _yaml_scalar(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(str(value))  # a JSON string is a valid double-quoted YAML scalar


def bridge_yaml(topics: RobotTopics | Sequence[BridgeEntry]) -> str:
    """The ros_gz_bridge ``config_file`` text: a YAML list, one mapping per topic."""
    entries = bridge_entries(topics) if isinstance(topics, RobotTopics) else list(topics)
    lines = ["# ros_gz_bridge configuration generated by pytest-simtwin"]
    for entry in entries:
        fields = asdict(entry)
        first = True
        for key, value in fields.items():
            if key == "lazy" and not value:
                continue
            prefix = "- " if first else "  "
            lines.append(f"{prefix}{key}: {_yaml_scalar(value) if key != 'direction' else value}")
            first = False
    return "\n".join(lines) + "\n"


def gz_server_command(
    world: Path | str, *, verbose: int = 3, seed: int | None = None, iterations: int | None = None, gz: str = "gz"
) -> list[str]:
    """``gz sim -s -r --headless-rendering [-v N] [--seed S] [--iterations N] WORLD``."""
    argv = [gz, "sim", "-s", "-r", "--headless-rendering", "-v", str(verbose)]
    if seed is not None:
        argv += ["--seed", str(seed)]
    if iterations is not None:
        argv += ["--iterations", str(iterations)]
    return [*argv, str(world)]


def bridge_command(config_file: Path | str, *, ros2: str = "ros2") -> list[str]:
    return [ros2, "run", "ros_gz_bridge", "parameter_bridge", "--ros-args", "-p", f"config_file:={config_file}"]


# -- entrypoint ------------------------------------------------------------------------------------
@dataclass
class Plan:
    world: str
    partition: str
    bridge_file: str
    bridge_yaml: str
    gz_argv: list[str]
    bridge_argv: list[str]
    env: dict[str, str]


class EntrypointError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def make_plan(world: str | None, env: Mapping[str, str], *, workdir: Path, model: str | None = None) -> Plan:
    """Everything the entrypoint would run, checked; raises :class:`EntrypointError` on bad input."""
    world = world or env.get("SIMTWIN_WORLD")
    if not world:
        raise EntrypointError(
            "no world given: expected a world SDF as the first argument or in SIMTWIN_WORLD "
            "(mount it read-only, e.g. -v $PWD/worlds:/worlds:ro)",
            EXIT_USAGE,
        )
    world_path = Path(world)
    if not world_path.is_file():
        raise EntrypointError(
            f"world file {world} not found inside the container: expected an SDF file; mount its folder "
            f"read-only at the same path",
            EXIT_USAGE,
        )
    path = env.get("PATH", os.defpath)
    missing = [tool for tool in ("gz", "ros2") if shutil.which(tool, path=path) is None]
    if missing:
        raise EntrypointError(
            f"{' and '.join(missing)} not found on PATH ({path}): this entrypoint needs Gazebo (gz sim) and "
            f"ROS 2 with ros_gz_bridge, as in osrf/ros:<distro>-simulation-<os>; source /opt/ros/<distro>/setup.sh "
            f"or use the docker/gazebo image",
            EXIT_MISSING_TOOL,
        )
    try:
        topics = topics_from_sdf(
            world_path,
            model=model or env.get("SIMTWIN_MODEL") or None,
            cmd_vel_type=env.get("SIMTWIN_CMD_VEL_TYPE", "twist"),
        )
    except ValueError as exc:
        raise EntrypointError(str(exc), EXIT_USAGE) from None
    given = env.get("SIMTWIN_BRIDGE_YAML")
    if given:
        bridge_file = Path(given)
        if not bridge_file.is_file():
            raise EntrypointError(f"SIMTWIN_BRIDGE_YAML={given}: file not found; mount it or unset it", EXIT_USAGE)
        text = bridge_file.read_text()
    else:
        bridge_file = workdir / "bridge.yaml"
        text = bridge_yaml(topics)
    partition = env.get("GZ_PARTITION") or f"simtwin_{socket.gethostname()}_{env.get('ROS_DOMAIN_ID', '0')}"
    child_env = {**env, "GZ_PARTITION": partition}
    seed = env.get("SIMTWIN_SEED")
    return Plan(
        world=str(world_path),
        partition=partition,
        bridge_file=str(bridge_file),
        bridge_yaml=text,
        gz_argv=gz_server_command(
            world_path, seed=int(seed) if seed else None, gz=shutil.which("gz", path=path) or "gz"
        ),
        bridge_argv=bridge_command(bridge_file, ros2=shutil.which("ros2", path=path) or "ros2"),
        env=child_env,
    )


def _supervise(plan: Plan) -> int:
    """Run gz and the bridge; stop both when one exits, on SIGTERM, or when stdin closes (guard)."""
    Path(plan.bridge_file).parent.mkdir(parents=True, exist_ok=True)
    if not Path(plan.bridge_file).exists():
        Path(plan.bridge_file).write_text(plan.bridge_yaml)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if plan.env.get("SIMTWIN_STDIN_GUARD") == "1":

        def guard() -> None:
            sys.stdin.buffer.read()
            print("simtwin gazebo: stdin closed (the test process is gone); stopping", file=sys.stderr)
            stop.set()

        threading.Thread(target=guard, daemon=True).start()
    argvs = (plan.gz_argv, plan.bridge_argv)
    procs = [subprocess.Popen(argv, env=plan.env, stdin=subprocess.DEVNULL) for argv in argvs]
    code = 0
    while not stop.is_set():
        done = [i for i, p in enumerate(procs) if p.poll() is not None]
        if done:
            code = procs[done[0]].returncode or 0
            print(f"simtwin gazebo: {argvs[done[0]][0]} exited with code {code}; stopping", file=sys.stderr)
            break
        time.sleep(0.1)
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pytest_simtwin.backends.gazebo run [--dry-run] [--model NAME] [WORLD]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="simtwin-gazebo", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="start gz sim + ros_gz_bridge for WORLD")
    run.add_argument("world", nargs="?")
    run.add_argument("--model")
    run.add_argument("--dry-run", action="store_true", help="print the plan as JSON and exit")
    args = parser.parse_args(argv)
    workdir = Path(os.environ.get("SIMTWIN_WORKDIR") or tempfile.mkdtemp(prefix="simtwin-gz-"))
    try:
        plan = make_plan(args.world, os.environ, workdir=workdir, model=args.model)
    except EntrypointError as exc:
        print(f"simtwin gazebo: error: {exc}", file=sys.stderr)
        return exc.code
    if args.dry_run:
        shown = asdict(plan)
        shown["env"] = {k: v for k, v in plan.env.items() if k.startswith(("GZ_", "ROS_", "SIMTWIN_", "RMW_"))}
        print(json.dumps(shown, indent=2))
        return 0
    print(
        f"simtwin gazebo: GZ_PARTITION={plan.partition}\n$ {' '.join(plan.gz_argv)}\n$ {' '.join(plan.bridge_argv)}",
        file=sys.stderr,
        flush=True,
    )
    return _supervise(plan)


if __name__ == "__main__":
    raise SystemExit(main())
