"""The issue-15 checks for a public robot, as one helper: drive 0.2 m/s for 2 s, turn 0.5 rad/s for 2 s,
stay level, and see a spawned box 1 m ahead of each lidar on the topic its bridge / plugin names."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from simproc import SimProcess
from test_multi_robot import pose, send
from test_sim_process import latest_at

from pytest_simtwin.sim.topics import resolve_topics
from pytest_simtwin.sim.world.model import Pose, WorldSpec


@dataclass
class Outcome:
    """What the robot did (ground truth), kept for the assertion messages and the docs table."""

    distance: float = 0.0
    turned: float = 0.0
    drift: float = 0.0
    tilt: float = 0.0
    ranges: dict[str, float] = field(default_factory=dict)


def _tilt(p: dict[str, float]) -> float:
    return max(abs(p["roll"]), abs(p["pitch"]))


def _sensor_world(model: dict[str, float], sensor: Pose) -> tuple[float, float, float, float]:
    """x, y, z, heading of a sensor (pose in the model frame) for a level model at ``model``."""
    c, s = math.cos(model["yaw"]), math.sin(model["yaw"])
    return (
        model["x"] + sensor.x * c - sensor.y * s,
        model["y"] + sensor.x * s + sensor.y * c,
        model["z"] + sensor.z,
        model["yaw"] + sensor.yaw,
    )


def see_boxes(
    sim: SimProcess, world: WorldSpec, name: str, bridge: Any = (), distance: float = 1.0
) -> dict[str, float]:
    """Spawn a box ``distance`` ahead of each horizontal lidar of robot ``name``; return topic -> range."""
    from sensor_msgs.msg import LaserScan

    robot = next(m for m in world.models if m.name == name)
    scans = resolve_topics(world, bridge=bridge).scans  # the primary robot's (the first with a drive)
    assert scans, f"{name}: no lidar topics"
    here = pose(sim, name)
    seen: dict[str, float] = {}
    expected: dict[str, float] = {}
    for scan_topic in scans:
        lidar = robot.lidars[scan_topic.index] if scan_topic.index < len(robot.lidars) else None
        assert lidar is not None and lidar.name == scan_topic.name, (scan_topic, robot.lidars)
        sensor = robot.link(lidar.link).pose * lidar.pose
        if abs(sensor.pitch) > 0.2 or (abs(sensor.roll) > 0.2 and abs(abs(sensor.roll) - math.pi) > 0.2):
            continue  # a cliff / floor sensor: nothing to place in front of it
        aim = 0.0 if lidar.min_angle <= 0.0 <= lidar.max_angle else (lidar.min_angle + lidar.max_angle) / 2
        sx, sy, sz, heading = _sensor_world(here, sensor)
        d = max(min(distance, 0.6 * lidar.range_max), lidar.range_min + 0.1)  # ToF sensors reach < 1 m
        depth = 0.1
        centre = d + depth / 2
        direction = heading + aim
        box = {"x": sx + centre * math.cos(direction), "y": sy + centre * math.sin(direction),
               "z": max(sz, 0.3), "yaw": direction}  # fmt: skip
        sim.control.spawn("target", "box", [depth, 0.8, max(0.6, 2 * sz + 0.1)], box)
        st = sim.control.step(duration=max(0.3, 2.5 / lidar.update_rate))
        msg = latest_at(sim, scan_topic.topic, st, LaserScan, rate=lidar.update_rate)
        beam = round((aim - msg.angle_min) / msg.angle_increment) if msg.angle_increment else 0
        seen[scan_topic.topic] = float(msg.ranges[beam])
        sim.control.delete("target")
        sim.control.step(duration=0.05)
        expected[scan_topic.topic] = d + lidar.noise_mean  # the file's noise <mean> biases every reading
    assert seen == pytest.approx(expected, abs=0.05), f"{name}: range at the box per topic {seen} (expected {expected})"
    return seen


def drive_turn_and_look(
    sim: SimProcess,
    world: WorldSpec,
    name: str,
    cmd: str,
    *,
    stamped: bool = False,
    bridge: Any = (),
    turn: float | None = 1.0,
    turn_tolerance: float = 0.15,
    settle: float = 0.5,
    lidars: bool = True,
) -> Outcome:
    """The issue-15 checks on robot ``name`` (commands on ``cmd``); ``turn`` None: only measured."""
    out = Outcome()
    sim.control.step(duration=settle)  # settle on the ground
    start = pose(sim, name)
    send(sim, cmd, 0.2, stamped=stamped)
    sim.control.step(duration=2.0)
    send(sim, cmd, 0.0, stamped=stamped)
    sim.control.step(duration=1.0)
    moved = pose(sim, name)
    out.distance = math.hypot(moved["x"] - start["x"], moved["y"] - start["y"])
    out.tilt = _tilt(moved)
    assert out.distance == pytest.approx(0.40, abs=0.06), (start, moved)
    assert out.tilt < 0.03, moved

    if lidars:
        out.ranges = see_boxes(sim, world, name, bridge)

    send(sim, cmd, 0.0, 0.5, stamped=stamped)
    sim.control.step(duration=2.0)
    send(sim, cmd, 0.0, 0.0, stamped=stamped)
    sim.control.step(duration=1.0)
    end = pose(sim, name)
    out.turned = math.remainder(end["yaw"] - moved["yaw"], 2 * math.pi)
    out.drift = math.hypot(end["x"] - moved["x"], end["y"] - moved["y"])
    out.tilt = max(out.tilt, _tilt(end))
    if turn is not None:
        assert out.turned == pytest.approx(turn, abs=turn_tolerance), out
    assert out.tilt < 0.03, end
    print(f"{name}: {out}")  # the numbers of docs/robots-and-topics.md's table (pytest -s)
    return out


def ament_prefix(tmp_path: Path, root: Path, packages: Sequence[str], monkeypatch: pytest.MonkeyPatch) -> Path:
    """An ament prefix holding ``root``'s package folders as `colcon build` installs them (share/<package>
    + the ament index marker), on AMENT_PREFIX_PATH so `$(find pkg)` and `package://` resolve."""
    prefix = tmp_path / "install"
    index = prefix / "share" / "ament_index" / "resource_index" / "packages"
    index.mkdir(parents=True)
    for package in packages:
        (prefix / "share" / package).symlink_to(root / package)
        (index / package).touch()
    monkeypatch.setenv("AMENT_PREFIX_PATH", str(prefix))
    return prefix


def run_xacro(path: Path, out: Path, **mappings: str) -> Path:
    """`xacro PATH name:=value ...` as a launch file's Command substitution runs it; the output file."""
    import xacro

    out.write_text(xacro.process_file(str(path), mappings=mappings).toprettyxml(indent="  "))
    return out


CREATE3 = Path(__file__).resolve().parents[1] / "robots" / "create3"  # vendored iRobot Create 3 description


def create3_urdf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The Create 3 description expanded as its Gazebo (ignition) launch does, without a namespace."""
    pytest.importorskip("xacro", reason="pip install xacro (dev extras) to expand the Create 3 description")
    ament_prefix(tmp_path, CREATE3, ("irobot_create_description", "irobot_create_control"), monkeypatch)
    return run_xacro(
        CREATE3 / "irobot_create_description" / "urdf" / "create3.urdf.xacro", tmp_path / "create3.urdf",
        gazebo="ignition", namespace="", visualize_rays="false",
    )  # fmt: skip
