"""ros2_control robots (gz_ros2_control + diff_drive_controller) through the real simulator and real topics."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from simproc import SimProcess
from test_multi_robot import pose, send

from pytest_simtwin._internal.waiting import wait_until
from pytest_simtwin.errors import ModelError
from pytest_simtwin.sim.topics import resolve_topics
from pytest_simtwin.sim.world.sdf import load_world

DEMOS = Path(__file__).resolve().parents[1] / "robots" / "gz_ros2_control_demos"
URDF = DEMOS / "urdf" / "test_diff_drive.xacro.urdf"
YAML = DEMOS / "config" / "diff_drive_controller_velocity.yaml"
EMPTY = """<?xml version="1.0"?>
<sdf version="1.9"><world name="empty">
<model name="ground_plane"><static>true</static><link name="link"><collision name="c"><geometry><plane>
<normal>0 0 1</normal></plane></geometry></collision></link></model>
</world></sdf>
"""


def _empty(tmp_path: Path) -> Path:
    path = tmp_path / "empty.sdf"
    path.write_text(EMPTY)
    return path


def test_controller_yaml_is_read_like_diff_drive_controller(tmp_path: Path) -> None:
    world = load_world(_empty(tmp_path), robot=URDF)
    dd = world.robot.diff_drive
    assert dd is not None
    assert (dd.left_joints, dd.right_joints, dd.wheel_separation, dd.wheel_radius) == (
        ["left_wheel_joint"],
        ["right_wheel_joint"],
        1.25,
        0.3,
    )
    assert (dd.frame_id, dd.child_frame_id, dd.odom_publish_frequency) == ("odom", "chassis", 50.0)
    assert dd.open_loop and dd.publish_tf and dd.cmd_vel_type == "twist_stamped"
    assert (dd.min_linear_velocity, dd.max_linear_velocity, dd.max_linear_acceleration) == (-1.0, 1.0, 1.0)
    assert (dd.min_angular_acceleration, dd.max_angular_jerk) == (-1.0, math.inf)  # has_jerk_limits: false
    t = resolve_topics(world)
    assert (t.cmd_vel, t.odom, t.cmd_vel_type) == (
        "/diff_drive_base_controller/cmd_vel",
        "/diff_drive_base_controller/odom",
        "twist_stamped",
    )
    assert t.cmd_vel_types == ("twist_stamped", "twist")
    assert any("cmd_vel_timeout" in w for w in world.warnings)


def _variant(tmp_path: Path, plugin_extra: str = "", yaml_edit: tuple[str, str] | None = None) -> Path:
    """The vendored robot with its plugin given extra elements and/or an edited controller file."""
    folder = tmp_path / "gz_ros2_control_demos"
    (folder / "urdf").mkdir(parents=True)
    (folder / "config").mkdir()
    text = YAML.read_text()
    if yaml_edit is not None:
        assert yaml_edit[0] in text
        text = text.replace(*yaml_edit)
    (folder / "config" / YAML.name).write_text(text)
    urdf = URDF.read_text().replace("</parameters>", "</parameters>" + plugin_extra)
    (folder / "urdf" / URDF.name).write_text(urdf)
    return folder / "urdf" / URDF.name


def test_plugin_namespace_and_remappings_rename_the_topics(tmp_path: Path) -> None:
    extra = (
        "<ros><namespace>robot1</namespace>"
        "<remapping>/robot1/diff_drive_base_controller/cmd_vel:=/cmd_vel</remapping>"
        "<remapping>~/odom:=/odom</remapping></ros>"
    )
    humble = ("open_loop: true", "open_loop: false\n    use_stamped_vel: false\n    tf_frame_prefix: ~")
    t = resolve_topics(load_world(_empty(tmp_path), robot=_variant(tmp_path, extra, humble)))
    # Humble's use_stamped_vel: false subscribes Twist on ~/cmd_vel_unstamped (not remapped here)
    assert t.cmd_vel == "/robot1/diff_drive_base_controller/cmd_vel_unstamped" and t.cmd_vel_type == "twist"
    assert t.odom == "/odom"  # a global ~/odom rule applies to every node's ~/odom, the controller's too
    assert (t.frame_id, t.child_frame_id) == ("robot1/odom", "robot1/chassis")  # tf_frame_prefix "~"
    (tmp_path / "b").mkdir()
    t2 = resolve_topics(load_world(_empty(tmp_path / "b"), robot=_variant(tmp_path / "b", extra)))
    assert t2.cmd_vel == "/cmd_vel" and t2.cmd_vel_type == "twist_stamped"


@pytest.mark.parametrize(
    ("controller", "message"),
    [
        ("mecanum_drive_controller/MecanumDriveController", "is not yet supported"),
        ("joint_state_broadcaster/JointStateBroadcaster", "no diff_drive_controller/DiffDriveController"),
    ],
)
def test_other_drive_controllers_are_a_clear_error(tmp_path: Path, controller: str, message: str) -> None:
    edit = ("type: diff_drive_controller/DiffDriveController", f"type: {controller}")
    robot = _variant(tmp_path, yaml_edit=edit)
    with pytest.raises(ModelError, match=message) as info:
        load_world(_empty(tmp_path), robot=robot)
    assert "test_diff_drive.xacro.urdf:" in str(info.value) and "diff_drive_controller_velocity.yaml" in str(info.value)


def test_a_wheel_without_velocity_interface_is_refused(tmp_path: Path) -> None:
    robot = _variant(tmp_path)
    robot.write_text(
        robot.read_text().replace('<command_interface name="velocity">', '<command_interface name="effort">', 1)
    )
    with pytest.raises(ModelError, match=r"left_wheel_joint have no <command_interface name=\"velocity\">"):
        load_world(_empty(tmp_path), robot=robot)


def test_ros2_control_robot_drives_with_its_controller_topics(sim_factory: Any, tmp_path: Path) -> None:
    from nav_msgs.msg import Odometry

    sim: SimProcess = sim_factory(
        str(_empty(tmp_path)), "--robot", str(URDF), "--paused", wait_topic="/diff_drive_base_controller/odom"
    )
    topics = sim.control.features()["topics"]
    assert topics["cmd_vel"] == "/diff_drive_base_controller/cmd_vel" and topics["cmd_vel_type"] == "twist_stamped"
    odom = sim.ros.subscribe("/diff_drive_base_controller/odom", Odometry)
    start = pose(sim, "diff_drive")
    send(sim, "/diff_drive_base_controller/cmd_vel", 0.5, stamped=True)  # as a Jazzy node sends it
    sim.control.step(duration=2.0)
    send(sim, "/diff_drive_base_controller/cmd_vel", 0.0, stamped=True)
    state = sim.control.step(duration=1.0)
    end = pose(sim, "diff_drive")
    # 0.5 m/s for 2 s with the controller's 1 m/s^2 ramp: 0.875 m, then a 0.125 m ramp down
    travelled = math.hypot(end["x"] - start["x"], end["y"] - start["y"])
    assert travelled == pytest.approx(1.0, abs=0.1), (start, end)

    def last() -> Any:  # the step's last odometry (an earlier one may still be the newest arrived)
        m = odom.latest()
        ok = m is not None and m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 >= state["odom_stamp"] - 1e-6
        return m if ok else None

    msg = wait_until(last, 5.0, what="the odometry of the step's end")
    assert msg.header.frame_id == "odom" and msg.child_frame_id == "chassis"
    # open_loop: true integrates the commands, so odometry shows the commanded 1.0 m
    assert msg.pose.pose.position.x == pytest.approx(1.0, abs=0.02)


def test_tf_and_tf_static_as_robot_state_publisher_users_expect(sim_factory: Any, tmp_path: Path) -> None:
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

    from pytest_simtwin.sim import msgbuild

    msgbuild.ensure("tf2_msgs")  # not on PyPI: built from its .msg at first use (cached)
    from tf2_msgs.msg import TFMessage

    sim: SimProcess = sim_factory(
        str(_empty(tmp_path)), "--robot", str(URDF), "--paused", wait_topic="/diff_drive_base_controller/odom"
    )
    topics = sim.control.features()["topics"]
    assert (topics["tf"], topics["tf_static"]) == ("/tf", "/tf_static")
    latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE)
    static = sim.ros.subscribe("/tf_static", TFMessage, qos=latched)  # joins after it was sent: latched
    tf = sim.ros.subscribe("/tf", TFMessage)
    msg = sim.ros.wait_for_message("/tf_static", TFMessage, timeout=5.0, since=0.0)
    fixed = {(t.header.frame_id, t.child_frame_id): t.transform for t in msg.transforms}
    caster = fixed[("chassis", "caster")]  # the URDF's fixed caster_joint: origin -0.957138 0 0.2
    assert (caster.translation.x, caster.translation.z) == pytest.approx((-0.957138, 0.2), abs=1e-6)
    assert static.count >= 1
    send(sim, "/diff_drive_base_controller/cmd_vel", 0.5, stamped=True)
    state = sim.control.step(duration=1.0)

    def odom_tf() -> Any:
        for m in reversed(tf.messages()):
            t = m.transforms[0]
            if t.header.stamp.sec + t.header.stamp.nanosec * 1e-9 >= state["odom_stamp"] - 1e-6:
                return t
        return None

    t = wait_until(odom_tf, 5.0, what="the odom -> chassis transform after the step")
    assert (t.header.frame_id, t.child_frame_id) == ("odom", "chassis")
    assert t.transform.translation.x == pytest.approx(0.375, abs=0.02)  # 0.5 m/s after a 1 m/s^2 ramp, 1 s


def test_radius_multipliers_and_closed_loop_odometry(tmp_path: Path) -> None:
    """diff_drive_controller's calibration multipliers change the wheel commands and its odometry alike:
    a left radius assumed 10 % too large makes the real robot curve left while closed-loop odometry,
    computed with the same assumption, reports a straight line."""
    from pytest_simtwin.sim.engine.physics import Physics

    edit = ("left_wheel_radius_multiplier: 1.0", "left_wheel_radius_multiplier: 1.1")
    robot = _variant(tmp_path, yaml_edit=edit)
    robot.parent.parent.joinpath("config", YAML.name).write_text(
        robot.parent.parent.joinpath("config", YAML.name).read_text().replace("open_loop: true", "open_loop: false")
    )
    physics = Physics(load_world(_empty(tmp_path), robot=robot))
    assert physics.dd.left_radius_multiplier == 1.1 and not physics.dd.open_loop
    physics.set_command(0.5, 0.0)
    physics.step(round(3.0 / physics.step_size))
    truth, odom = physics.ground_truth(), physics.odometry()
    yaw = 2 * math.atan2(truth.qz, truth.qw)
    # left wheel at 0.5/1.1 m/s, right at 0.5: (0.5 - 0.4545) / 1.25 = 0.036 rad/s for ~2.75 s after the ramp
    assert yaw == pytest.approx(0.1, abs=0.02)
    assert abs(odom.yaw) < 0.02  # the controller's own model says: straight
