"""Several robots, several lidars and both command types, through the real simulator and real topics."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from simproc import SimProcess

from pytest_simtwin._internal.waiting import wait_until

ROBOTS = Path(__file__).resolve().parents[1] / "robots"
DIFF_DRIVE = ROBOTS / "gz_sim" / "examples" / "worlds" / "diff_drive.sdf"


def send(sim: SimProcess, topic: str, vx: float, wz: float = 0.0, *, stamped: bool = False) -> None:
    """Publish one command while paused until the simulator counted it."""
    from geometry_msgs.msg import Twist, TwistStamped

    before = int(sim.control.state()["cmd_count"])
    if stamped:
        msg: Any = TwistStamped()
        msg.twist.linear.x, msg.twist.angular.z = vx, wz
    else:
        msg = Twist()
        msg.linear.x, msg.angular.z = vx, wz
    pub = sim.ros.publisher(topic, TwistStamped if stamped else Twist)
    wait_until(
        lambda: int(sim.control.state()["cmd_count"]) > before or pub.publish(msg),
        10.0,
        what=f"the simulator to count a command on {topic}",
        interval=0.05,
    )


def pose(sim: SimProcess, name: str) -> dict[str, float]:
    return dict(sim.control.call("get_entity_state", name=name)["pose"])


def test_two_diff_drive_vehicles_each_on_their_own_topics(sim_factory: Any) -> None:
    from nav_msgs.msg import Odometry

    sim: SimProcess = sim_factory(str(DIFF_DRIVE), "--paused", wait_topic="/model/vehicle_green/odometry")
    features = sim.control.features()["topics"]
    assert features["robot"] == "vehicle_blue"
    robots = features["robots"]
    assert set(robots) == {"vehicle_blue", "vehicle_green"}
    assert robots["vehicle_green"]["cmd_vel"] == "/model/vehicle_green/cmd_vel"
    assert robots["vehicle_green"]["odom"] == "/model/vehicle_green/odometry"
    assert robots["vehicle_blue"]["frame_id"] == "vehicle_blue/odom"
    blue_odom = sim.ros.subscribe("/model/vehicle_blue/odometry", Odometry)
    green_odom = sim.ros.subscribe("/model/vehicle_green/odometry", Odometry)
    green_truth = sim.ros.subscribe("/simtwin/vehicle_green/ground_truth", Odometry)
    blue0, green0 = pose(sim, "vehicle_blue"), pose(sim, "vehicle_green")

    send(sim, "/model/vehicle_blue/cmd_vel", 0.4)  # Twist, as gz's bridge sends it
    sim.control.step(duration=3.0)
    blue1, green1 = pose(sim, "vehicle_blue"), pose(sim, "vehicle_green")
    assert blue1["x"] - blue0["x"] > 0.6, (blue0, blue1)  # 0.4 m/s for 3 s, 1 m/s^2 ramp, fixed-ball caster
    assert math.hypot(green1["x"] - green0["x"], green1["y"] - green0["y"]) < 0.02  # the other one stays

    send(sim, "/model/vehicle_green/cmd_vel", -0.4, stamped=True)  # TwistStamped on the same kind of topic
    send(sim, "/model/vehicle_blue/cmd_vel", 0.0)
    state = sim.control.step(duration=3.0)
    green2 = pose(sim, "vehicle_green")
    assert green2["x"] - green1["x"] < -0.6, (green1, green2)
    # each odometry topic reports its own robot (wheel odometry starts at 0 in its odom frame)
    t = state["odom_stamps"]["vehicle_green"]
    wait_until(lambda: (m := green_odom.latest()) is not None and _stamp(m) >= t - 1e-6, 5.0, what="green odom")
    assert green_odom.latest().pose.pose.position.x == pytest.approx(green2["x"] - green0["x"], abs=0.1)
    assert green_odom.latest().header.frame_id == "vehicle_green/odom"
    wait_until(lambda: blue_odom.latest() is not None, 5.0, what="blue odom (1 Hz)")
    assert blue_odom.latest().pose.pose.position.x > 0.5
    wait_until(lambda: green_truth.latest() is not None, 5.0, what="green ground truth")
    assert green_truth.latest().pose.pose.position.y == pytest.approx(-2.0, abs=0.1)


def _stamp(msg: Any) -> float:
    return float(msg.header.stamp.sec) + float(msg.header.stamp.nanosec) * 1e-9


MULTI_LIDAR = Path(__file__).parent / "data" / "worlds" / "multi_lidar.sdf"


def test_every_lidar_on_its_own_topic_and_the_2d_lidar_is_the_scan(sim_factory: Any) -> None:
    from sensor_msgs.msg import LaserScan

    sim: SimProcess = sim_factory(str(MULTI_LIDAR), "--paused", wait_topic="/model/lidar_bot/odometry")
    topics = sim.control.features()["topics"]
    # the 2-D lidar is "the scan" although two 1-ray ToF sensors come first in the file
    assert topics["scan"] == "/demo/scan" and topics["lidar_frame_id"] == "laser_frame"
    assert [s["topic"] for s in topics["scans"]] == ["/range/left", "/range/right", "/demo/scan"]
    bufs = {t: sim.ros.subscribe(t, LaserScan) for t in ("/range/left", "/range/right", "/demo/scan")}
    # a wall 1 m ahead of the robot's front (x 1.2), wide enough for both ToF sensors
    sim.control.call("spawn_entity", name="wall", shape="box", size=[0.2, 2.0, 1.0], pose={"x": 1.3, "z": 0.5})
    state = sim.control.step(duration=0.2)
    want = state["scan_stamps"]

    def fresh(topic: str) -> Any:
        msg = bufs[topic].latest()
        return msg if msg is not None and _stamp(msg) >= want[topic] - 1e-6 else None

    for topic in bufs:
        wait_until(lambda t=topic: fresh(t), 5.0, what=f"a scan on {topic} after the step")
    left, right, laser = (fresh(t) for t in ("/range/left", "/range/right", "/demo/scan"))
    assert len(left.ranges) == 1 and len(right.ranges) == 1 and len(laser.ranges) == 360
    # ToF sensors at x 0.2 of the chassis, the wall face at x 1.2: 1.0 m
    assert left.ranges[0] == pytest.approx(1.0, abs=0.02) and right.ranges[0] == pytest.approx(1.0, abs=0.02)
    ahead = laser.ranges[180]  # angle 0 of -pi..pi
    assert ahead == pytest.approx(1.05, abs=0.03)  # the laser is at x 0.15
    assert laser.header.frame_id == "laser_frame" and left.header.frame_id != laser.header.frame_id
    assert math.isinf(laser.ranges[0])  # nothing behind


def test_twist_and_twist_stamped_on_one_topic_by_default(sim_factory: Any) -> None:
    from geometry_msgs.msg import TwistStamped

    from pytest_simtwin.ros.session import RosSession

    sim: SimProcess = sim_factory("--paused")
    assert sim.control.features()["topics"]["cmd_vel_types"] == ["twist", "twist_stamped"]
    start = pose(sim, "simtwin_bot")
    send(sim, "/cmd_vel", 0.3)  # a Humble node: Twist
    sim.control.step(duration=1.0)
    mid = pose(sim, "simtwin_bot")
    assert mid["x"] - start["x"] == pytest.approx(0.3, abs=0.05)
    # a Jazzy node in another process (one DDS participant cannot hold both types on one topic)
    with RosSession(sim.lease.domain_id, sim.env, name="simtwin_jazzy_node") as jazzy:
        before = int(sim.control.state()["cmd_count"])
        msg = TwistStamped()
        msg.twist.angular.z = 0.5
        pub = jazzy.publisher("/cmd_vel", TwistStamped)
        wait_until(
            lambda: int(sim.control.state()["cmd_count"]) > before or pub.publish(msg),
            10.0,
            what="the simulator to count the TwistStamped command",
            interval=0.05,
        )
        sim.control.step(duration=2.0)
    end = pose(sim, "simtwin_bot")
    turned = math.atan2(math.sin(end["yaw"] - mid["yaw"]), math.cos(end["yaw"] - mid["yaw"]))
    assert turned == pytest.approx(1.0, abs=0.15)
    assert "publishes" not in sim.log()  # no wrong-type error for either publisher


def test_a_robots_lidar_sees_the_other_robot(sim_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sensor_msgs.msg import LaserScan

    models = Path(__file__).parent / "data" / "models"
    world = tmp_path / "two_bots.sdf"
    world.write_text(
        '<?xml version="1.0"?><sdf version="1.9"><world name="two">'
        '<model name="ground_plane"><static>true</static><link name="l"><collision name="c"><geometry><plane>'
        "<normal>0 0 1</normal></plane></geometry></collision></link></model>"
        "<include><name>bot1</name><uri>model://test_bot</uri></include>"
        # raised 0.1 m so that bot1's lidar (z 0.22) meets bot2's chassis box (z 0.2-0.3) at t = 0
        "<include><name>bot2</name><uri>model://test_bot</uri><pose>2 0 0.1 0 0 0</pose></include>"
        "</world></sdf>"
    )
    monkeypatch.setenv("GZ_SIM_RESOURCE_PATH", str(models))  # the simulator inherits it through start_sim
    sim: SimProcess = sim_factory(str(world), "--paused", wait_topic="/model/bot1/odometry")
    topic = "/world/two/model/bot1/link/chassis/sensor/front_lidar/scan"
    scans = sim.ros.subscribe(topic, LaserScan)  # paused: the t = 0 scan is re-sent to a new subscriber
    msg = wait_until(scans.latest, 5.0, what="bot1's scan")
    assert _stamp(msg) == 0.0
    ahead = msg.ranges[len(msg.ranges) // 2]  # angle 0
    # bot1's lidar at x 0.15 of its chassis; bot2's chassis box's back face at x 2 - 0.2 = 1.8 (robots are
    # in different geom groups: a lidar skips only its own robot)
    assert ahead == pytest.approx(1.65, abs=0.03)


def test_tf_topics_follow_the_plugins_and_the_bridge(tmp_path: Path) -> None:
    from pytest_simtwin.sim.topics import load_bridge, resolve_topics, static_transforms
    from pytest_simtwin.sim.world.sdf import load_world

    world = load_world(DIFF_DRIVE)
    t = resolve_topics(world)
    # gz DiffDrive: odom -> base on its <tf_topic>, default /model/<name>/tf, frames <model>/...
    assert [(r.robot, r.tf) for r in t.robots] == [
        ("vehicle_blue", "/model/vehicle_blue/tf"),
        ("vehicle_green", "/model/vehicle_green/tf"),
    ]
    bridge = tmp_path / "bridge.yaml"
    bridge.write_text(
        "- {ros_topic_name: /tf, gz_topic_name: /model/vehicle_blue/tf, ros_type_name: tf2_msgs/msg/TFMessage,"
        " gz_type_name: gz.msgs.Pose_V, direction: GZ_TO_ROS}\n"
    )
    assert resolve_topics(world, bridge=load_bridge(bridge)).tf == "/tf"  # as TurtleBot3's bridge maps it
    # /tf_static frames of a gz robot carry its model name like its odometry frames
    assert [r.frame_prefix for r in t.robots] == ["vehicle_blue/", "vehicle_green/"]
    for parent, child, _pose in static_transforms(world, t):
        assert parent.split("/")[0] == child.split("/")[0] in ("vehicle_blue", "vehicle_green")
