"""TurtleBot3 Waffle Pi + OpenMANIPULATOR-X (ROBOTIS-GIT/turtlebot3_manipulation, ``use_sim:=true``).

Its base drives on gazebo_ros_diff_drive; its arm runs on gazebo_ros2_control, whose
gazebo_controller_manager.yaml claims joint1..4 with a JointTrajectoryController (position command
interfaces) and the gripper with a GripperActionController. The simulator holds those joints with
gz_ros2_control's position loop, and moves the arm on ``/arm_controller/joint_trajectory``.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest
from public_robot_checks import ament_prefix, run_xacro
from simproc import SimProcess
from test_multi_robot import pose, send

from pytest_simtwin._internal.waiting import wait_until
from pytest_simtwin.sim.world.sdf import load_world

ROBOTS = Path(__file__).resolve().parents[1] / "robots"
ROOT = ROBOTS / "turtlebot3_manipulation"
EMPTY = ROBOTS / "turtlebot3" / "turtlebot3_gazebo" / "worlds" / "empty_world.world"
PACKAGES = ("turtlebot3_manipulation_description", "turtlebot3_manipulation_bringup")
ARM = ["joint1", "joint2", "joint3", "joint4"]


def _urdf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    pytest.importorskip("xacro", reason="pip install xacro (dev extras) to expand the description")
    ament_prefix(tmp_path, ROOT, PACKAGES, monkeypatch)
    # as turtlebot3_manipulation_bringup's base.launch.py runs it for Gazebo
    main = ROOT / "turtlebot3_manipulation_description" / "urdf" / "turtlebot3_manipulation.urdf.xacro"
    return run_xacro(main, tmp_path / "robot.urdf", use_sim="true")


def _start(sim_factory: Any, urdf: Path) -> SimProcess:
    sim: SimProcess = sim_factory(str(EMPTY), "--robot", str(urdf), "--paused", wait_topic="/odom")
    return sim


def _joints(sim: SimProcess) -> dict[str, float]:
    from sensor_msgs.msg import JointState

    buf = sim.ros.subscribe("/joint_states", JointState)
    stamp = float(sim.control.state()["sim_time"])

    def latest() -> Any:
        for m in reversed(buf.messages()):
            if m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 >= stamp - 0.05:
                return m
        return None

    msg = wait_until(latest, 10.0, what="a /joint_states message of the last step")
    return dict(zip(msg.name, msg.position, strict=True))


def _trajectory(sim: SimProcess, names: list[str], points: list[tuple[float, list[float]]]) -> None:
    """Publish one JointTrajectory (zero stamp: starts when applied) until the simulator counted it."""
    from builtin_interfaces.msg import Duration
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    msg = JointTrajectory()
    msg.joint_names = names
    for t, positions in points:
        p = JointTrajectoryPoint()
        p.positions = positions
        p.time_from_start = Duration(sec=int(t), nanosec=round((t - int(t)) * 1e9))
        msg.points.append(p)
    before = int(sim.control.state()["joint_command_count"])
    pub = sim.ros.publisher("/arm_controller/joint_trajectory", JointTrajectory)
    wait_until(
        lambda: int(sim.control.state()["joint_command_count"]) > before or pub.publish(msg),
        10.0,
        what="the simulator counting the JointTrajectory",
    )


def test_the_arm_is_held_by_its_controllers_and_the_robot_stays_level_while_driving(
    sim_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    urdf = _urdf(tmp_path, monkeypatch)
    world = load_world(EMPTY, urdf)
    servos = {s.joint: s for s in world.robot.servos}
    assert set(servos) == {*ARM, "gripper_left_joint", "gripper_right_joint"}
    assert servos["gripper_right_joint"].mimic == ("gripper_left_joint", 1.0)
    assert world.robot.servo_gain == pytest.approx(0.1 * 1000)  # gain 0.1 x update_rate 1000 Hz
    [arm] = world.robot.position_controllers
    assert (arm.name, arm.topic, arm.joints) == ("arm_controller", "/arm_controller/joint_trajectory", ARM)
    assert any("gripper_controller" in w and "action is not simulated" in w for w in world.warnings)

    sim = _start(sim_factory, urdf)
    sim.control.step(duration=1.0)
    idle = _joints(sim)
    start = pose(sim, world.robot.name)
    send(sim, "/cmd_vel", 0.2)
    sim.control.step(duration=2.0)
    send(sim, "/cmd_vel", 0.0)
    moved = pose(sim, world.robot.name)
    sim.control.step(duration=0.5)
    end = pose(sim, world.robot.name)
    after = _joints(sim)
    drove = math.hypot(moved["x"] - start["x"], moved["y"] - start["y"])
    print(f"drove {drove:.3f} m, pitch {end['pitch']:.4f}, roll {end['roll']:.4f}, idle arm {idle}, after {after}")
    assert drove == pytest.approx(0.40, abs=0.06)
    # level at rest and at full speed (the arm held forward; braking at max_wheel_acceleration 1 m/s^2
    # then tips it onto the base's front edge: its centre of mass is 4 mm behind the wheel axle)
    for p in (start, moved):
        assert max(abs(p["roll"]), abs(p["pitch"])) < 0.02, p
    for joint in ARM:  # initial_value 0 of the state interfaces: held there, also while driving
        assert abs(idle[joint]) < 0.01 and abs(after[joint]) < 0.02, (joint, idle, after)
    assert abs(after["gripper_left_joint"]) < 0.002 and abs(after["gripper_right_joint"]) < 0.002


def test_a_joint_trajectory_moves_the_arm_in_sim_time_and_a_bad_one_is_logged(
    sim_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = _start(sim_factory, _urdf(tmp_path, monkeypatch))
    sim.control.step(duration=0.5)
    target = [0.5, -0.4, 0.3, 0.6]
    _trajectory(sim, ARM, [(1.0, [0.25, -0.2, 0.15, 0.3]), (2.0, target)])
    sim.control.step(duration=1.0)
    half = _joints(sim)
    for joint, want in zip(ARM, target, strict=True):  # halfway in time: halfway there (linear)
        assert half[joint] == pytest.approx(want / 2, abs=0.03), (joint, half)
    sim.control.step(duration=1.1)
    reached = _joints(sim)
    for joint, want in zip(ARM, target, strict=True):
        assert reached[joint] == pytest.approx(want, abs=0.02), (joint, reached)

    _trajectory(sim, ["joint1", "elbow"], [(1.0, [0.0, 0.0])])
    sim.control.step(duration=1.0)
    held = _joints(sim)
    for joint, want in zip(ARM, target, strict=True):  # rejected: the arm holds the last target
        assert held[joint] == pytest.approx(want, abs=0.02), (joint, held)
    wait_until(
        lambda: "arm_controller" in sim.log() and "elbow" in sim.log() and "rejected" in sim.log(),
        5.0,
        what="the simulator log naming the rejected trajectory",
        describe=lambda: sim.log()[-2000:],
    )
    assert sim.proc.poll() is None


def test_a_joint_group_position_controller_takes_float64_multi_array_commands(
    sim_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same arm under a position_controllers/JointGroupPositionController: ``~/commands`` positions."""
    from std_msgs.msg import Float64MultiArray

    urdf = _urdf(tmp_path, monkeypatch)
    original = ROOT / "turtlebot3_manipulation_bringup" / "config" / "gazebo_controller_manager.yaml"
    group = tmp_path / "group_controllers.yaml"
    text = original.read_text().replace(
        "joint_trajectory_controller/JointTrajectoryController", "position_controllers/JointGroupPositionController"
    )
    group.write_text(text)
    edited = tmp_path / "group.urdf"
    robot, count = re.subn(r"<parameters>[^<]*gazebo_controller_manager\.yaml</parameters>",
                           f"<parameters>{group}</parameters>", urdf.read_text())  # fmt: skip
    assert count == 1
    edited.write_text(robot)
    [arm] = load_world(EMPTY, edited).robot.position_controllers
    assert (arm.kind, arm.topic) == ("group", "/arm_controller/commands")
    sim = _start(sim_factory, edited)
    sim.control.step(duration=0.2)
    before = int(sim.control.state()["joint_command_count"])
    pub = sim.ros.publisher("/arm_controller/commands", Float64MultiArray)
    target = [-0.3, 0.2, -0.2, 0.4]
    wait_until(
        lambda: int(sim.control.state()["joint_command_count"]) > before or pub.publish(Float64MultiArray(data=target)),
        10.0,
        what="the simulator counting the commands",
    )
    sim.control.step(duration=0.5)  # first-order lag of 100/s: there within 0.05 s
    reached = _joints(sim)
    for joint, want in zip(ARM, target, strict=True):
        assert reached[joint] == pytest.approx(want, abs=0.02), (joint, reached)
