"""Sensors on URDF links that Gazebo lumps into their parent (a fixed joint without
``<preserveFixedJoint>``): the iRobot Create 3 as its launch file xacros it (``gazebo:=ignition``).

sdformat's URDF->SDF conversion (src/parser_urdf.cc, ReduceFixedJoints / ReduceSDFExtensionToParent /
ReduceSDFExtensionElementTransformReduction) merges a fixed joint's child into its parent and moves
the child's ``<gazebo reference>`` sensors there, their pose pre-multiplied by the joint origin. gz-sim
then names them ``model::PARENT::sensor`` (src/systems/imu/Imu.cc, src/rendering/RenderUtil.cc:
scopedName without the world), gz-sensors stamps that name when no ``<frame_id>`` is given
(src/Sensor.cc PopulateFromSDF) and ros_gz_bridge turns ``::`` into ``/``.
The Create 3's four cliff sensors (gpu_lidar, no frame id, no topic, ``cliff_sensor.urdf.xacro``) are
such sensors; its IR intensity sensors keep their links (``<preserveFixedJoint>``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from public_robot_checks import create3_urdf
from simproc import SimProcess
from test_multi_robot import pose
from test_sim_process import latest_at

from pytest_simtwin.sim.topics import resolve_topics
from pytest_simtwin.sim.world.model import Pose, WorldSpec
from pytest_simtwin.sim.world.sdf import load_world

ROBOTS = Path(__file__).resolve().parents[1] / "robots"
EMPTY = ROBOTS / "turtlebot3" / "turtlebot3_gazebo" / "worlds" / "empty_world.world"  # <world name="default">
CM = 0.01


@pytest.fixture
def create3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, WorldSpec]:
    urdf = create3_urdf(tmp_path, monkeypatch)
    return urdf, load_world(EMPTY, urdf, Pose(), robot_name="create3")


def test_a_lumped_sensor_moves_to_the_parent_link_with_its_pose_composed(create3: tuple[Path, WorldSpec]) -> None:
    _, world = create3
    lidars = {lidar.name: lidar for lidar in world.robot.lidars}
    cliff = lidars["cliff_front_left"]
    # create3.urdf.xacro: cliff_front_left joint origin (16, 4.5, -4.5 cm + base_link_z_offset 6.42 cm),
    # rpy (0, 80 deg, 65.3 deg) in base_link; the sensor's own <pose> is absent (identity)
    assert cliff.link == "base_link"
    got = cliff.pose
    assert (got.x, got.y, got.z) == pytest.approx((16 * CM, 4.5 * CM, (-4.5 + 6.42) * CM), abs=1e-9)
    assert (got.roll, got.pitch, got.yaw) == pytest.approx((0.0, math.radians(80), math.radians(65.3)), abs=1e-9)
    assert cliff.frame_id == "create3/base_link/cliff_front_left"
    assert cliff.topic == "/world/default/model/create3/link/base_link/sensor/cliff_front_left/scan"
    assert {lidar.link for lidar in lidars.values() if lidar.name.startswith("cliff_")} == {"base_link"}
    # <preserveFixedJoint>true</preserveFixedJoint>: the IR sensors stay on their own links
    ir = lidars["ir_intensity_front_left"]
    assert (ir.link, ir.frame_id) == ("ir_intensity_front_left", "create3/ir_intensity_front_left/ir_intensity_front_left")
    imu = next(d for d in world.robot.devices if d.kind == "imu")  # preserved too
    assert (imu.link, imu.frame_id) == ("imu_link", "create3/imu_link/imu")
    # the bumper (preserved) has sdformat's collision name LINK_collision, the one its contact sensor names
    bumper = next(d for d in world.robot.devices if d.kind == "contact")
    assert (bumper.link, bumper.collisions) == ("bumper", ["bumper_collision"])
    assert [g.name for g in world.robot.link("bumper").collisions] == ["bumper_collision"]
    assert not [w for w in world.warnings if "bumper_contact_sensor" in w]


def test_a_lumped_cliff_sensor_publishes_its_gazebo_frame_and_sees_the_floor(
    sim_factory: Any, create3: tuple[Path, WorldSpec]
) -> None:
    from sensor_msgs.msg import LaserScan

    urdf, world = create3
    scans = {s.name: s for s in resolve_topics(world).scans}
    scan_topic = scans["cliff_front_left"]
    lidar = world.robot.lidars[scan_topic.index]
    sim: SimProcess = sim_factory(
        str(EMPTY), "--robot", str(urdf), "--robot-name", "create3", "--paused", wait_topic="/odom"
    )
    st = sim.control.step(duration=0.5)  # settled on its wheels and caster
    here = pose(sim, "create3")
    scan = latest_at(sim, scan_topic.topic, st, LaserScan, rate=lidar.update_rate)
    assert scan.header.frame_id == "create3/base_link/cliff_front_left"
    assert max(abs(here["roll"]), abs(here["pitch"])) < 0.02, here
    # the beam leaves the composed pose 80 deg below the horizontal: it meets the floor at height / sin(80 deg)
    height = here["z"] + lidar.pose.z
    expected = height / math.sin(lidar.pose.pitch)
    assert expected < lidar.range_max  # the floor is in range: an uncomposed (level) sensor would read inf
    assert scan.ranges[len(scan.ranges) // 2] == pytest.approx(expected, abs=0.005), (list(scan.ranges), here)
