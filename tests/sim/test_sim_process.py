"""The embedded simulator as users and the plugin see it: a real ``simtwin-sim`` process on real DDS.

Motion is commanded the deterministic way (pause, publish, wait for ``cmd_count``, step exactly the
duration) so the tests run as fast as the simulator steps and do not depend on the machine's load.
"""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from simproc import SIM_COMMAND, SimProcess, wait_log

from pytest_simtwin._internal.waiting import wait_until
from pytest_simtwin.errors import ControlError
from pytest_simtwin.sim.world.model import WorldSpec


def _world() -> WorldSpec:
    from pytest_simtwin.sim.world.sdf import load_world

    return load_world(None)


def _yaw(q: Any) -> float:
    return math.atan2(2 * (q.w * q.z + q.x * q.y), 1 - 2 * (q.y * q.y + q.z * q.z))


def command(sim: SimProcess, vx: float, wz: float = 0.0, stamped: bool = False) -> None:
    """Publish one command while paused and wait until the simulator counted it."""
    from geometry_msgs.msg import Twist, TwistStamped

    before = int(sim.control.state()["cmd_count"])
    if stamped:
        msg: Any = TwistStamped()
        msg.header.frame_id = "base_footprint"
        msg.twist.linear.x, msg.twist.angular.z = vx, wz
        pub = sim.ros.publisher("/cmd_vel", TwistStamped)
    else:
        msg = Twist()
        msg.linear.x, msg.angular.z = vx, wz
        pub = sim.ros.publisher("/cmd_vel", Twist)
    # Publish until counted: a freshly created publisher may not be matched yet.
    wait_until(
        lambda: int(sim.control.state()["cmd_count"]) > before or pub.publish(msg),
        10.0,
        what=f"the simulator to count the command ({vx}, {wz})",
        interval=0.05,
    )


def truth(sim: SimProcess) -> dict[str, Any]:
    robot = sim.control.state()["robot"]
    return sim.control.get_entity_state(robot)


def latest_at(sim: SimProcess, topic: str, state: dict[str, Any], msg_type: Any = None, rate: float = 30.0) -> Any:
    """The last message on ``topic`` published by the steps up to ``state`` (a step's reply).

    Topics are published every round(1 / (rate * step)) steps of sim time (the robot's odometry at
    30 Hz, its lidar at 5 Hz), so the last one is stamped at the last multiple of that period.
    """
    from nav_msgs.msg import Odometry

    dt, steps = state["step_size"], state["steps"]
    every = max(1, round(1.0 / (rate * dt)))
    expected = (steps // every) * every * dt
    buf = sim.ros.subscribe(topic, msg_type or Odometry)

    def probe() -> Any:
        for m in reversed(buf.messages()):
            if abs(m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 - expected) < dt / 2:
                return m
        return None

    return wait_until(probe, 5.0, what=f"a message on {topic} stamped {expected:.3f}")


@pytest.fixture
def sim(sim_factory: Any) -> SimProcess:
    s: SimProcess = sim_factory("--paused")
    from nav_msgs.msg import Odometry

    s.ros.subscribe("/simtwin/ground_truth", Odometry)
    return s


def test_forward_half_metre_per_second_for_two_seconds_moves_one_metre(sim: SimProcess) -> None:
    start = truth(sim)["pose"]
    command(sim, 0.5)
    sim.control.step(duration=2.0)
    command(sim, 0.0)
    st = sim.control.step(duration=1.0)
    end = truth(sim)["pose"]
    dist = math.hypot(end["x"] - start["x"], end["y"] - start["y"])
    assert dist == pytest.approx(1.0, abs=0.05)
    # the ground truth topic agrees with the entity state, and odometry with the truth on flat ground
    gt = latest_at(sim, "/simtwin/ground_truth", st)
    assert gt.pose.pose.position.x == pytest.approx(end["x"], abs=1e-6)
    odom = latest_at(sim, "/odom", st)
    assert odom.header.frame_id == "odom" and odom.child_frame_id == "base_footprint"
    assert odom.pose.pose.position.x == pytest.approx(end["x"] - start["x"], abs=0.02)
    assert odom.pose.covariance[0] > 0 and odom.twist.covariance[35] > 0


def test_rotation_half_radian_per_second_for_three_seconds_turns_one_and_a_half_radians(sim: SimProcess) -> None:
    command(sim, 0.0, 0.5)
    sim.control.step(duration=3.0)
    command(sim, 0.0, 0.0)
    st = sim.control.step(duration=1.0)
    yaw = truth(sim)["pose"]["yaw"]
    assert yaw == pytest.approx(1.5, abs=0.05)
    odom = latest_at(sim, "/odom", st)
    q = odom.pose.pose.orientation
    assert q.x**2 + q.y**2 + q.z**2 + q.w**2 == pytest.approx(1.0, abs=1e-9)
    assert _yaw(q) == pytest.approx(1.5, abs=0.05)


def test_zero_command_stops_within_half_a_second(sim: SimProcess) -> None:
    command(sim, 0.5)
    st = sim.control.step(duration=1.5)
    assert latest_at(sim, "/odom", st).twist.twist.linear.x == pytest.approx(0.5, abs=0.02)
    command(sim, 0.0)
    st = sim.control.step(duration=0.5)
    odom = latest_at(sim, "/odom", st)
    assert abs(odom.twist.twist.linear.x) < 0.02
    assert abs(truth(sim)["twist"]["vx"]) < 0.02


def test_step_until_rest_stops_early_and_checks_its_request(sim: SimProcess) -> None:
    robot = sim.control.state()["robot"]
    rest = {"name": robot, "linear": 0.01, "angular": 0.02, "chunk": 0.05}
    st0 = sim.control.step(duration=2.0, until_rest=rest)  # at rest already: not a single step
    assert st0["at_rest"] is True and st0["steps"] == sim.control.state()["steps"]
    before = sim.control.step(duration=0.004)["steps"]
    assert sim.control.step(duration=2.0, until_rest=rest)["steps"] == before  # still at rest
    command(sim, 0.5)
    sim.control.step(duration=1.0)
    command(sim, 0.0)
    st = sim.control.step(duration=2.0, until_rest=rest)
    stepped = (st["steps"] - before) * st["step_size"] - 1.0
    # braking from 0.5 m/s takes a few chunks (whole steps nearest 0.05 s), far less than the 2 s allowed
    chunk = round(0.05 / st["step_size"]) * st["step_size"]
    assert st["at_rest"] is True and chunk <= stepped < 1.0
    assert stepped / chunk == pytest.approx(round(stepped / chunk), abs=1e-6)
    assert abs(truth(sim)["twist"]["vx"]) < 0.01
    command(sim, 0.5)
    moving = sim.control.step(duration=0.5)
    st = sim.control.step(duration=0.2, until_rest=rest)  # never at rest: the whole duration
    assert st["at_rest"] is False and st["steps"] - moving["steps"] == round(0.2 / st["step_size"])
    with pytest.raises(ControlError, match="no entity named 'nobody'"):
        sim.control.step(duration=0.1, until_rest={"name": "nobody"})
    with pytest.raises(ControlError, match=r"until_rest\.chunk must be a positive number, found -1"):
        sim.control.step(duration=0.1, until_rest={"name": robot, "chunk": -1})
    assert "until_rest" in sim.control.features()["features"]


def test_ten_metres_per_second_is_clamped_to_the_limit(sim: SimProcess) -> None:
    limit = sim.control.features()["topics"]["max_linear_velocity"]
    assert limit == pytest.approx(0.6)
    sim.control.set_entity_state(sim.control.state()["robot"], pose={"x": -2.5, "y": 0.0, "yaw": 0.0})
    command(sim, 10.0)
    st = sim.control.step(duration=1.5)
    odom = latest_at(sim, "/odom", st)
    assert odom.twist.twist.linear.x == pytest.approx(limit, abs=0.01)
    tw = truth(sim)["twist"]
    assert math.hypot(tw["vx"], tw["vy"]) == pytest.approx(limit, abs=0.02)


def test_lidar_sees_a_box_spawned_one_metre_ahead(sim: SimProcess) -> None:
    from sensor_msgs.msg import LaserScan

    robot = _world().robot
    lidar = robot.lidars[0]
    link = robot.link(lidar.link)
    sensor_x = link.pose.x + lidar.pose.x  # robot at the origin facing +x, link not rotated
    size = 0.2
    sim.control.spawn("target", "box", [size, 0.6, 0.5], {"x": sensor_x + 1.0 + size / 2, "y": 0.0, "z": 0.25})
    assert "target" in sim.control.entities()
    st = sim.control.step(duration=0.4)  # at least one scan period (5 Hz)
    scan = latest_at(sim, "/scan", st, LaserScan, rate=5.0)
    ahead = round((0.0 - scan.angle_min) / scan.angle_increment)
    assert scan.header.frame_id == "base_scan" and len(scan.ranges) == lidar.samples
    sigma = max(lidar.noise_stddev, 1e-3)
    # the beam straight ahead and its neighbours all hit the flat face (the box is 0.6 m wide)
    readings = [scan.ranges[(ahead + k) % len(scan.ranges)] for k in (-2, -1, 0, 1, 2)]
    assert abs(readings[2] - 1.0) <= 3 * sigma, readings
    # neighbours at ±1°, ±2° see the face at 1/cos(angle), also within 3 sigma
    for k, r in zip((-2, -1, 1, 2), readings[:2] + readings[3:], strict=True):
        assert abs(r - 1.0 / math.cos(math.radians(k))) <= 3 * sigma, readings
    behind = round((math.pi - scan.angle_min) / scan.angle_increment)
    assert scan.ranges[behind] > 2.0  # the corridor behind is free up to the wall
    sim.control.delete("target")
    assert "target" not in sim.control.entities()


def test_full_speed_into_a_wall_stays_outside(sim: SimProcess) -> None:
    world = _world()
    robot = world.robot
    # the front-most point of the robot's collision geometry, relative to the base
    front = max(
        link.pose.x + g.pose.x + (g.size[0] / 2 if g.kind == "box" else g.size[0])
        for link in robot.links
        for g in link.collisions
    )
    command(sim, 0.6)
    sim.control.step(duration=8.0)  # 3 m to the east wall: it arrives and keeps pushing
    pose = truth(sim)["pose"]
    assert pose["x"] > 2.5, "the robot never reached the wall"
    assert pose["x"] + front <= 3.0 + 0.01  # wall face at x = 3.0; 1 cm of soft contact allowed


def _lockstep_run(sim: SimProcess) -> list[tuple[float, ...]]:
    out = []
    for vx, wz, dur in [(0.5, 0.0, 1.0), (0.3, 1.0, 0.8), (0.0, -0.7, 0.6), (0.0, 0.0, 0.5)]:
        command(sim, vx, wz)
        st = sim.control.step(duration=dur)
        o = latest_at(sim, "/odom", st)
        p, q, t = o.pose.pose.position, o.pose.pose.orientation, o.twist.twist
        out.append((st["sim_time"], p.x, p.y, q.z, q.w, t.linear.x, t.angular.z))
    return out


def test_lockstep_same_seed_same_commands_identical_odometry(sim_factory: Any) -> None:
    a: SimProcess = sim_factory("--lockstep", "--seed", "7", name="a")
    b: SimProcess = sim_factory("--lockstep", "--seed", "7", name="b")
    assert a.control.state()["lockstep"] is True
    with pytest.raises(ControlError, match="lockstep"):
        a.control.play()
    run_a, run_b = _lockstep_run(a), _lockstep_run(b)
    assert run_a == run_b  # bit-identical, not approximately equal
    assert run_a[-1][1] > 0.4  # and the robot did move


def test_twist_stamped_mode(sim_factory: Any) -> None:
    sim: SimProcess = sim_factory("--paused", "--cmd-vel-type", "twist_stamped")
    assert sim.control.features()["topics"]["cmd_vel_type"] == "twist_stamped"
    command(sim, 0.5, stamped=True)
    sim.control.step(duration=1.0)
    assert truth(sim)["pose"]["x"] > 0.4


def test_wrong_command_type_is_reported_clearly(sim_factory: Any) -> None:
    from geometry_msgs.msg import TwistStamped

    sim: SimProcess = sim_factory("--paused", "--cmd-vel-type", "twist")  # explicit: only Twist
    assert sim.control.features()["topics"]["cmd_vel_types"] == ["twist"]
    sim.ros.publisher("/cmd_vel", TwistStamped).publish(TwistStamped())
    log = wait_log(sim, "geometry_msgs/msg/TwistStamped on /cmd_vel")
    assert "geometry_msgs/msg/Twist " in log and "--cmd-vel-type any or twist_stamped" in log
    assert sim.control.state()["cmd_count"] == 0


@pytest.mark.parametrize(
    ("sig", "mode"),
    [(signal.SIGTERM, "--paused"), (signal.SIGINT, "--rtf=0"), (signal.SIGTERM, "--rtf=1")],
)
def test_signal_exits_within_one_second_with_code_zero(sim_factory: Any, sig: int, mode: str) -> None:
    sim: SimProcess = sim_factory(mode)
    t0 = time.monotonic()
    sim.proc.send_signal(sig)
    assert sim.wait_exit(5.0) == 0, sim.log()
    assert time.monotonic() - t0 < 1.0, sim.log()
    assert "Traceback" not in sim.log()


def test_late_subscriber_sees_the_state_while_paused(sim: SimProcess) -> None:
    from sensor_msgs.msg import JointState

    st = sim.control.state()
    assert st["state"] == "paused"
    # nobody listened to /joint_states so far: the paused simulator re-sends its state to the newcomer
    msg = sim.ros.wait_for_message("/joint_states", JointState, timeout=5.0, since=0.0)
    assert "wheel_left_joint" in msg.name
    assert sim.control.state()["steps"] == st["steps"]  # nothing was stepped to produce it


def test_a_new_subscriber_of_a_playing_simulator_gets_the_last_scan_at_once(sim_factory: Any) -> None:
    from sensor_msgs.msg import LaserScan

    sim = sim_factory("--rtf=1")
    wait_until(lambda: sim.control.state()["sim_time"] > 0.3, 10.0, what="a few scan periods of sim time")
    joined_at = float(sim.control.state()["sim_time"])
    msg = sim.ros.wait_for_message("/scan", LaserScan, timeout=5.0, since=0.0)
    stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
    # The scan computed before it subscribed (nobody else heard it: no one gets it twice), not the next one.
    assert 0.0 < stamp <= joined_at, (stamp, joined_at)


def test_bad_world_file_exits_2_with_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "broken.sdf"
    bad.write_text('<?xml version="1.0"?>\n<sdf version="1.9">\n  <world name="w">\n    <model name="m">\n</sdf>\n')
    res = subprocess.run([SIM_COMMAND, str(bad)], capture_output=True, text=True, timeout=30)
    assert res.returncode == 2, res.stderr
    assert re.search(r"broken\.sdf:\d+", res.stderr), res.stderr  # file:line
    assert "Traceback" not in res.stderr
    missing = subprocess.run([SIM_COMMAND, str(tmp_path / "nope.sdf")], capture_output=True, text=True, timeout=30)
    assert missing.returncode == 2 and "nope.sdf" in missing.stderr and "does not exist" in missing.stderr


def test_parent_death_ends_the_simulator(sim_factory: Any) -> None:
    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        sim: SimProcess = sim_factory("--parent-pid", str(parent.pid))
        assert sim.proc.poll() is None
    finally:
        parent.kill()
        parent.wait()
    assert sim.wait_exit(3.0) == 0
    assert f"parent process {parent.pid} exited" in sim.log()


def test_bridge_file_renames_topics(sim_factory: Any, tmp_path: Path) -> None:
    bridge = tmp_path / "bridge.yaml"
    bridge.write_text(
        "- ros_topic_name: /robot/cmd_vel\n  gz_topic_name: /cmd_vel\n"
        "  ros_type_name: geometry_msgs/msg/TwistStamped\n  gz_type_name: gz.msgs.Twist\n  direction: ROS_TO_GZ\n"
        "- ros_topic_name: /robot/odom\n  gz_topic_name: /odom\n"
        "  ros_type_name: nav_msgs/msg/Odometry\n  gz_type_name: gz.msgs.Odometry\n  direction: GZ_TO_ROS\n"
    )
    sim: SimProcess = sim_factory("--paused", "--bridge", str(bridge), wait_topic="/robot/odom")
    topics = sim.control.features()["topics"]
    assert topics["cmd_vel"] == "/robot/cmd_vel" and topics["cmd_vel_type"] == "twist_stamped"
    assert topics["odom"] == "/robot/odom" and topics["scan"] == "/scan"
    from geometry_msgs.msg import TwistStamped

    msg = TwistStamped()
    msg.twist.linear.x = 0.5
    pub = sim.ros.publisher("/robot/cmd_vel", TwistStamped)
    wait_until(lambda: sim.control.state()["cmd_count"] > 0 or pub.publish(msg), 10.0, what="command counted")
    st = sim.control.step(duration=1.0)
    assert latest_at(sim, "/robot/odom", st).pose.pose.position.x > 0.4


def test_real_time_pacing_and_state(sim_factory: Any) -> None:
    sim: SimProcess = sim_factory()
    s0, w0 = sim.control.state()["sim_time"], time.monotonic()
    wait_until(lambda: time.monotonic() - w0 > 1.0, 2.0, what="1 s of wall time")
    st = sim.control.state()
    ratio = (st["sim_time"] - s0) / (time.monotonic() - w0)
    assert 0.7 < ratio < 1.2
    assert st["state"] == "playing" and st["rtf_target"] == 1.0
    assert 0.7 < st["rtf_measured"] < 1.3
    with pytest.raises(ControlError, match="pause it first"):
        sim.control.step(steps=1)
    assert sim.control.pause()["state"] == "paused"
    t = sim.control.state()["sim_time"]
    st = sim.control.step(steps=10)
    assert st["sim_time"] == pytest.approx(t + 10 * st["step_size"], abs=1e-9)
    assert sim.control.reset("time")["sim_time"] == 0.0


def test_play_with_pause_at_stops_exactly_there(sim_factory: Any) -> None:
    sim: SimProcess = sim_factory("--paused")
    st = sim.control.play(pause_at=0.5)
    assert st["state"] == "playing"
    st = wait_until(
        lambda: s if (s := sim.control.state())["state"] == "paused" else None,
        10.0,
        what="the simulator to pause itself",
    )
    assert st["sim_time"] == pytest.approx(0.5, abs=1e-9)  # to the step, whatever the load
    with pytest.raises(ControlError, match=r"pause_at 0\.1: expected a sim time not before now"):
        sim.control.play(pause_at=0.1)
    assert "pause_at" in sim.control.features()["features"]


def test_check_prints_summary_without_ros(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROS_")}
    res = subprocess.run([SIM_COMMAND, "--check"], capture_output=True, text=True, timeout=60, env=env)
    assert res.returncode == 0, res.stderr
    assert "DiffDrive" in res.stdout and "/cmd_vel" in res.stdout and "lidar" in res.stdout


def test_clock_joint_states_and_refusals(sim: SimProcess) -> None:
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import JointState

    clock = sim.ros.subscribe("/clock", Clock)
    joints = sim.ros.subscribe("/joint_states", JointState)
    command(sim, 0.5)
    st = sim.control.step(duration=1.0)
    js = latest_at(sim, "/joint_states", st, JointState)
    assert set(js.name) >= {"wheel_left_joint", "wheel_right_joint"}
    left = js.velocity[js.name.index("wheel_left_joint")]
    assert left == pytest.approx(0.5 / 0.033, rel=0.05)  # rad/s of a 0.033 m wheel at 0.5 m/s
    stamps = [m.clock.sec + m.clock.nanosec * 1e-9 for m in clock.messages()]
    assert stamps and max(stamps) <= st["sim_time"] + 1e-9
    # At most 100 Hz of sim time. A late joiner's re-send of the current instant (republish_last)
    # may add a stamp off the 12 ms grid, so count distinct stamps instead of checking every gap.
    distinct = sorted(set(stamps))
    assert 10 <= len(distinct) <= 100 + 2, distinct
    off_grid = [t for t in distinct if round(t / st["step_size"]) % 3]  # periodic: every 3rd 4 ms step
    assert len(off_grid) <= 2, off_grid
    assert joints.count > 0
    # refusals carry the simulator's explanation
    with pytest.raises(ControlError, match="no entity named 'ghost'"):
        sim.control.get_entity_state("ghost")
    with pytest.raises(ControlError, match="scope 'everything'"):
        sim.control.reset("everything")
    sim.control.spawn("crate", "box", [0.2, 0.2, 0.2], {"x": -1.0, "y": 0.0, "z": 0.1})
    with pytest.raises(ControlError, match="'crate' exists"):
        sim.control.spawn("crate", "box", [0.2, 0.2, 0.2], {"x": -1.0})
    assert sim.control.spawn("crate", "box", [0.2, 0.2, 0.2], {"x": -1.5}, allow_renaming=True) == "crate_1"
    with pytest.raises(ControlError, match="size"):
        sim.control.spawn("bad", "sphere", [0.1, 0.2], {"x": 1.0})
    assert sim.control.reset("all")["sim_time"] == 0.0
    assert "crate" not in sim.control.entities()
    assert truth(sim)["pose"]["x"] == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("mode", ["--paused", "--rtf=0"])
def test_control_call_before_the_first_odometry_is_answered(sim_factory: Any, mode: str) -> None:
    # The services exist before the loop runs: a request that arrives in between must still be served.
    sim: SimProcess = sim_factory(mode, wait_topic=None)
    st = sim.control.state()
    assert st["world"] == "simtwin_arena" and st["state"] == ("paused" if mode == "--paused" else "playing")


SIM_TIME_NODE = """
import sys, time
import rclpy
from rclpy.parameter import Parameter
rclpy.init()
node = rclpy.create_node("sim_time_user", parameter_overrides=[Parameter("use_sim_time", value=True)])
deadline = time.time() + 15
while time.time() < deadline:
    rclpy.spin_once(node, timeout_sec=0.05)
    now = node.get_clock().now().nanoseconds * 1e-9
    if now >= 2.0:
        print(f"{now:.4f}")
        sys.exit(0)
sys.exit(f"the node's clock stayed at {now}")
"""


def test_a_node_with_use_sim_time_follows_the_clock(sim: SimProcess) -> None:
    import subprocess as sp

    node = sp.Popen([sys.executable, "-c", SIM_TIME_NODE], env=sim.env, stdout=sp.PIPE, stderr=sp.PIPE, text=True)
    try:
        # time advances only by stepping: the node's clock can only reach 2 s through /clock
        sim.control.step(duration=1.0)
        sim.control.step(duration=1.5)
        out, err = node.communicate(timeout=20)
    finally:
        node.kill()
    assert node.returncode == 0, err
    assert 2.0 <= float(out) <= 2.5 + 1e-9


STALLED_READER = """
import sys, time, rclpy
from rclpy.context import Context
from rclpy.qos import QoSProfile, ReliabilityPolicy
from nav_msgs.msg import Odometry
from rosgraph_msgs.msg import Clock
ctx = Context(); ctx.init(); node = rclpy.create_node("stalled_reader", context=ctx)
qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
subs = [node.create_subscription(t, n, lambda m: None, qos) for t, n in ((Clock, "/clock"), (Odometry, "/odom"))]
print("subscribed", flush=True)
time.sleep(120)  # never spins, never acknowledges: a reader that has fallen far behind
"""


def test_a_frozen_reliable_reader_does_not_stall_the_simulator(sim_factory: Any) -> None:
    """A node under test that hangs (here SIGSTOPped) must not block the simulator's publishing."""
    sim: SimProcess = sim_factory("--rtf", "0")
    reader = subprocess.Popen([sys.executable, "-c", STALLED_READER], env=sim.env, stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout is not None and reader.stdout.readline().strip() == "subscribed"
        os.kill(reader.pid, signal.SIGSTOP)  # its DDS threads stop too: no acknowledgements at all
        t0 = sim.control.state()["sim_time"]
        # 20 s of sim time is thousands of /clock and /odom samples, far beyond the writers' history
        wait_until(
            lambda: sim.control.state()["sim_time"] > t0 + 20.0,
            30.0,
            what="sim time to advance 20 s past a frozen reader",
            describe=lambda: sim.log()[-2000:],
        )
        assert sim.proc.poll() is None, sim.log()
    finally:
        os.kill(reader.pid, signal.SIGKILL)
        reader.wait()
