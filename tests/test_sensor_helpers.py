"""Robot helper for cameras and IMUs, against a real ``simtwin-sim`` with the sensor test world.

Uses the plugin's SimSession (embedded backend, domain lease, private RosSession) like the
``robot`` fixture does; the world is tests/sim/data/worlds/sensors.sdf (a red box 1.5 m ahead).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pytest_simtwin.backends.base import SimConfig
from pytest_simtwin.errors import ConfigError
from pytest_simtwin.helpers.robot import Robot
from pytest_simtwin.helpers.sensors import (
    assert_depth_at_centre,
    assert_sees_colour,
    colour_region,
    depth_at_centre,
)
from pytest_simtwin.ros import domains

pytest_plugins = ["pytester"]
WORLD = Path(__file__).parent / "sim" / "data" / "worlds" / "sensors.sdf"


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from pytest_simtwin.runtime.session import SimSession, WorkerInfo
    from pytest_simtwin.runtime.settings import Settings

    settings = Settings(
        backend="embedded",
        sim=SimConfig(start_timeout=30.0, world=WORLD, paused=True),
        domain_ids=tuple(domains.parse_domain_range(domains.DEFAULT_DOMAIN_RANGE)),
        reset="test",
        timeout=30.0,
        artifacts=tmp_path_factory.mktemp("sensors") / "artifacts",
    )
    with SimSession(settings, WorkerInfo("sensor_helper_tests", 6, 8)) as s:
        yield s


@pytest.fixture
def robot(session: Any) -> Iterator[Robot]:
    session.begin_test(session.settings.sim, "test", scope="robot")
    with Robot(session._require_ros(), session.control_or_none(), session.topics(), log_tail=session.log_tail) as r:
        yield r


def test_wait_for_image_and_perception_assertions(robot: Robot) -> None:
    img = robot.wait_for_image("front_camera")
    assert img.shape == (240, 320, 3) and img.encoding == "rgb8" and np.asarray(img).dtype == np.uint8
    assert img.frame_id == "sensor_bot/camera_link/front_camera"
    box = assert_sees_colour(img, (255, 0, 0), region=(40, 90, 160, 230))
    assert box[1] < 160 < box[3]  # the box straddles the image centre
    with pytest.raises(AssertionError, match=r"expected colour \(255, 0, 0\) inside"):
        assert_sees_colour(img, (255, 0, 0), region=(0, 0, 100, 100))
    with pytest.raises(AssertionError, match="pixels of colour"):
        assert_sees_colour(img, (0, 0, 255))
    depth = robot.wait_for_image("front_depth", depth=True)
    assert depth.encoding == "32FC1" and depth.shape == (240, 320)
    assert depth_at_centre(depth) == pytest.approx(1.5, abs=0.005)
    assert_depth_at_centre(depth, 1.5, tolerance=0.01)
    with pytest.raises(AssertionError, match="expected depth 1 m"):
        assert_depth_at_centre(depth, 1.0)
    rgbd = robot.wait_for_depth("front_rgbd")
    assert rgbd.shape == (120, 160) and depth_at_centre(rgbd) == pytest.approx(1.5, abs=0.01)
    info = robot.camera_info("front_camera")
    assert (info.width, info.height) == (320, 240) and info.k[2] == 160
    assert colour_region(robot.wait_for_image(), (255, 0, 0)) == box  # first camera by default


def test_imu_reading_and_unknown_sensor_names(robot: Robot) -> None:
    robot.wait(0.5)  # settled on its wheels after the reset
    reading = robot.wait_for_imu("imu_ideal")
    assert reading.linear_acceleration[2] == pytest.approx(9.81, abs=0.01)
    assert np.abs(reading.angular_velocity).max() < 1e-2
    assert robot.imu.frame_id == "sensor_bot/imu_link/imu"  # the first IMU
    with pytest.raises(ConfigError, match="front_camera \\(camera\\)"):
        robot.wait_for_image("rear_camera")
    with pytest.raises(ConfigError, match="depth image"):
        robot.wait_for_image("front_camera", depth=True)


def test_wait_for_contact_when_the_bumper_hits_the_box(robot: Robot) -> None:
    assert not robot.contacts.touching()  # standing free: the chassis touches nothing
    robot.send_velocity(0.5, 0.0, 4.0, stop=False)  # 1.5 m to the box's front face, then pushing against it
    reading = robot.wait_for_contact("bumper", touching="red_box", timeout=6.0)
    (contact,) = reading.contacts
    assert contact.collision1 == "sensor_bot::base_footprint::chassis" and reading.names == ["red_box::link::collision"]
    assert contact.positions[:, 0] == pytest.approx(1.55, abs=0.01)  # on the box's front face
    assert contact.force[0] < 0  # the box pushes the robot back
    robot.wait(0.1)
    assert robot.contacts.touching("red_box")  # still pushing against it
    robot.stop()
    with pytest.raises(ConfigError, match="contact topic"):
        robot.wait_for_contact("imu")


def test_sensors_off_marker_and_option_reach_the_simulator_command(pytester: pytest.Pytester) -> None:
    from pytest_simtwin.backends.embedded import simulator_arguments
    from pytest_simtwin.runtime.settings import effective_config, marker_overrides

    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.simtwin(sensors_off=["camera", "imu_ideal"])
        def test_a():
            pass

        @pytest.mark.simtwin(sensors_off=3)
        def test_b():
            pass
        """
    )
    items, _ = pytester.inline_genitems("-p", "no:simtwin")
    base = SimConfig(sensors_off=("gps",))
    overrides = marker_overrides(items[0], pytester.path)
    assert overrides == {"sensors_off": ("camera", "imu_ideal")}
    from pytest_simtwin.runtime.settings import Settings

    settings = Settings(
        backend="embedded", sim=base, domain_ids=(1,), reset="test", timeout=1.0, artifacts=pytester.path
    )
    sim, _ = effective_config(settings, overrides)
    argv = simulator_arguments(sim, parent_pid=None)
    assert argv[argv.index("--no-sensor") :][:4] == ["--no-sensor", "camera", "--no-sensor", "imu_ideal"]
    assert "gps" not in argv  # the marker replaces the run's list
    assert simulator_arguments(base, parent_pid=None)[-2:] == ["--no-sensor", "gps"]
    with pytest.raises(pytest.UsageError, match=r"sensors_off=\.\.\.\): expected a sensor name"):
        marker_overrides(items[1], pytester.path)
