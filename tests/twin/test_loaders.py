"""Loading real data: rosbag2 MCAP and sqlite3, ROS 1 bags, the JSON format, and their errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from pytest_simtwin.errors import DataError
from pytest_simtwin.ros.messages import yaw_from_quaternion
from pytest_simtwin.twin.calibrate import calibrate
from pytest_simtwin.twin.data import Trajectory
from pytest_simtwin.twin.loaders import CMD_TYPES, ODOM_TYPES, Topics, discover, load_trajectory
from pytest_simtwin.twin.model import DiffDriveParams

from .bagtools import quaternion_rpy, write_bag


def test_yaw_uses_the_full_quaternion() -> None:
    for yaw in (-3.0, -1.2, 0.0, 0.7, 2.9):
        q = quaternion_rpy(0.3, -0.2, yaw)
        assert yaw_from_quaternion(*q) == pytest.approx(yaw, abs=1e-9)
        assert abs(q[2] - math.sin(yaw / 2)) > 1e-3 or yaw == 0.0  # quaternion.z alone would be wrong


@pytest.mark.parametrize("kind", ["mcap", "sqlite3", "ros1"])
def test_bags_load_with_commands_and_joint_states(kind: str, short_run: Trajectory, tmp_path: Path) -> None:
    path = write_bag(
        short_run, tmp_path / ("run.bag" if kind == "ros1" else f"run_{kind}"), kind, roll_pitch=(0.05, -0.03)
    )
    traj = load_trajectory(path)
    assert len(traj) == len(short_run)
    assert traj.meta["time_source"] == "log"  # plain Twist commands have no stamp: one clock for all
    np.testing.assert_allclose(traj.t, short_run.t + 1e-3, atol=1e-6)
    np.testing.assert_allclose(traj.x, short_run.x, atol=1e-9)
    np.testing.assert_allclose(traj.theta, np.unwrap(short_run.theta), atol=1e-9)
    np.testing.assert_allclose(traj.vx, short_run.vx, atol=1e-12)
    np.testing.assert_allclose(traj.cmd_vx, short_run.cmd_vx)
    assert traj.joint_names == ["wheel_left_joint", "wheel_right_joint"]
    np.testing.assert_allclose(traj.joint_velocity, short_run.joint_velocity)


def test_single_mcap_file_and_stamped_commands_use_header_time(short_run: Trajectory, tmp_path: Path) -> None:
    run = short_run.shifted(1000.0)  # a zero stamp means "unset": start at a real epoch
    folder = write_bag(run, tmp_path / "stamped", "mcap", stamped_cmd=True)
    mcap = next(folder.glob("*.mcap"))
    traj = load_trajectory(mcap)
    assert traj.meta["time_source"] == "header"
    np.testing.assert_allclose(traj.t, run.t, atol=1e-6)
    np.testing.assert_allclose(traj.cmd_t, run.cmd_t, atol=1e-6)


def test_topic_names_are_configurable(short_run: Trajectory, tmp_path: Path) -> None:
    path = write_bag(short_run, tmp_path / "ns", "mcap", odom_topic="/robot1/odom", cmd_topic="/robot1/cmd_vel")
    traj = load_trajectory(path, topics=Topics(odom="/robot1/odom", cmd_vel="/robot1/cmd_vel"))
    assert traj.has_commands and len(traj) == len(short_run)


def test_topics_are_discovered_by_type(short_run: Trajectory, tmp_path: Path) -> None:
    path = write_bag(
        short_run, tmp_path / "other", "mcap", odom_topic="/wheel/odometry", cmd_topic="/teleop/cmd", stamped_cmd=True
    )
    traj = load_trajectory(path)  # the default names are absent: the one Odometry and TwistStamped topics are used
    assert len(traj) == len(short_run) and traj.has_commands
    assert traj.meta["topics"] == {"odom": "/wheel/odometry", "cmd_vel": "/teleop/cmd", "joint_states": "/joint_states"}


def test_ambiguous_or_missing_topics_list_what_the_bag_has(short_run: Trajectory, tmp_path: Path) -> None:
    present = {"/a/odom": "nav_msgs/msg/Odometry", "/b/odometry": "nav_msgs/msg/Odometry", "/scan": "x"}
    with pytest.raises(DataError, match=r"several .*/a/odom, /b/odometry.*--odom-topic"):
        discover(present, "/odometry/filtered", ODOM_TYPES, "odometry", "--odom-topic", tmp_path)
    assert discover(present, "/robot/odom", ODOM_TYPES, "odometry", "--odom-topic", tmp_path) == "/a/odom"
    assert discover(present, "/cmd_vel", CMD_TYPES, "command", "--cmd-vel-topic", tmp_path) is None
    # no command topic at all: calibration says so and lists the bag's topics
    bare = write_bag(short_run.replace(cmd_t=[], cmd_vx=[], cmd_vtheta=[]), tmp_path / "nocmd", "mcap")
    traj = load_trajectory(bare)
    with pytest.raises(DataError) as err:
        calibrate(traj, DiffDriveParams())
    msg = str(err.value)
    assert "Twist or TwistStamped" in msg and "/odom (nav_msgs/msg/Odometry)" in msg and "--cmd-vel-topic" in msg


def test_corrupt_and_unknown_files_raise_data_error(short_run: Trajectory, tmp_path: Path) -> None:
    folder = write_bag(short_run, tmp_path / "good", "mcap")
    mcap = next(folder.glob("*.mcap"))
    broken = tmp_path / "broken.mcap"
    broken.write_bytes(mcap.read_bytes()[: len(mcap.read_bytes()) // 3])
    with pytest.raises(DataError, match="cannot read this recording"):
        load_trajectory(broken)
    garbage = tmp_path / "garbage.bag"
    garbage.write_bytes(b"not a bag at all" * 10)
    with pytest.raises(DataError, match="cannot read this recording"):
        load_trajectory(garbage)
    with pytest.raises(DataError, match="no such file"):
        load_trajectory(tmp_path / "missing.mcap")
    other = tmp_path / "data.csv"
    other.write_text("x,y\n")
    with pytest.raises(DataError, match="unknown recording format"):
        load_trajectory(other)


def test_empty_odometry_topic(tmp_path: Path, short_run: Trajectory) -> None:
    only_cmds = short_run.replace(
        t=short_run.t[:0],
        x=short_run.x[:0],
        y=short_run.y[:0],
        theta=short_run.theta[:0],
        vx=short_run.vx[:0],
        vtheta=short_run.vtheta[:0],
        joint_t=short_run.joint_t[:0],
    )
    path = write_bag(only_cmds, tmp_path / "cmds", "mcap")
    with pytest.raises(DataError, match="no odometry topic"):
        load_trajectory(path)


def test_json_roundtrip(short_run: Trajectory, tmp_path: Path) -> None:
    path = short_run.save_json(tmp_path / "run.json")
    doc = json.loads(path.read_text())
    assert doc["format"] == "simtwin-trajectory/1"
    assert set(doc["samples"][0]) == {"timestamp", "odom", "joint_states"}
    assert set(doc["samples"][0]["odom"]) == {"x", "y", "theta", "vx", "vtheta"}
    back = load_trajectory(path)
    np.testing.assert_allclose(back.x, short_run.x, atol=1e-6)
    np.testing.assert_allclose(back.cmd_vtheta, short_run.cmd_vtheta, atol=1e-6)
    assert back.joint_position.shape == short_run.joint_position.shape


def test_json_list_form_and_missing_velocities(tmp_path: Path) -> None:
    samples = [
        {"source": "rover", "timestamp": 0.1 * i, "odom": {"x": 0.05 * i, "y": 0.0, "theta": 0.0}} for i in range(20)
    ]
    path = tmp_path / "list.json"
    path.write_text(json.dumps(samples))
    traj = load_trajectory(path)
    assert traj.source == "rover"
    np.testing.assert_allclose(traj.vx, 0.5, atol=1e-9)  # from finite differences of the pose


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("{not json", "not valid JSON"),
        ('{"samples": []}', "empty"),
        ('{"rows": []}', "'samples'"),
        ('{"samples": [{"timestamp": 1}]}', "odom"),
        ('{"samples": [{"timestamp": "soon", "odom": {"x": 0, "y": 0, "theta": 0}}]}', "expected a number"),
    ],
)
def test_malformed_json(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(DataError, match=match):
        load_trajectory(path)
