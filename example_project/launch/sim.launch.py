"""Gazebo (gz sim, Harmonic) + ros_gz_bridge + the safety stop, for users with ROS 2 and Gazebo installed.

    ros2 launch launch/sim.launch.py                 # headless server, runs immediately
    ros2 launch launch/sim.launch.py gui:=true       # with the Gazebo GUI

This file is for a full ROS 2 + Gazebo installation (e.g. the osrf/ros:jazzy-simulation image).
It cannot run on the pytest-simtwin development machines (no ROS 2 distribution, no Gazebo there);
the test suite does not need it: pytest starts pytest-simtwin's embedded simulator on the same
world, and `--simtwin-backend process` can start this Gazebo set-up instead (see README.md).
"""

from __future__ import annotations

import os
from pathlib import Path

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, SetEnvironmentVariable
from launch.conditions import IfCondition, UnlessCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

PROJECT = Path(__file__).resolve().parent.parent


def generate_launch_description() -> LaunchDescription:
    world = LaunchConfiguration("world")
    resource_path = os.pathsep.join(
        p for p in (str(PROJECT / "models"), os.environ.get("GZ_SIM_RESOURCE_PATH", "")) if p
    )
    return LaunchDescription(
        [
            DeclareLaunchArgument("world", default_value=str(PROJECT / "worlds" / "test_arena.sdf")),
            DeclareLaunchArgument("gui", default_value="false"),
            DeclareLaunchArgument("stop_distance", default_value="0.5"),
            SetEnvironmentVariable("GZ_SIM_RESOURCE_PATH", resource_path),
            # Headless server, running from the start (-r), sensors rendered offscreen.
            ExecuteProcess(
                cmd=["gz", "sim", "-s", "-r", "--headless-rendering", world],
                output="screen",
                condition=UnlessCondition(LaunchConfiguration("gui")),
            ),
            ExecuteProcess(
                cmd=["gz", "sim", "-r", world], output="screen", condition=IfCondition(LaunchConfiguration("gui"))
            ),
            Node(
                package="ros_gz_bridge",
                executable="parameter_bridge",
                parameters=[{"config_file": str(PROJECT / "config" / "bridge.yaml"), "use_sim_time": True}],
                output="screen",
            ),
            # The node under test; the bridge subscribes /cmd_vel, teleop or a planner publishes /cmd_vel_in.
            ExecuteProcess(
                cmd=[
                    "python3",
                    "-m",
                    "safety_stop",
                    "--ros-args",
                    "--params-file",
                    str(PROJECT / "config" / "safety_stop.yaml"),
                    "-p",
                    ["stop_distance:=", LaunchConfiguration("stop_distance")],
                ],
                additional_env={"PYTHONPATH": str(PROJECT / "src")},
                output="screen",
            ),
        ]
    )
