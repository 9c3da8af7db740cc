"""Magnetometer (sensor_msgs/MagneticField) and air pressure (sensor_msgs/FluidPressure) sensors of the
embedded simulator, over real ROS topics, as gz-sensors computes them and ros_gz_bridge converts them.

The sensor test world (data/worlds/sensors.sdf) sets ``<magnetic_field>2e-5 0 -4e-5</magnetic_field>``;
the robot's IMU link carries ``compass`` (50 Hz, 1e-7 T per axis) and ``baro`` (20 Hz, reference
altitude 520 m, 2 Pa).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from simproc import SimProcess

from pytest_simtwin._internal.waiting import wait_until
from pytest_simtwin.sim.engine.sensors import air_pressure
from pytest_simtwin.sim.world.sdf import load_world

WORLD = str(Path(__file__).parent / "data" / "worlds" / "sensors.sdf")
FIELD = np.array([2e-5, 0.0, -4e-5])
ONLY = ("--no-sensor", "camera", "--no-sensor", "imu", "--no-sensor", "gps", "--no-sensor", "contact")


def _collect(sim: SimProcess, buf: Any, count: int) -> list[Any]:
    """Step until ``count`` messages stamped after the current sim time arrived; returns them."""
    t0 = float(sim.control.state()["sim_time"])

    def after() -> list[Any]:
        return [m for m in buf.messages() if m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 > t0 + 1e-6]

    while len(after()) < count:
        before = buf.count
        sim.control.step(duration=0.2)  # 10 / 4 messages: within the subscription's queue
        wait_until(lambda n=before: buf.count > n, 10.0, what=f"messages on {buf.topic}")
    return after()


def test_parse_and_the_standard_atmosphere() -> None:
    world = load_world(Path(WORLD))
    assert world.magnetic_field == (2e-5, 0.0, -4e-5)
    devices = {d.name: d for d in world.robot.devices}
    compass, baro = devices["compass"], devices["baro"]
    assert compass.kind == "magnetometer" and compass.topics == {"magnetometer": "/magnetometer"}
    assert [n.stddev for n in compass.field_noise] == [1e-7] * 3
    assert baro.kind == "air_pressure" and baro.topics == {"air_pressure": "/air_pressure"}
    assert baro.reference_altitude == 520 and baro.pressure_noise.stddev == 2
    # ICAO standard atmosphere table values
    assert air_pressure(0) == pytest.approx(101325.0)
    assert air_pressure(500) == pytest.approx(95461, abs=2) and air_pressure(1000) == pytest.approx(89875, abs=2)


def test_magnetometer_reads_the_world_field_in_its_frame_with_the_sdf_noise(
    sim_factory: Callable[..., SimProcess],
) -> None:
    from sensor_msgs.msg import MagneticField

    sim = sim_factory(WORLD, "--paused", *ONLY, "--no-sensor", "baro")
    buf = sim.ros.subscribe("/magnetometer", MagneticField)
    wait_until(lambda: sim.ros.count_publishers("/magnetometer") > 0, 10.0, what="a /magnetometer publisher")
    sim.control.step(duration=0.5)  # settled on its wheels
    msgs = _collect(sim, buf, 200)
    values = np.array([[m.magnetic_field.x, m.magnetic_field.y, m.magnetic_field.z] for m in msgs])
    assert msgs[0].header.frame_id == "sensor_bot/imu_link/compass"
    assert np.abs(values.mean(axis=0) - FIELD).max() < 4 * 1e-7 / math.sqrt(len(values)) + 2e-8  # level: ~ the world field
    assert values.std(axis=0) == pytest.approx([1e-7] * 3, rel=0.2)
    assert list(msgs[0].magnetic_field_covariance) == pytest.approx([1e-14, 0, 0, 0, 1e-14, 0, 0, 0, 1e-14])
    # facing +y (yaw 90 deg): the field's x (east) component now lies along the sensor's -y
    sim.control.set_entity_state("sensor_bot", pose={"yaw": math.pi / 2})
    turned = np.array([[m.magnetic_field.x, m.magnetic_field.y, m.magnetic_field.z] for m in _collect(sim, buf, 50)])
    assert turned.mean(axis=0) == pytest.approx([0.0, -2e-5, -4e-5], abs=3e-7)


def test_air_pressure_follows_the_altitude_with_the_sdf_noise(sim_factory: Callable[..., SimProcess]) -> None:
    from sensor_msgs.msg import FluidPressure

    sim = sim_factory(WORLD, "--paused", *ONLY, "--no-sensor", "compass")
    buf = sim.ros.subscribe("/air_pressure", FluidPressure)
    wait_until(lambda: sim.ros.count_publishers("/air_pressure") > 0, 10.0, what="an /air_pressure publisher")
    sim.control.step(duration=0.5)
    msgs = _collect(sim, buf, 200)
    pressures = np.array([m.fluid_pressure for m in msgs])
    # the sensor sits 0.1 m above the ground: 520.1 m, 95231 Pa in the standard atmosphere
    assert pressures.mean() == pytest.approx(air_pressure(520.1), abs=4 * 2 / math.sqrt(len(pressures)) + 0.5)
    assert pressures.std() == pytest.approx(2.0, rel=0.2) and msgs[0].variance == pytest.approx(4.0)
    # lifted by 10 m: about 113 Pa less
    sim.control.set_entity_state("sensor_bot", pose={"z": 10.0})
    higher = _collect(sim, buf, 1)[0].fluid_pressure
    assert higher - pressures.mean() == pytest.approx(air_pressure(530.1) - air_pressure(520.1), abs=15)
