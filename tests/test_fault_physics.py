"""Physical faults by the expected amount: friction patch, one slippery wheel, weak motors, payload;
sensor faults that start later announce "started"/"ended". pytester runs on the real simulator.

The expectations come from rigid-body physics with the built-in robot's numbers
(pytest_simtwin/sim/defaults/models/simtwin_bot/model.sdf), not from earlier runs.
"""

from __future__ import annotations

import pytest

PHYSICS = '''
import json, math, time
import pytest
from pytest_simtwin import faults
from std_msgs.msg import String

pytestmark = pytest.mark.simtwin(paused=True)  # sim time moves only when the test steps it

# simtwin_bot (model.sdf): chassis 1.0 kg with its centre of mass 0.03 m behind the axle, 0.1 kg lidar
# 0.032 m behind, two 0.028 kg wheels (r 0.033 m, 0.16 m apart), frictionless caster 0.081 m behind
# the axle; the controller ramps wheel speed at 2.5 m/s^2.
G = 9.81
M = 1.0 + 0.1 + 2 * 0.028
D = (1.0 * 0.03 + 0.1 * 0.032) / M  # centre of mass behind the axle
H = (1.0 * 0.065 + 0.1 * 0.172 + 2 * 0.028 * 0.033) / M  # its height
L = 0.081  # axle to caster
HALF, RADIUS, ACCEL = 0.08, 0.033, 2.5
# yaw inertia about the right wheel's contact point (chassis, lidar and left wheel by parallel axes)
I_P = 0.00327 + 1.0 * (0.03**2 + HALF**2) + 3e-5 + 0.1 * (0.032**2 + HALF**2) + 2 * 8.4e-6 + 0.028 * (2 * HALF) ** 2


def wheel_load(a):
    """Normal force on the two wheels while accelerating at a: the caster takes the rest (load transfer)."""
    return M * G * (1 - D / L) - M * a * H / L


def heading_drift(mu, v):
    """Yaw the robot gains when its left wheel has friction mu and it starts to drive straight at v.

    The right wheel grips, so the robot turns about its contact point. While the wheels speed up
    (v / ACCEL), following them needs M * ACCEL / 2 from each wheel; the left one gives at most
    mu * N_left, the shortfall yaws the robot left. Afterwards the left wheel's friction turns it back
    until it rolls again (a stopped, not reversed, rotation: a net heading change remains).
    """
    n_accel, n_cruise = wheel_load(ACCEL) / 2, wheel_load(0.0) / 2
    spin_up = (M * HALF * ACCEL - 2 * HALF * mu * n_accel) / I_P
    if spin_up <= 0:
        return 0.0  # enough grip: no slip at all
    t1 = v / ACCEL
    w_peak = spin_up * t1
    t2 = w_peak / (2 * HALF * mu * n_cruise / I_P)
    return 0.5 * w_peak * (t1 + t2)


@pytest.mark.parametrize("mu", [0.2, 0.3, 0.8])
def test_one_slippery_wheel_turns_the_robot_by_the_expected_heading(robot, sim, mu):
    sim.inject(faults.wheel_slip("wheel_left_joint", friction=mu))
    robot.send_velocity(0.3, 0.0, 2.0, stop=False)
    odom, truth = robot.pose, robot.ground_truth
    assert abs(odom.yaw) < 0.005 and abs(odom.y) < 0.005  # both wheels turned alike: odometry says straight
    expected = heading_drift(mu, 0.3)
    assert truth.yaw == pytest.approx(expected, rel=0.25, abs=0.01), (mu, truth.yaw, expected)
    # the path the wheels did not report: the heading changed in the first ~0.3 s, then the robot drove
    # straight on along it, off the odometry's line
    assert abs(truth.y - odom.y) == pytest.approx(math.sin(expected) * odom.x, rel=0.35, abs=0.01)


def test_a_friction_patch_under_the_robot_limits_its_acceleration(robot, sim):
    mu = 0.05
    sim.inject(faults.friction_patch(0.0, 0.0, radius=0.5, friction=mu))
    robot.send_velocity(0.5, 0.0, 1.5, stop=False)
    # Coulomb: traction mu * N on the wheels, which lose load to the caster as the robot accelerates
    a = mu * G * (1 - D / L) / (1 + mu * H / L)
    assert a * 1.5 < 0.5  # still speeding up at the end: x = a t^2 / 2
    assert robot.ground_truth.x == pytest.approx(0.5 * a * 1.5**2, abs=0.02)
    assert robot.pose.x - robot.ground_truth.x > 0.3  # the wheels spun: odometry ran ahead


def test_a_friction_patch_elsewhere_changes_nothing(robot, sim):
    sim.inject(faults.friction_patch(3.0, 3.0, radius=0.5, friction=0.05))
    robot.send_velocity(0.5, 0.0, 1.5, stop=False)
    assert robot.ground_truth.x == pytest.approx(robot.pose.x, abs=0.02)  # odometry's stamp lags by a step or two
    assert robot.ground_truth.x > 0.6


def test_driving_onto_a_patch_makes_the_robot_slip_there(robot, sim):
    sim.inject(faults.friction_patch(0.6, 0.0, radius=0.25, friction=0.01))
    robot.send_velocity(0.3, 0.0, 1.0, stop=False)  # grip: ~0.28 m, not on the patch yet
    assert robot.ground_truth.x == pytest.approx(robot.pose.x, abs=0.01)
    robot.send_velocity(0.0, 3.0, 0.5, stop=False)  # on the ice at 0.35 m? not yet: turning in place grips
    assert abs(robot.ground_truth.yaw) > 0.8
    robot.send_velocity(0.0, -3.0, 0.5, stop=False)
    robot.send_velocity(0.3, 0.0, 1.5, stop=False)  # crosses onto the patch (0.35..0.85 m)
    robot.send_velocity(0.0, 3.0, 0.5, stop=False)  # on the ice the same turn command hardly turns it
    on_ice = robot.ground_truth
    assert 0.35 < on_ice.x < 0.85, on_ice
    assert abs(robot.pose.yaw - on_ice.yaw) > 0.3, (robot.pose, on_ice)


def test_weak_motors_accelerate_slower_and_cannot_hold_against_a_push(robot, sim):
    tau = 0.01  # N m per wheel: at most 2 tau / r of traction
    for wheel in ("wheel_left_joint", "wheel_right_joint"):
        sim.inject(faults.motor_torque(wheel, tau))
    robot.send_velocity(0.5, 0.0, 0.6, stop=False)
    a = 2 * tau / RADIUS / M
    assert robot.ground_truth.x == pytest.approx(0.5 * a * 0.6**2, rel=0.2)  # healthy: ~0.25 m
    sim.reset()
    for wheel in ("wheel_left_joint", "wheel_right_joint"):
        sim.inject(faults.motor_torque(wheel, tau))
    sim.inject(faults.push(fx=-1.5 * 2 * tau / RADIUS, duration=None))  # 1.5 x what the motors can give
    robot.send_velocity(0.3, 0.0, 1.0, stop=False)
    assert robot.ground_truth.x < 0.0  # it loses ground
    sim.reset()
    sim.inject(faults.push(fx=-1.5 * 2 * tau / RADIUS, duration=None))
    robot.send_velocity(0.3, 0.0, 1.0, stop=False)
    assert robot.ground_truth.x > 0.2  # healthy motors drive against the same push


def test_a_payload_slows_a_torque_limited_robot(robot, sim):
    def distance(payload):
        sim.reset()
        for wheel in ("wheel_left_joint", "wheel_right_joint"):
            sim.inject(faults.motor_torque(wheel, 0.01))
        if payload:
            sim.inject(faults.payload(payload))
        robot.send_velocity(0.5, 0.0, 0.6, stop=False)
        return robot.ground_truth.x

    light, loaded = distance(0.0), distance(M)  # twice the mass, the same force: half the acceleration
    assert loaded / light == pytest.approx(0.5, abs=0.08), (light, loaded)


def test_a_later_sensor_fault_announces_start_and_end_at_its_sim_times(robot, sim, ros_node):
    from rclpy.qos import DurabilityPolicy, QoSProfile

    t0 = sim.state()["sim_time"]
    handle = sim.inject(faults.sensor_blackout("/scan", at=t0 + 0.5, duration=0.5))
    events = ros_node.subscribe("/simtwin/faults", String,
                                qos=QoSProfile(depth=100, durability=DurabilityPolicy.TRANSIENT_LOCAL))  # fmt: skip
    def mine():  # the buffer is latched: earlier tests' events (ids restart at a reset) are in it too
        out = [json.loads(m.data) for m in events.messages()]
        return [e for e in out if e["kind"] == "blackout" and e["at"] == pytest.approx(t0 + 0.5, abs=1e-9)]

    robot.wait(0.2)
    deadline = time.monotonic() + 10.0
    while not mine() and time.monotonic() < deadline:
        time.sleep(0.05)

    assert [e["event"] for e in mine()] == ["injected"]  # not started yet
    robot.wait(1.3)
    deadline = time.monotonic() + 10.0
    while len(mine()) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    got = {e["event"]: e["t"] for e in mine()}
    assert list(got) == ["injected", "started", "ended"], got
    assert got["injected"] == pytest.approx(t0, abs=0.01)
    assert got["started"] == pytest.approx(t0 + 0.5, abs=0.03)
    assert got["ended"] == pytest.approx(t0 + 1.0, abs=0.03)
    (entry,) = [f for f in sim.record.faults if f.get("id") == handle.id]
    assert entry["at"] == pytest.approx(t0 + 0.5) and entry["duration"] == pytest.approx(0.5)
    handle.clear()
    assert entry["cleared_at"] >= t0 + 1.5  # the record says when the test cleared it
'''


def test_physical_faults_by_the_expected_amount(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_p=PHYSICS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2")
    result.assert_outcomes(passed=9)
