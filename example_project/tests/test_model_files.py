"""The robot descriptions agree with each other and with config/sim.yaml (no simulator needed)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

PROJECT = Path(__file__).resolve().parent.parent
SETTINGS = yaml.safe_load((PROJECT / "config" / "sim.yaml").read_text())


def sdf_robot() -> ET.Element:
    return ET.parse(PROJECT / "models" / "diffbot" / "model.sdf").getroot()


def test_sdf_diff_drive_and_lidar_match_the_settings():
    root = sdf_robot()
    plugin = root.find(".//plugin[@name='gz::sim::systems::DiffDrive']")
    assert plugin is not None
    robot = SETTINGS["robot"]
    assert float(plugin.findtext("wheel_radius")) == robot["wheel_radius"]
    assert float(plugin.findtext("wheel_separation")) == robot["wheel_separation"]
    assert float(plugin.findtext("max_linear_velocity")) == robot["max_linear_velocity"]
    assert float(plugin.findtext("max_linear_acceleration")) == robot["max_linear_acceleration"]
    lidar = root.find(".//sensor[@type='gpu_lidar']")
    expected = SETTINGS["lidar"]
    assert lidar.findtext("topic") == expected["topic"]
    assert float(lidar.findtext("update_rate")) == expected["update_rate"]
    assert int(lidar.findtext("lidar/scan/horizontal/samples")) == expected["samples"]
    assert float(lidar.findtext("lidar/range/min")) == expected["range_min"]
    assert float(lidar.findtext("lidar/range/max")) == expected["range_max"]
    assert float(lidar.findtext("lidar/noise/stddev")) == expected["noise_stddev"]
    scan_link = root.find(".//link[@name='base_scan']")
    assert float(scan_link.findtext("pose").split()[0]) == expected["mount_x"]


def test_world_step_size_matches_the_settings():
    world = ET.parse(PROJECT / "worlds" / "test_arena.sdf").getroot()
    assert float(world.findtext(".//physics/max_step_size")) == SETTINGS["physics"]["step_size"]
    uris = {e.text for e in world.iter("uri")}
    for uri in uris:
        name = uri.removeprefix("model://")
        assert (PROJECT / "models" / name / "model.config").is_file(), f"{uri} has no model.config"


def test_xacro_describes_the_same_robot():
    xacro = pytest.importorskip("xacro", reason="pip install xacro to check the URDF variant")
    urdf = ET.fromstring(xacro.process_file(str(PROJECT / "urdf" / "robot.urdf.xacro")).toxml())
    plugin = urdf.find(".//plugin[@name='gz::sim::systems::DiffDrive']")
    assert float(plugin.findtext("wheel_radius")) == SETTINGS["robot"]["wheel_radius"]
    assert float(plugin.findtext("wheel_separation")) == SETTINGS["robot"]["wheel_separation"]
    joint = urdf.find(".//joint[@name='scan_joint']/origin")
    assert float(joint.get("xyz").split()[0]) == SETTINGS["lidar"]["mount_x"]
    assert float(urdf.find(".//sensor/update_rate").text) == SETTINGS["lidar"]["update_rate"]
