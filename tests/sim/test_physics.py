"""Physics acceptance tests: real MuJoCo simulation of the built-in world and robot (no ROS needed)."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from pytest_simtwin.sim.engine.drive import SpeedLimiter
from pytest_simtwin.sim.engine.physics import Physics
from pytest_simtwin.sim.world.model import Pose
from pytest_simtwin.sim.world.sdf import load_world

LIDAR_X = -0.032  # built-in robot: lidar position in base_footprint
FRONT_X = 0.04  # built-in robot: chassis front face in base_footprint


@pytest.fixture(scope="module")
def world():  # type: ignore[no-untyped-def]
    return load_world(None)


@pytest.fixture
def physics(world) -> Physics:  # type: ignore[no-untyped-def]
    return Physics(world, seed=7)


def run(p: Physics, vx: float, wz: float, seconds: float) -> None:
    p.set_command(vx, wz)
    p.step(round(seconds / p.step_size))


def yaw_of(p: Physics) -> float:
    t = p.ground_truth()
    return math.atan2(2 * (t.qw * t.qz + t.qx * t.qy), 1 - 2 * (t.qy**2 + t.qz**2))


def body_vx(p: Physics) -> float:
    t = p.ground_truth()
    yaw = yaw_of(p)
    return t.vx * math.cos(yaw) + t.vy * math.sin(yaw)


def test_straight_drive_half_metre_per_second_for_two_seconds_moves_one_metre(physics: Physics) -> None:
    start = physics.ground_truth()
    run(physics, 0.5, 0.0, 2.0)
    run(physics, 0.0, 0.0, 1.0)
    end = physics.ground_truth()
    distance = math.hypot(end.x - start.x, end.y - start.y)
    assert distance == pytest.approx(1.00, abs=0.05)
    assert abs(end.y - start.y) < 0.01, "a straight command must not curve"


def test_turn_half_radian_per_second_for_three_seconds_turns_one_and_a_half_radians(physics: Physics) -> None:
    run(physics, 0.0, 0.5, 3.0)
    run(physics, 0.0, 0.0, 1.0)
    assert yaw_of(physics) == pytest.approx(1.50, abs=0.05)
    t = physics.ground_truth()
    assert math.hypot(t.x, t.y) < 0.02, "turning in place must not wander"


def test_zero_command_stops_within_half_a_second(physics: Physics) -> None:
    run(physics, 0.5, 0.0, 1.0)
    assert body_vx(physics) == pytest.approx(0.5, abs=0.02)
    physics.set_command(0.0, 0.0)
    stopped_at = None
    for i in range(round(1.0 / physics.step_size)):
        physics.step()
        if abs(body_vx(physics)) < 0.02:
            stopped_at = (i + 1) * physics.step_size
            break
    assert stopped_at is not None and stopped_at <= 0.5, f"still moving after 1 s (stopped_at={stopped_at})"


def test_acceleration_limit_ramps_the_speed(physics: Physics) -> None:
    run(physics, 0.5, 0.0, 0.1)  # 2.5 m/s^2 limit: 0.25 m/s after 0.1 s, not 0.5
    assert body_vx(physics) == pytest.approx(0.25, abs=0.03)


def test_ten_metres_per_second_is_clamped_to_the_configured_maximum(physics: Physics) -> None:
    limit = physics.dd.max_linear_velocity
    assert limit == pytest.approx(0.6)
    run(physics, 10.0, 0.0, 2.0)
    assert body_vx(physics) == pytest.approx(limit, abs=0.01)
    assert physics.odometry().vx == pytest.approx(limit, abs=0.01)


def test_odometry_matches_ground_truth_within_a_centimetre_on_flat_ground(physics: Physics) -> None:
    for vx, wz, seconds in [(0.4, 0.0, 2.0), (0.2, 0.8, 2.0), (0.3, -0.5, 2.0), (-0.2, 0.0, 1.0), (0.0, 0.0, 0.5)]:
        run(physics, vx, wz, seconds)
    odom, truth = physics.odometry(), physics.ground_truth()
    assert math.hypot(odom.x - truth.x, odom.y - truth.y) < 0.01
    assert abs(math.remainder(odom.yaw - yaw_of(physics), math.tau)) < 0.02
    assert math.hypot(truth.x, truth.y) > 0.5, "the robot must actually have moved"


def test_odometry_drifts_from_truth_when_wheels_slip_against_a_wall(physics: Physics) -> None:
    physics.set_entity_state("simtwin_bot", pose={"x": 2.5})
    run(physics, 0.6, 0.0, 4.0)  # drives into the east wall (inner face x = 3.0) and keeps pushing
    odom, truth = physics.odometry(), physics.ground_truth()
    assert truth.x + FRONT_X < 3.0 + 0.01
    assert odom.x > (truth.x - 2.5) + 0.1, "wheel odometry should keep counting while the wheels spin"


def test_full_speed_into_a_wall_stays_outside_the_wall(physics: Physics) -> None:
    physics.set_command(10.0, 0.0)
    front = []
    for _ in range(round(7.0 / physics.step_size / 5)):
        physics.step(5)
        front.append(physics.ground_truth().x + FRONT_X)
    assert max(front) > 2.9, "the robot should reach the wall"
    assert max(front) < 3.0 + 0.01, f"penetrated the wall face by {max(front) - 3.0:.4f} m"
    assert physics.ground_truth().z > -0.01 and abs(physics.ground_truth().y) < 0.05


def test_lidar_reads_a_box_one_metre_ahead(physics: Physics) -> None:
    lidar = physics.world.robot.lidars[0]
    # box of 0.2 m depth whose near face is 1.00 m ahead of the lidar
    physics.spawn("target", "box", [0.2, 0.6, 0.5], {"x": LIDAR_X + 1.0 + 0.1, "y": 0.0, "z": 0.25})
    readings = np.array([physics.lidar_scan()[0] for _ in range(200)])
    assert abs(float(np.median(readings)) - 1.00) < 3 * lidar.noise_stddev
    assert np.all(np.abs(readings - 1.00) < 5 * lidar.noise_stddev)
    assert 0.5 * lidar.noise_stddev < float(np.std(readings)) < 2 * lidar.noise_stddev, "seeded gaussian noise"
    steps = np.round(readings / lidar.range_resolution)
    # gz-sensors does not quantise to <range><resolution> (it only reports it): neither do we
    assert lidar.range_resolution > 0 and not np.allclose(readings, steps * lidar.range_resolution, atol=1e-6)


def test_lidar_geometry_and_rep117(physics: Physics) -> None:
    scan = physics.lidar_scan()
    assert len(scan) == 360
    assert scan.typecode == "f"
    # +y wall (inner face y = 3.0) at index 90, 3.0 m from the lidar; -x wall is 2.968 + 0.032... beyond 3.5? no
    assert scan[90] == pytest.approx(3.0, abs=0.05)
    assert scan[270] == pytest.approx(3.0, abs=0.05)
    assert scan[0] == pytest.approx(3.0 - LIDAR_X, abs=0.05)
    physics.set_entity_state("simtwin_bot", pose={"x": -1.0})  # now +x wall is 4.03 m away: beyond range_max
    assert physics.lidar_scan()[0] == math.inf
    physics.spawn("close", "box", [0.05, 0.3, 0.5], {"x": -1.0 + LIDAR_X + 0.08, "z": 0.25})  # 0.055 m: below min
    assert physics.lidar_scan()[0] == -math.inf


def test_same_seed_and_commands_give_bit_identical_results(world) -> None:  # type: ignore[no-untyped-def]
    def session() -> tuple[list[tuple[float, ...]], list[bytes]]:
        p = Physics(world, seed=3)
        odoms, scans = [], []
        for vx, wz in [(0.5, 0.0), (0.3, 1.0), (0.0, -1.0), (0.6, 0.2), (0.0, 0.0)]:
            run(p, vx, wz, 0.7)
            o = p.odometry()
            odoms.append((o.x, o.y, o.yaw, o.vx, o.wz, *p.ground_truth().__dict__.values()))
            scans.append(p.lidar_scan().tobytes())
        return odoms, scans

    first, second = session(), session()
    assert first == second
    other = Physics(world, seed=4)
    assert other.lidar_scan().tobytes() != Physics(world, seed=3).lidar_scan().tobytes(), "seed changes the noise"


def test_spawn_dynamic_box_falls_and_rests_on_the_ground(physics: Physics) -> None:
    name = physics.spawn("crate", "box", [0.2, 0.2, 0.2], {"x": 1.0, "y": 1.0, "z": 0.5}, static=False, mass=2.0)
    assert name == "crate" and "crate" in physics.entities()
    run(physics, 0.0, 0.0, 1.0)
    state = physics.entity_state("crate")
    assert state["pose"]["z"] == pytest.approx(0.1, abs=0.005)
    assert abs(state["twist"]["vz"]) < 0.01
    with pytest.raises(ValueError, match="already used"):
        physics.spawn("crate", "box", [0.1, 0.1, 0.1], {})
    with pytest.raises(ValueError, match="already used"):  # an internal MuJoCo body name
        physics.spawn("simtwin_bot::base_footprint", "box", [0.1, 0.1, 0.1], {})
    with pytest.raises(ValueError, match="unknown shape"):
        physics.spawn("cone", "cone", [0.1], {})
    with pytest.raises(ValueError, match="positive"):
        physics.spawn("bad", "sphere", [-1.0], {})


def test_robot_pushes_a_dynamic_obstacle(physics: Physics) -> None:
    physics.spawn("ball", "cylinder", [0.1, 0.2], {"x": 0.6, "z": 0.1}, static=False, mass=0.2)
    run(physics, 0.3, 0.0, 3.0)
    assert physics.entity_state("ball")["pose"]["x"] > 0.8, "a light obstacle is pushed, not passed through"


def test_set_pose_and_twist_of_the_robot_and_a_static_model(physics: Physics) -> None:
    state = physics.set_entity_state("simtwin_bot", pose={"x": 1.0, "y": -0.5, "yaw": math.pi / 2})
    assert state["pose"]["x"] == pytest.approx(1.0) and state["pose"]["yaw"] == pytest.approx(math.pi / 2)
    truth = physics.ground_truth()
    assert (truth.x, truth.y) == pytest.approx((1.0, -0.5))
    physics.set_entity_state("simtwin_bot", twist={"vx": 0.0, "vy": 0.3})
    assert physics.entity_state("simtwin_bot")["twist"]["vy"] == pytest.approx(0.3)
    before = physics.entity_state("box_1")["pose"]
    moved = physics.set_entity_state("box_1", pose={"x": 0.0, "y": 2.0})["pose"]
    assert (moved["x"], moved["y"], moved["z"]) == pytest.approx((0.0, 2.0, before["z"]))
    with pytest.raises(ValueError, match="static"):
        physics.set_entity_state("box_1", twist={"vx": 1.0})
    with pytest.raises(ValueError, match="no entity"):
        physics.entity_state("nope")


def test_moving_a_static_box_in_front_of_the_lidar_changes_the_scan(physics: Physics) -> None:
    physics.set_entity_state("box_1", pose={"x": 1.5, "y": 0.0, "yaw": 0.0})  # 0.5 m deep: near face at 1.25
    assert physics.lidar_scan()[0] == pytest.approx(1.25 - LIDAR_X, abs=0.05)
    physics.spawn("extra", "sphere", [0.1], {"x": 1.0})  # spawning recompiles: the moved box must stay
    assert physics.entity_state("box_1")["pose"]["x"] == pytest.approx(1.5)


def test_remove_and_reset_scopes(physics: Physics) -> None:
    physics.spawn("a", "sphere", [0.1], {"x": 1.0, "y": 1.0, "z": 0.1})
    physics.spawn("b", "box", [0.1, 0.1, 0.1], {"x": -1.0, "z": 0.3}, static=False)
    physics.remove("a")
    assert "a" not in physics.entities() and "b" in physics.entities()
    with pytest.raises(ValueError, match="only spawned"):
        physics.remove("walls")
    run(physics, 0.5, 0.0, 1.0)
    t, steps = physics.time, physics.steps
    assert t == pytest.approx(1.0) and steps == 250

    physics.reset("time")
    assert physics.time == 0.0 and physics.steps == 0
    assert physics.ground_truth().x > 0.3, "time reset keeps the state"

    run(physics, 0.0, 0.0, 0.2)
    physics.reset("state")
    assert physics.ground_truth().x == pytest.approx(0.0, abs=1e-6)
    assert physics.odometry().x == 0.0
    assert physics.time == pytest.approx(0.2) and "b" in physics.entities()
    assert physics.entity_state("b")["pose"]["z"] == pytest.approx(0.3), "spawned bodies go back to their spawn pose"

    physics.reset("spawned")
    assert "b" not in physics.entities()
    physics.spawn("c", "sphere", [0.1], {"x": 1.0})
    physics.set_entity_state("box_1", pose={"x": 0.0})
    run(physics, 0.4, 0.0, 0.5)
    physics.reset("all")
    assert "c" not in physics.entities() and physics.time == 0.0
    assert physics.entity_state("box_1")["pose"]["x"] == pytest.approx(1.6)
    assert physics.ground_truth().x == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="scope"):
        physics.reset("everything")


def test_reset_all_replays_bit_identically(world) -> None:  # type: ignore[no-untyped-def]
    p = Physics(world, seed=11)
    results = []
    for _ in range(2):
        run(p, 0.5, 0.3, 1.0)
        results.append((p.odometry(), p.lidar_scan().tobytes()))
        p.spawn("tmp", "box", [0.1, 0.1, 0.1], {"x": 2.0})
        p.reset("all")
    assert results[0] == results[1]


def test_speed_limiter_jerk_and_acceleration() -> None:
    limiter = SpeedLimiter(-1.0, 1.0, -2.0, 2.0, -10.0, 10.0)
    dt, v0, v1, speeds = 0.01, 0.0, 0.0, []
    for _ in range(100):
        v = limiter.limit(1.0, v0, v1, dt)
        speeds.append(v)
        v0, v1 = v, v0
    accel = np.diff([0.0, *speeds]) / dt
    assert np.all(accel <= 2.0 + 1e-9)
    assert np.all(np.diff(accel) / dt <= 10.0 + 1e-6), "jerk limit"
    assert speeds[-1] == pytest.approx(1.0)
    assert speeds[5] < 0.03, "jerk-limited start is slower than the 0.12 m/s of the acceleration limit alone"


def test_robot_pose_option_places_the_robot() -> None:
    world = load_world(None, robot_pose=Pose(1.0, -1.0, 0.0, 0.0, 0.0, math.pi))
    p = Physics(world)
    run(p, 0.5, 0.0, 1.0)
    truth, odom = p.ground_truth(), p.odometry()
    assert truth.x < 1.0 - 0.4 and truth.y == pytest.approx(-1.0, abs=0.01)
    assert odom.x > 0.4, "odometry starts at the spawn pose, in the robot's frame"


def test_print_physics_cost_per_simulated_second(physics: Physics) -> None:
    physics.set_command(0.4, 0.3)
    physics.step(50)
    start = time.process_time()
    physics.step(round(5.0 / physics.step_size))
    physics_cost = (time.process_time() - start) / 5.0
    start = time.process_time()
    for _ in range(50):
        physics.lidar_scan()
    scan_cost = (time.process_time() - start) / 50
    start = time.process_time()
    for i in range(10):
        physics.spawn(f"probe{i}", "box", [0.1, 0.1, 0.1], {"x": 2.0, "y": 0.2 * i}, static=False)
    spawn_cost = (time.process_time() - start) / 10
    print(
        f"\nphysics: {physics_cost * 1e3:.2f} ms CPU per simulated second at {physics.step_size * 1e3:.0f} ms steps "
        f"(RTF {1 / physics_cost:.0f}x physics only); lidar scan {scan_cost * 1e6:.0f} us; spawn (recompile) "
        f"{spawn_cost * 1e3:.1f} ms CPU"
    )


def test_lidar_scans_do_not_perturb_the_physics(world) -> None:  # type: ignore[no-untyped-def]
    quiet, scanned = Physics(world, seed=5), Physics(world, seed=5)
    for p, scan in ((quiet, False), (scanned, True)):
        for _ in range(20):
            run(p, 0.5, 0.4, 0.1)
            if scan:
                p.lidar_scan()
                p.joint_states()
                p.entity_state("simtwin_bot")
    assert quiet.odometry() == scanned.odometry() and quiet.ground_truth() == scanned.ground_truth()


def test_diverging_physics_is_an_error_not_a_silent_reset(world) -> None:  # type: ignore[no-untyped-def]
    import mujoco

    from pytest_simtwin.errors import SimulatorError

    p = Physics(world)
    p.model.opt.solver = mujoco.mjtSolver.mjSOL_PGS  # measured: PGS with the discrete integrator blows up
    p.set_command(0.5, 0.0)
    with pytest.raises(SimulatorError, match="diverged"):
        p.step(round(1.0 / p.step_size))


def test_non_finite_inputs_are_refused(physics: Physics) -> None:
    with pytest.raises(ValueError, match="finite"):
        physics.set_command(math.nan, 0.0)
    with pytest.raises(ValueError, match="finite"):
        physics.set_entity_state("simtwin_bot", pose={"x": math.inf})
    with pytest.raises(ValueError, match="finite"):
        physics.set_entity_state("simtwin_bot", twist={"vx": math.nan})


def test_bit_identical_across_processes(world) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    script = (
        "from pytest_simtwin.sim.world.sdf import load_world\n"
        "from pytest_simtwin.sim.engine.physics import Physics\n"
        "p = Physics(load_world(None), seed=9)\n"
        "for vx, wz in [(0.5, 0.0), (0.2, 1.0), (0.6, -0.3), (0.0, 0.0)]:\n"
        "    p.set_command(vx, wz)\n"
        "    p.step(200)\n"
        "print(repr(p.odometry()), repr(p.ground_truth()), p.lidar_scan().tobytes().hex())\n"
    )
    outputs = [subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
               for _ in range(2)]  # fmt: skip
    p = Physics(world, seed=9)
    for vx, wz in [(0.5, 0.0), (0.2, 1.0), (0.6, -0.3), (0.0, 0.0)]:
        run(p, vx, wz, 200 * p.step_size)
    here = f"{p.odometry()!r} {p.ground_truth()!r} {p.lidar_scan().tobytes().hex()}\n"
    assert outputs[0] == outputs[1] == here
