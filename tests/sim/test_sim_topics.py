"""Topic names from the robot's plugin parameters and ros_gz_bridge files (no ROS needed)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from simproc import SIM_COMMAND

from pytest_simtwin.errors import ConfigError
from pytest_simtwin.sim.topics import load_bridge, resolve_topics
from pytest_simtwin.sim.world.sdf import load_world

BRIDGE = """\
- ros_topic_name: /robot/cmd_vel
  gz_topic_name: cmd_vel
  ros_type_name: geometry_msgs/msg/TwistStamped
  gz_type_name: gz.msgs.Twist
  direction: ROS_TO_GZ
- ros_topic_name: /robot/scan
  gz_topic_name: /scan
  ros_type_name: sensor_msgs/msg/LaserScan
  gz_type_name: gz.msgs.LaserScan
  direction: GZ_TO_ROS
- ros_topic_name: /sim_clock
  gz_topic_name: /world/simtwin_arena/clock
  ros_type_name: rosgraph_msgs/msg/Clock
  gz_type_name: gz.msgs.Clock
  direction: GZ_TO_ROS
- topic_name: /camera
  ros_type_name: sensor_msgs/msg/Image
  gz_type_name: gz.msgs.Image
"""


def test_default_topics_come_from_the_plugin_parameters() -> None:
    t = resolve_topics(load_world(None))
    assert (t.cmd_vel, t.cmd_vel_type, t.odom, t.scan) == ("/cmd_vel", "twist", "/odom", "/scan")
    assert (t.frame_id, t.child_frame_id, t.lidar_frame_id) == ("odom", "base_footprint", "base_scan")
    assert t.ground_truth == "/simtwin/ground_truth" and t.clock == "/clock" and not t.notes
    assert (t.tf, t.tf_static) == ("/tf", "/tf_static")  # odom -> base_footprint, fixed joints


def test_bridge_renames_like_ros_gz_bridge(tmp_path: Path) -> None:
    path = tmp_path / "bridge.yaml"
    path.write_text(BRIDGE)
    t = resolve_topics(load_world(None), bridge=load_bridge(path), namespace="/sim2")
    assert t.cmd_vel == "/robot/cmd_vel" and t.cmd_vel_type == "twist_stamped"  # type from the bridge
    assert t.scan == "/robot/scan" and t.odom == "/odom" and t.clock == "/sim_clock"
    assert t.ground_truth == "/sim2/ground_truth"
    assert any("/camera" in n and "not served" in n for n in t.notes)
    # an explicit --cmd-vel-type wins, with a note
    t2 = resolve_topics(load_world(None), cmd_vel_type="twist", bridge=load_bridge(path))
    assert t2.cmd_vel_type == "twist" and any("overrides" in n for n in t2.notes)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- [unclosed", "not valid YAML"),
        ("ros_topic_name: /a", "expected a YAML list"),
        ("- ros_topic_name: /a\n  gz_topic_name: /b\n", "missing ros_type_name"),
        (
            "- {ros_topic_name: /a, gz_topic_name: /b, ros_type_name: std_msgs/msg/String, direction: SIDEWAYS}",
            "direction 'SIDEWAYS'",
        ),
    ],
)
def test_bad_bridge_files_are_explained(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bridge.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_bridge(path)
    assert str(path) in str(info.value)


def test_bridge_type_must_fit_the_topic(tmp_path: Path) -> None:
    path = tmp_path / "bridge.yaml"
    path.write_text("- {ros_topic_name: /o, gz_topic_name: /odom, ros_type_name: std_msgs/msg/String}\n")
    with pytest.raises(ConfigError, match="expected nav_msgs/msg/Odometry"):
        resolve_topics(load_world(None), bridge=load_bridge(path))


def test_cli_bad_bridge_and_pose_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "bridge.yaml"
    path.write_text("not: a list\n")
    res = subprocess.run([SIM_COMMAND, "--check", "--bridge", str(path)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "expected a YAML list" in res.stderr and "Traceback" not in res.stderr
    res = subprocess.run([SIM_COMMAND, "--check", "--robot-pose", "1,2"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "X,Y,YAW" in res.stderr
