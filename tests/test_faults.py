"""Faults on demand, as users write them: pytester runs with the real simulator and real topics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_simtwin import faults
from pytest_simtwin.errors import ConfigError

FAULT_TESTS = '''
import math
import pytest
from pytest_simtwin import faults
from std_msgs.msg import String
from sensor_msgs.msg import LaserScan
from nav_msgs.msg import Odometry

pytestmark = pytest.mark.simtwin(paused=True)  # sim time moves only when the test steps it: exact windows


def _stamp(msg):
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


def test_blackout_stops_the_scan_then_clearing_restores_it(robot, sim, ros_node):
    robot.wait_for_scan()
    scans = ros_node.subscribe("/scan", LaserScan)
    handle = sim.inject(faults.sensor_blackout("/scan"))
    t0 = sim.state()["sim_time"]
    robot.wait(1.0)
    # by stamp, not by count: a scan sent before the fault (a paused simulator re-sends its last one for
    # a subscriber that just matched) can arrive during the wait on a loaded machine
    assert not [m for m in scans.messages() if _stamp(m) > t0 + 1e-6]
    handle.clear()
    robot.wait_for_scan()
    assert sim.record.faults and sim.record.faults[0]["kind"] == "blackout"


def test_a_fault_at_a_sim_time_with_a_duration(robot, sim, ros_node):
    scans = ros_node.subscribe("/scan", LaserScan)
    scans.clear()  # the session's buffer holds earlier tests' scans
    t0 = sim.state()["sim_time"]
    sim.inject(faults.sensor_blackout("/scan", at=t0 + 0.5, duration=1.0))
    robot.wait(2.5)
    stamps = [_stamp(m) for m in scans.messages() if _stamp(m) > t0]
    assert stamps and not [s for s in stamps if t0 + 0.5 + 1e-6 < s < t0 + 1.5 - 1e-6]
    assert any(s < t0 + 0.5 for s in stamps) and any(s >= t0 + 1.5 for s in stamps)


def test_rate_latency_and_stuck(robot, sim, ros_node):
    scans = ros_node.subscribe("/scan", LaserScan)
    scans.clear()
    t0 = sim.state()["sim_time"]
    sim.inject(faults.sensor_rate("/scan", 2.0, duration=2.0))
    robot.wait(2.0)
    # distinct stamps: a paused simulator re-sends its last scan (same stamp) for a subscriber that just matched
    assert 3 <= len({_stamp(m) for m in scans.messages() if _stamp(m) > t0}) <= 5
    sim.clear_faults()
    odom = ros_node.subscribe("/odom", Odometry)
    odom.clear()
    late = sim.inject(faults.sensor_latency("/odom", 0.3))
    t1 = sim.state()["sim_time"]
    robot.wait(1.0)
    newest = max(_stamp(m) for m in odom.messages())
    assert newest <= sim.state()["sim_time"] - 0.3 + 0.03, (newest, sim.state()["sim_time"])
    late.clear()
    sim.inject(faults.sensor_stuck("/odom"))
    robot.wait(0.1)
    stuck_at = robot.pose  # the reading the sensor repeats from now on
    robot.send_velocity(0.5, 0.0, 1.0)
    assert robot.ground_truth.x > stuck_at.x + 0.3
    assert abs(robot.pose.x - stuck_at.x) < 1e-9


def test_lidar_sector_and_noise(robot, sim):
    sim.spawn_obstacle("crate", "box", (0.3, 0.3, 0.5), x=1.5, y=0.0)
    assert robot.min_range((-5, 5), scan=robot.wait_for_scan()) < 1.5
    sim.inject(faults.lidar_sector(-30, 30))
    scan = robot.wait_for_scan()
    ahead = [r for i, r in enumerate(scan.ranges)
             if abs(math.degrees(scan.angle_min + i * scan.angle_increment)) < 29]
    assert ahead and all(math.isinf(r) for r in ahead)
    assert robot.min_range((-5, 5), scan=scan) == math.inf
    sim.clear_faults()
    clean = robot.wait_for_scan()
    sim.inject(faults.sensor_noise("/scan", 0.2))
    noisy = robot.wait_for_scan()
    spread = [abs(a - b) for a, b in zip(clean.ranges, noisy.ranges) if math.isfinite(a) and math.isfinite(b)]
    assert sum(spread) / len(spread) > 0.05


def test_odometry_bias_and_drift(robot, sim):
    sim.inject(faults.odom_bias(x=1.0))
    robot.wait(0.2)
    assert robot.pose.x == pytest.approx(robot.ground_truth.x + 1.0, abs=0.01)
    sim.clear_faults()
    sim.inject(faults.odom_drift(y=0.5))
    robot.wait(1.0)
    assert robot.pose.y - robot.ground_truth.y == pytest.approx(0.5, abs=0.06)


def test_command_faults(robot, sim):
    sim.inject(faults.cmd_drop(1.0))
    robot.send_velocity(0.5, 0.0, 1.0)
    assert abs(robot.ground_truth.x) < 0.01  # every command was lost
    sim.clear_faults()
    sim.inject(faults.cmd_delay(0.5))
    x0 = robot.ground_truth.x
    robot.send_velocity(0.5, 0.0, 1.0, stop=False)
    assert robot.ground_truth.x - x0 == pytest.approx(0.25, abs=0.06)  # moved only for the last 0.5 s
    sim.clear_faults()
    robot.send_velocity(0.4, 0.0, 0.5, stop=False)
    sim.inject(faults.cmd_freeze())
    x1 = robot.ground_truth.x
    robot.send_velocity(0.0, 0.0, 1.0, stop=False)  # ignored: the robot keeps going
    assert robot.ground_truth.x - x1 > 0.3


def test_wheel_slip_makes_odometry_diverge(robot, sim):
    sim.inject(faults.wheel_slip("wheel_left_joint", friction=0.02))
    robot.send_velocity(0.3, 0.0, 2.0)
    odom, truth = robot.pose, robot.ground_truth
    assert math.hypot(odom.x - truth.x, odom.y - truth.y) > 0.1


def test_weak_and_stopped_wheels_payload_and_push(robot, sim):
    sim.inject(faults.wheel_stopped("wheel_right_joint"))
    robot.send_velocity(0.3, 0.0, 1.0)
    assert robot.ground_truth.x < 0.2  # one seized wheel: it pivots instead of driving
    sim.reset()  # a reset also clears every fault
    y0 = robot.ground_truth.y
    sim.inject(faults.push(fy=60.0, duration=0.2))
    robot.wait(1.0)
    assert robot.ground_truth.y - y0 > 0.02


def test_weak_motors_and_payload(robot, sim):
    for wheel in ("wheel_left_joint", "wheel_right_joint"):
        sim.inject(faults.motor_torque(wheel, 0.0005))
    robot.send_velocity(0.3, 0.0, 1.0)
    assert robot.ground_truth.x < 0.1  # 0.3 m with healthy motors
    sim.reset()
    y0 = robot.ground_truth.y
    sim.inject(faults.push(fy=60.0, duration=0.2))
    robot.wait(1.0)
    light = robot.ground_truth.y - y0
    sim.reset()
    sim.inject(faults.payload(20.0))
    y0 = robot.ground_truth.y
    sim.inject(faults.push(fy=60.0, duration=0.2))
    robot.wait(1.0)
    assert robot.ground_truth.y - y0 < 0.8 * light  # the same push moves the loaded robot less


def test_bad_arguments_name_the_problem(sim):
    with pytest.raises(Exception, match="no simulated sensor topic '/nope'"):
        sim.inject(faults.sensor_blackout("/nope"))
    with pytest.raises(Exception, match="no wheel joint 'caster'"):
        sim.inject(faults.wheel_slip("caster"))


@pytest.mark.simtwin(faults=[faults.lidar_blackout((-10, 10))])
def test_marker_faults_are_active_from_the_start(robot):
    assert robot.min_range((-5, 5), scan=robot.wait_for_scan()) == math.inf


def test_every_fault_is_announced_on_the_faults_topic(sim, ros_node, robot):
    import time
    from rclpy.qos import DurabilityPolicy, QoSProfile

    handle = sim.inject(faults.payload(2.0))
    handle.clear()
    # latched (transient local): a subscriber that joins later, as a recorder may, still gets every event
    events = ros_node.subscribe("/simtwin/faults", String, qos=QoSProfile(depth=100, durability=DurabilityPolicy.TRANSIENT_LOCAL))
    deadline = time.monotonic() + 10.0
    while len(events.messages()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    kinds = [json.loads(m.data)["event"] for m in events.messages()]
    assert "injected" in kinds and "cleared" in kinds
'''.replace("import math\n", "import json\nimport math\n", 1)


def test_faults_with_the_real_simulator(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_f=FAULT_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2")
    result.assert_outcomes(passed=12)


SEEDED = '''
import pytest
from pytest_simtwin import faults

pytestmark = pytest.mark.simtwin(paused=True)

def test_drive(robot, sim):
    sim.inject(faults.cmd_drop(0.5))
    for i in range(12):
        robot.send_velocity(0.2 if i % 2 else 0.4, 0.0, 0.1, stop=False)
    print("POSE", repr(robot.pose))
'''


def _poses(pytester: pytest.Pytester, seed: int) -> str:
    pytester.makepyfile(test_seeded=SEEDED)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s", f"--simtwin-seed={seed}", "--simtwin-rtf=0")
    result.assert_outcomes(passed=1)
    return next(line[line.index("POSE") :] for line in result.outlines if "POSE" in line)


def test_same_seed_same_faults_same_odometry(pytester: pytest.Pytester) -> None:
    first, again, other = _poses(pytester, 7), _poses(pytester, 7), _poses(pytester, 8)
    assert first == again
    assert other != first  # another seed drops other commands


def test_bad_fault_arguments_fail_before_the_body() -> None:
    with pytest.raises(ConfigError, match="duration must be > 0"):
        faults.sensor_blackout("/scan", duration=-1.0)
    with pytest.raises(ConfigError, match=r"probability must be within 0\.\.1"):
        faults.cmd_drop(1.5)
    with pytest.raises(ConfigError, match="max_deg"):
        faults.lidar_sector(30, -30)
    with pytest.raises(ConfigError, match="unknown fault kind"):
        faults.Fault("melt")
    with pytest.raises(ConfigError, match="radius must be > 0"):
        faults.friction_patch(1.0, 0.0, radius=0.0)
    with pytest.raises(ConfigError, match="friction must be >= 0"):
        faults.friction_patch(1.0, 0.0, radius=0.5, friction=-0.1)


def test_a_marker_fault_on_a_missing_topic_errors_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_m="import pytest\nfrom pytest_simtwin import faults\n\n"
        "@pytest.mark.simtwin(faults=[faults.sensor_blackout('/camera')])\n"
        "def test_x(robot):\n    raise AssertionError('the body must not run')\n"
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*no simulated sensor topic '/camera'*"])
    assert "the body must not run" not in result.stdout.str()


def test_node_faults_kill_pause_resume_restart(pytester: pytest.Pytester, tmp_path: Path) -> None:
    pytester.makepyfile(
        test_n='''
import time, signal
TALKER = """
import rclpy, time
from std_msgs.msg import String
rclpy.init(); n = rclpy.create_node('talker'); p = n.create_publisher(String, '/chatter', 10)
while rclpy.ok():
    p.publish(String(data='hi')); time.sleep(0.05)
"""

def test_node_faults(launch_node, ros_node, tmp_path, sim):
    script = tmp_path / "talker.py"
    script.write_text(TALKER)
    node = launch_node(script, ready_topic="/chatter", ready_type="std_msgs/msg/String")
    node.pause()
    time.sleep(0.3)
    buf = ros_node.subscribe("/chatter", "std_msgs/msg/String")
    n = buf.count
    time.sleep(0.5)
    assert buf.count == n and node.alive
    node.resume()
    ros_node.wait_for_message("/chatter", "std_msgs/msg/String", timeout=10)
    old = node.pid
    node.restart()
    assert node.pid != old
    ros_node.wait_for_message("/chatter", "std_msgs/msg/String", timeout=20)
    node.kill()
    assert not node.alive and node.returncode == -signal.SIGKILL
    kinds = [e["kind"] for e in sim.record.faults]
    assert kinds == ["node_pause", "node_resume", "node_restart", "node_kill"]
'''
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_faults_land_in_the_recording(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_r="import pytest\nfrom pytest_simtwin import faults\n\n"
        "@pytest.mark.simtwin(paused=True)\n"
        "def test_x(robot, sim):\n"
        "    handle = sim.inject(faults.sensor_blackout('/scan'))\n"
        "    robot.send_velocity(0.2, 0.0, 0.5)\n"
        "    handle.clear()\n"
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--simtwin-record=all", "--simtwin-metrics-json=m.json")
    result.assert_outcomes(passed=1)
    record = json.loads((pytester.path / "m.json").read_text())["tests"][0]
    assert record["recorded"].get("/simtwin/faults", 0) >= 2, record["recorded"]  # injected + cleared
    assert [f["kind"] for f in record["faults"]] == ["blackout"]
